"""`emobench discover directions`: context-agnostic emotion directions (METHOD.md).

Runs the prompting prompts of the SEV *train* split (never the test split), reads two residual
points of every block at the last prompt token (after attention, after the block), and per
layer computes: c_{g,e} = h_{g,e} - mean_e' h_{g,e'} within each (skeleton, valence) group,
mu_e = mean_g c_{g,e}, v_e = normalize(mu_e - mean_e' mu_e').
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from emobench import EMOTIONS, artifacts
from emobench.chat import base_messages, render
from emobench.controllers.prompt import PromptController
from emobench.data import file_sha256, load_docs, resolve_split
from emobench.hooks import BlockPoints, hook_points, hooked

log = logging.getLogger(__name__)

POINTS = ("post_attn", "post_block")


def capture_last_token(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: list[str],
    points: list[BlockPoints],
    batch_size: int,
) -> dict[str, torch.Tensor]:
    """(n_prompts, n_layers, hidden) activations at the last prompt token, per residual point."""
    n, layers = len(prompts), len(points)
    hidden = int(model.config.hidden_size)
    out = {p: torch.zeros(n, layers, hidden) for p in POINTS}
    rows: slice = slice(0, 0)

    def pre_hook(layer: int):
        def hook(module, args):
            out["post_attn"][rows, layer] = args[0][:, -1].detach().float().cpu()

        return hook

    def post_hook(layer: int):
        def hook(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            out["post_block"][rows, layer] = h[:, -1].detach().float().cpu()

        return hook

    tokenizer.padding_side = "left"  # the last position is then every row's last prompt token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    forward = {p.block: post_hook(p.index) for p in points}
    pre = {p.pre_mlp_norm: pre_hook(p.index) for p in points}
    device = next(model.parameters()).device
    with torch.inference_mode(), hooked(model, forward=forward, forward_pre=pre):
        for start in tqdm(range(0, n, batch_size), desc="Reading activations", unit="batch"):
            rows = slice(start, min(n, start + batch_size))
            enc = tokenizer(
                prompts[rows], return_tensors="pt", padding=True, add_special_tokens=False
            )
            model(**enc.to(device))
    return out


def directions(acts: torch.Tensor) -> torch.Tensor:
    """(groups*6, L, d) activations, six emotions per group in EMOTIONS order -> (6, L, d)."""
    n, layers, hidden = acts.shape
    grouped = acts.view(n // len(EMOTIONS), len(EMOTIONS), layers, hidden)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    mu = centred.mean(dim=0)
    v = mu - mu.mean(dim=0, keepdim=True)
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def discover_directions(
    model: torch.nn.Module,
    tokenizer: Any,
    model_name: str,
    out: str | Path,
    batch_size: int = 16,
    limit_groups: int | None = None,
) -> Path:
    docs = load_docs("train")
    if limit_groups is not None:
        docs = docs[: limit_groups * len(EMOTIONS)]
    prompter = PromptController()
    prompts = [render(tokenizer, prompter.messages(d, base_messages(d)))[0] for d in docs]
    points = hook_points(model)
    acts = capture_last_token(model, tokenizer, prompts, points, batch_size)
    tensors = {point: directions(acts[point]) for point in POINTS}
    meta = {
        "kind": "emotion-directions",
        "model": {"name": model_name, **artifacts.model_fingerprint(model)},
        "emotions": list(EMOTIONS),
        "tensors": {p: "(emotion, layer, hidden), unit norm" for p in POINTS},
        "hook_points": {
            "post_attn": [p.pre_mlp_norm + " (input)" for p in points],
            "post_block": [p.block + " (output)" for p in points],
        },
        "recipe": {
            "prompts": "prompt controller (METHOD.md controller 1), model chat template",
            "position": "last prompt token",
            "groups": len(docs) // len(EMOTIONS),
            "centring": "within (skeleton, valence) group, then grand mean removed, normalised",
            "filter": "none (every group kept)",
        },
        "data": {
            "split": "train",
            "sha256": file_sha256(resolve_split("train")),
            "docs": len(docs),
        },
        "command": "emobench discover directions --out DIR",
    }
    return artifacts.save(out, tensors, meta)


def load_model(model_args: dict[str, Any]) -> tuple[torch.nn.Module, Any, str]:
    """The model a discovery runs on: `pretrained=` (HF id or dir) or the embedded default."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from emobench import embedded

    pretrained = model_args.get("pretrained")
    name = pretrained or embedded.DEFAULT_PRETRAINED
    path = str(embedded.resolve(pretrained)) if embedded.is_embedded(pretrained) else pretrained
    kwargs = {}
    if "dtype" in model_args:
        kwargs["dtype"] = getattr(torch, str(model_args["dtype"]))
    device = model_args.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval().to(device)
    return model, AutoTokenizer.from_pretrained(path), name
