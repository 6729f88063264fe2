"""`discover_circuit`: the whole recipe on the SEV train split, written as one artifact."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from emobench import EMOTIONS, artifacts
from emobench.chat import base_messages, render
from emobench.controller import create_controller
from emobench.data import file_sha256, load_docs, resolve_split
from emobench.discovery.circuit.budget import Budget, allocate
from emobench.discovery.circuit.capture import Captured, capture, uniform_widths
from emobench.discovery.circuit.components import (
    attention_output_norm,
    difference_vectors,
    emotion_means,
    head_scores_ablated,
    head_scores_linear,
    neuron_scores,
    reference_direction,
    sigma,
)
from emobench.discovery.circuit.importance import (
    ALPHAS,
    KINDS,
    residual_writers,
    sublayer_importance,
)
from emobench.discovery.directions import check_groups, directions
from emobench.errors import EmoBenchError
from emobench.hooks import BlockPoints, hook_points

log = logging.getLogger(__name__)

KIND = "emotion-circuit"
COMMAND = "emobench discover circuit --out DIR"

TENSORS = {
    "post_attn": "(emotion, layer, hidden) unit emotion direction after attention",
    "post_block": "(emotion, layer, hidden) unit emotion direction after the block",
    "v_ref": "(emotion, hidden) reference direction: late layers, both points, sign-aligned mean",
    "sigma": "(layer, 2) mean RMS of the residual: after attention [:, 0], after the block [:, 1]",
    "dmu_attn": "(emotion, layer, n_heads*head_dim) difference vector at the o_proj input",
    "dmu_mlp": "(emotion, layer, d_ff) difference vector at the down_proj input",
    "neuron_scores": "(emotion, layer, d_ff) mean a_n * (W_down^T v_post_block)_n",
    "head_scores": "(emotion, layer, n_heads) mean drop of <residual after attention, v_post_attn>",
    "sublayer_importance": "(emotion, layer, 2) I of the attention [..., 0] and the MLP [..., 1]",
    "allocation": "(emotion, layer, 2) int64 heads [..., 0] and neurons [..., 1] in the circuit",
    "head_mask": "(emotion, layer, n_heads) bool: the circuit's heads",
    "neuron_mask": "(emotion, layer, d_ff) bool: the circuit's neurons",
}


def top_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A bool mask of the k highest scores (ties to the lower index)."""
    mask = torch.zeros(len(scores), dtype=torch.bool)
    if k > 0:
        mask[torch.argsort(scores, descending=True, stable=True)[:k]] = True
    return mask


def probe_docs(docs: list[dict[str, Any]], situations: int) -> list[dict[str, Any]]:
    """`situations` (skeleton, valence) items spread evenly over the docs (one doc each), so a
    small probe still covers every theme rather than the first few scenarios."""
    if situations < 1:
        raise EmoBenchError(f"probe_situations must be >= 1, got {situations}")
    items = list({(d["skeleton_id"], d["valence"]): d for d in docs}.values())
    if situations >= len(items):
        return items
    picks = torch.linspace(0, len(items) - 1, situations).round().long().tolist()
    return [items[i] for i in picks]


