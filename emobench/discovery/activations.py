"""Reading a model's activations at the last prompt token of the SEV prompting prompts.

Shared by every discovery (directions, circuit, attributes): prompts are left-padded, so the last
position of every row is its last prompt token, and encoded as lm-eval encodes them.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from emobench.chat import wants_special_tokens
from emobench.hooks import BlockPoints, hooked

POINTS = ("post_attn", "post_block")


def prepare(tokenizer: Any) -> None:
    tokenizer.padding_side = "left"  # the last position is then every row's last prompt token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def encode(tokenizer: Any, prompts: list[str]) -> Any:
    """Tokenize a batch of rendered prompts the way lm-eval's HF model does for generation.

    A prompt that already starts with the BOS token gets no second one (`wants_special_tokens`).
    """
    special = wants_special_tokens(tokenizer, prompts)
    return tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=special)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token, as generation counts them."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 1)


def forward_batch(model: torch.nn.Module, tokenizer: Any, prompts: list[str]) -> Any:
    """One forward pass over left-padded prompts, each row at the positions it has alone: a
    model with absolute positions (GPT-2) would otherwise read a row differently with each
    batch's padding, and the activations would depend on --batch_size."""
    enc = encode(tokenizer, prompts).to(next(model.parameters()).device)
    return model(**enc, position_ids=position_ids(enc["attention_mask"]))


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

    prepare(tokenizer)
    forward = {p.block: post_hook(p.index) for p in points}
    pre = {p.pre_mlp_norm: pre_hook(p.index) for p in points}
    with torch.inference_mode(), hooked(model, forward=forward, forward_pre=pre):
        for start in tqdm(range(0, n, batch_size), desc="Reading activations", unit="batch"):
            rows = slice(start, min(n, start + batch_size))
            forward_batch(model, tokenizer, prompts[rows])
    return out