def local_components(
    model: torch.nn.Module, points: list[BlockPoints], acts: Captured, docs: list[dict[str, Any]]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Directions, sigma, difference vectors and neuron / head scores from one capture; and
    per layer how the head scores were computed ("linear" or "ablation")."""
    n_heads = points[0].n_heads
    dirs_attn, dirs_block = directions(acts.post_attn), directions(acts.post_block)
    groups = [(d["skeleton_id"], d["valence"]) for d in docs]
    emotions = [d["target_emotion"] for d in docs]
    per_layer = range(len(points))
    dmu_attn = [difference_vectors(acts.heads[:, i], groups, emotions) for i in per_layer]
    dmu_mlp = [difference_vectors(acts.neurons[:, i], groups, emotions) for i in per_layer]
    mean_neurons = emotion_means(acts.neurons, emotions)
    mean_heads = emotion_means(acts.heads, emotions)
    n_scores, h_scores, methods = [], [], []
    for p in points:
        i, v_attn = p.index, dirs_attn[:, p.index]
        down, o_proj = model.get_submodule(p.mlp_down), model.get_submodule(p.attn_out)
        n_scores.append(neuron_scores(down, mean_neurons[:, i], dirs_block[:, i]))
        norm = attention_output_norm(model, p)
        if norm is None:
            h_scores.append(head_scores_linear(o_proj, mean_heads[:, i], v_attn, n_heads))
            methods.append("linear")
        else:
            x = acts.heads[:, i]
            h_scores.append(head_scores_ablated(o_proj, norm, x, v_attn, emotions, n_heads))
            methods.append("ablation")
    tensors = {
        "post_attn": dirs_attn,
        "post_block": dirs_block,
        "v_ref": reference_direction(dirs_attn, dirs_block),
        "sigma": torch.stack([sigma(acts.post_attn), sigma(acts.post_block)], dim=-1),
        "dmu_attn": torch.stack(dmu_attn, 1),
        "dmu_mlp": torch.stack(dmu_mlp, 1),
        "neuron_scores": torch.stack(n_scores, 1),
        "head_scores": torch.stack(h_scores, 1),
    }
    return tensors, methods


def integrate(
    importance: torch.Tensor,
    neuron_score: torch.Tensor,
    head_score: torch.Tensor,
    budget: Budget,
) -> dict[str, torch.Tensor]:
    """The budgeted circuit per emotion: how many heads and neurons each layer gets (from the
    sublayer importance), and which ones (the top scored inside the layer)."""
    n_emotions, layers, d_ff = neuron_score.shape
    n_heads = head_score.shape[-1]
    k_neurons, k_heads = budget.totals(layers)
    allocation = torch.zeros(n_emotions, layers, len(KINDS), dtype=torch.int64)
    neuron_mask = torch.zeros(n_emotions, layers, d_ff, dtype=torch.bool)
    head_mask = torch.zeros(n_emotions, layers, n_heads, dtype=torch.bool)
    for e in range(n_emotions):
        heads = allocate(
            importance[e, :, 0].tolist(), k_heads, budget.head_floor, budget.cap, [n_heads] * layers
        )
        neurons = allocate(
            importance[e, :, 1].tolist(),
            k_neurons,
            budget.neuron_floor,
            budget.cap,
            [d_ff] * layers,
        )
        allocation[e, :, 0], allocation[e, :, 1] = torch.tensor(heads), torch.tensor(neurons)
        for i in range(layers):
            head_mask[e, i] = top_mask(head_score[e, i], heads[i])
            neuron_mask[e, i] = top_mask(neuron_score[e, i], neurons[i])
    return {"allocation": allocation, "head_mask": head_mask, "neuron_mask": neuron_mask}


def discover_circuit(
    model: torch.nn.Module,
    tokenizer: Any,
    model_name: str,
    out: str | Path,
    batch_size: int = 16,
    limit_groups: int | None = None,
    probe_situations: int = 24,
    alphas: tuple[float, ...] = ALPHAS,
    per_sublayer: int = 10,
    neuron_share: float = 0.7,
    neuron_floor: int = 4,
    head_floor: int = 2,
    cap: float = 0.4,
) -> Path:
    """Build the emotion-circuit artifact in `out` from the SEV train split (METHOD.md).

    `probe_situations` bounds the sublayer-importance probe (the only step whose cost grows
    with layers x alphas); everything else uses every train doc (or `limit_groups` groups).
    """
    if batch_size < 1:
        raise EmoBenchError(f"batch_size must be >= 1, got {batch_size}")
    if not alphas or any(a <= 0 for a in alphas):
        raise EmoBenchError(f"alphas must be positive numbers, got {alphas}")
    budget = Budget(per_sublayer, neuron_share, neuron_floor, head_floor, cap)
    docs = load_docs("train")
    if limit_groups is not None:
        if limit_groups < 1:
            raise EmoBenchError(f"--limit_groups {limit_groups}: give 1 or more")
        docs = docs[: limit_groups * len(EMOTIONS)]
    check_groups(docs)
    prompter = create_controller("prompt")
    prompts = [render(tokenizer, prompter.messages(d, base_messages(d)))[0] for d in docs]
    points = hook_points(model)
    uniform_widths(points)

    acts = capture(model, tokenizer, prompts, points, batch_size)
    tensors, head_methods = local_components(model, points, acts, docs)
    del acts  # the largest object of the run (n_docs x layers x (3 d + d_ff) floats)

    probes = probe_docs(docs, probe_situations)
    tensors["sublayer_importance"] = sublayer_importance(
        model,
        tokenizer,
        [render(tokenizer, base_messages(d))[0] for d in probes],
        points,
        torch.stack([tensors["post_attn"], tensors["post_block"]], dim=2),
        tensors["v_ref"],
        tensors["sigma"],
        alphas=tuple(alphas),
        batch_size=batch_size,
    )
    tensors |= integrate(
        tensors["sublayer_importance"], tensors["neuron_scores"], tensors["head_scores"], budget
    )
    meta = _meta(model, model_name, points, docs, probes, head_methods, budget, alphas, tensors)
    budget_record = meta["recipe"]["budget"]
    log.info("circuit: %d neurons, %d heads", budget_record["neurons"], budget_record["heads"])
    return artifacts.save(out, tensors, meta)


def _meta(
    model: torch.nn.Module,
    model_name: str,
    points: list[BlockPoints],
    docs: list[dict[str, Any]],
    probes: list[dict[str, Any]],
    head_methods: list[str],
    budget: Budget,
    alphas: tuple[float, ...],
    tensors: dict[str, torch.Tensor],
) -> dict[str, Any]:
    layers = len(points)
    late = max(1, layers // 4)
    k_neurons, k_heads = budget.totals(layers)
    writers = residual_writers(model, points)
    allocation = tensors["allocation"]
    return {
        "kind": KIND,
        "model": {"name": model_name, **artifacts.model_fingerprint(model)},
        "emotions": list(EMOTIONS),
        "shape": {
            "layers": layers,
            "hidden": int(model.config.hidden_size),
            "n_heads": points[0].n_heads,
            "head_dim": points[0].head_dim,
            "d_ff": points[0].d_ff,
        },
        "tensors": TENSORS,
        "hook_points": {
            "post_attn": [p.pre_mlp_norm + " (input)" for p in points],
            "post_block": [p.block + " (output)" for p in points],
            "attn_out": [p.attn_out + " (input)" for p in points],
            "mlp_down": [p.mlp_down + " (input)" for p in points],
            "attention_writes": [a + " (output)" for a, _ in writers],
            "mlp_writes": [m + " (output)" for _, m in writers],
        },
        "recipe": {
            "prompts": "prompt controller (METHOD.md controller 1), model chat template",
            "position": "last prompt token (left padding, generation's position ids)",
            "groups": len(docs) // len(EMOTIONS),
            "grouping": "(skeleton_id, valence)",
            "directions": "within-group centring, grand mean removed, normalised (as `steer`)",
            "difference_vectors": "mean_g (h_{g,e} - mean_e' h_{g,e'}), unnormalised, float32",
            "neuron_scores": "mean over the emotion's docs of a_n * (W_down^T v_post_block)_n",
            "head_scores": {
                "what": "mean drop of <residual after attention, v_post_attn> when the head's "
                "o_proj input slice is zeroed",
                "linear": "exact: <W_o[:, head] x_head, v> (o_proj output added unnormalised)",
                "ablation": "exact: norm(o_proj(x)) - norm(o_proj(x without the head)), per doc",
                "per_layer": head_methods,
            },
            "sigma": "mean over the train prompts of RMS(residual) at each point",
            "v_ref": {
                "layers": list(range(layers - late, layers)),
                "points": ["post_attn", "post_block"],
                "how": "unit directions sign-aligned to the first, averaged, normalised",
            },
            "sublayer_importance": {
                "edit": "alpha * sigma * v_local (sign-aligned to v_ref) added to the "
                "sublayer's residual write at the last prompt token",
                "measure": "<final hidden state (decoder output after its final norm), v_ref>",
                "alphas": list(alphas),
                "prompts": "none controller (neutral system message, no emotion)",
                "probe_situations": len(probes),
                "probe_keys": [f"{d['skeleton_id']}__{d['valence']}" for d in probes],
            },
            "budget": {
                **budget.as_dict(),
                "neurons": k_neurons,
                "heads": k_heads,
                "inside_a_layer": "top neurons / heads by their scores",
            },
        },
        "circuit": {
            e: {
                "neurons": int(allocation[i, :, 1].sum()),
                "heads": int(allocation[i, :, 0].sum()),
            }
            for i, e in enumerate(EMOTIONS)
        },
        "data": {
            "split": "train",
            "sha256": file_sha256(resolve_split("train")),
            "docs": len(docs),
        },
        "command": COMMAND,
    }
