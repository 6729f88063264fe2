"""Local components of the emotion circuit (METHOD.md, "Local components", controller 3 step 1).

Everything here works on activations already read at the last prompt token (float32, CPU) and
on the model's own projection modules; nothing runs the whole model again.

- difference vectors: the within-group contrast of the directions, left unnormalised, at the
  o_proj input (per-head outputs) and the down_proj input (MLP neurons);
- neuron scores: mean over an emotion's samples of a_n * beta_n, beta = W_down^T v_e(L);
- head scores: mean drop of <residual after attention, v_e(L)> when one head is zeroed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import nn

from emobench import EMOTIONS
from emobench.errors import EmoBenchError
from emobench.hooks import BlockPoints, projection_weight


def difference_vectors(
    acts: torch.Tensor, groups: Sequence[Hashable], emotions: Sequence[str]
) -> torch.Tensor:
    """dmu_e = mean over the groups holding e of (h_{g,e} - mean_{e' in g} h_{g,e'}), unnormalised.

    `acts` is (n, ...) with one row per doc, `groups[i]` the group of row i (emobench groups by
    (skeleton, valence): the six emotions of one situation differ only in the instruction) and
    `emotions[i]` its target emotion. Groups need not be complete: a group's mean is over the
    emotions it holds, and an emotion's average over the groups that hold it. Rows that share a
    (group, emotion) cell are averaged first. Returns (len(EMOTIONS), ...) in float32.
    """
    if not len(acts) == len(groups) == len(emotions):
        raise EmoBenchError(f"{len(acts)} rows but {len(groups)} groups, {len(emotions)} emotions")
    unknown = sorted(set(emotions) - set(EMOTIONS))
    if unknown:
        raise EmoBenchError(f"unknown emotion(s) {', '.join(unknown)}; known: {EMOTIONS}")
    ids = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    n_groups, n_emotions = len(ids), len(EMOTIONS)
    flat = acts.float().reshape(len(acts), -1)
    rows = zip(groups, emotions, strict=True)
    cell = torch.tensor([ids[g] * n_emotions + EMOTIONS.index(e) for g, e in rows])
    sums = torch.zeros(n_groups * n_emotions, flat.shape[1]).index_add_(0, cell, flat)
    counts = torch.zeros(n_groups * n_emotions).index_add_(0, cell, torch.ones(len(cell)))
    sums, counts = sums.view(n_groups, n_emotions, -1), counts.view(n_groups, n_emotions)
    present = counts > 0
    h = sums / counts.clamp(min=1).unsqueeze(-1)  # (G, E, width): the cell means
    group_mean = h.sum(1) / present.sum(1, keepdim=True).clamp(min=1)
    delta = (h - group_mean.unsqueeze(1)) * present.unsqueeze(-1)
    dmu = delta.sum(0) / present.sum(0).clamp(min=1).unsqueeze(-1).float()
    return dmu.view(n_emotions, *acts.shape[1:])


def emotion_means(acts: torch.Tensor, emotions: Sequence[str]) -> torch.Tensor:
    """(len(EMOTIONS), ...) mean of the rows of each target emotion."""
    index = torch.tensor([EMOTIONS.index(e) for e in emotions])
    flat = acts.float().reshape(len(acts), -1)
    sums = torch.zeros(len(EMOTIONS), flat.shape[1]).index_add_(0, index, flat)
    counts = torch.bincount(index, minlength=len(EMOTIONS)).clamp(min=1).unsqueeze(-1)
    return (sums / counts).view(len(EMOTIONS), *acts.shape[1:])


def sigma(acts: torch.Tensor) -> torch.Tensor:
    """(n, L, d) residuals -> (L,) mean over rows of RMS(h): the scale of one residual point."""
    return acts.float().pow(2).mean(-1).sqrt().mean(0)


def reference_direction(post_attn: torch.Tensor, post_block: torch.Tensor) -> torch.Tensor:
    """(E, L, d) unit directions at both points -> (E, d) v_ref per emotion.

    The mean of the unit directions of the last quarter of layers (both residual points), each
    sign-aligned to the first one, renormalised: the emotion as the late layers hold it.
    """
    layers = post_attn.shape[1]
    late = range(layers - max(1, layers // 4), layers)
    vecs = torch.stack([v for i in late for v in (post_attn[:, i], post_block[:, i])], dim=1)
    vecs = vecs / vecs.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    signs = torch.sign((vecs * vecs[:, :1]).sum(-1, keepdim=True))
    ref = (vecs * torch.where(signs == 0, 1.0, signs)).sum(1)
    return ref / ref.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def neuron_scores(down: nn.Module, mean_acts: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(E, d_ff) mean contribution of each neuron along the emotion's direction.

    beta = W_down^T v_e is what one unit of neuron n writes along v_e; c_n = a_n * beta_n per
    sample, and its mean over the emotion's samples is mean(a_n) * beta_n. `mean_acts` is the
    (E, d_ff) mean down_proj input per emotion, `v` the (E, d) direction where the MLP writes.
    For Gemma-3, which normalises the MLP output before adding it, this is the contribution
    before that norm (METHOD.md's formula as written), a ranking inside the layer rather than
    the exact change of the residual.
    """
    weight = projection_weight(down).detach().float().cpu()  # (d, d_ff)
    beta = v.float() @ weight
    return mean_acts.float() * beta


def attention_output_norm(model: nn.Module, point: BlockPoints) -> nn.Module | None:
    """The norm between o_proj and the residual stream, if the family has one (Gemma-3).

    Gemma-3 adds post_attention_layernorm(o_proj(x)) to the residual and reads the MLP's input
    through a separate pre_feedforward_layernorm; Llama, Qwen2 and GPT-2 add o_proj(x) as is
    (their post_attention_layernorm, or ln_2, *is* the pre-MLP norm).
    """
    block = model.get_submodule(point.block)
    norm = getattr(block, "post_attention_layernorm", None)
    if (
        isinstance(norm, nn.Module)
        and point.pre_mlp_norm != f"{point.block}.post_attention_layernorm"
    ):
        return norm
    return None


def mlp_output_norm(model: nn.Module, point: BlockPoints) -> nn.Module | None:
    """The norm between down_proj and the residual stream, if any (Gemma-3's
    post_feedforward_layernorm)."""
    norm = getattr(model.get_submodule(point.block), "post_feedforward_layernorm", None)
    return norm if isinstance(norm, nn.Module) else None


def head_scores_linear(o_proj: nn.Module, mean_x: torch.Tensor, v: torch.Tensor, n_heads: int):
    """(E, H) exact head scores for a family that adds o_proj's output to the residual as is.

    Zeroing head h's slice x_h changes the residual after attention by -W_o[:, slice_h] @ x_h
    (the bias does not depend on the head, and nothing before o_proj changes), so the drop of
    <residual, v> is <W_o[:, slice_h] @ x_h, v>; linear in x, so its mean over the emotion's
    samples is the same expression on the mean input `mean_x` (E, n_heads * head_dim).
    """
    weight = projection_weight(o_proj).detach().float().cpu()  # (d, H*hd)
    per_input = (v.float() @ weight) * mean_x.float()  # (E, H*hd)
    return per_input.view(len(per_input), n_heads, -1).sum(-1)


@torch.inference_mode()
def head_scores_ablated(
    o_proj: nn.Module,
    norm: nn.Module | None,
    x: torch.Tensor,
    v: torch.Tensor,
    emotions: Sequence[str],
    n_heads: int,
    chunk: int = 256,
) -> torch.Tensor:
    """(E, H) head scores by zero-ablation through the model's own o_proj (and output norm).

    For a family that normalises the attention output before adding it (Gemma-3) the drop is
    not linear in the head; but zeroing a head changes nothing before this layer's o_proj, so
    the residual after attention changes by exactly norm(o_proj(x)) - norm(o_proj(x_without_h))
    per sample. That is computed here for every sample and head from the captured o_proj
    inputs `x` (n, H*hd), without running the model again, and averaged per emotion.
    """
    param = next(o_proj.parameters())
    head_dim = x.shape[-1] // n_heads
    index = torch.tensor([EMOTIONS.index(e) for e in emotions])
    vs = v.float()[index]  # (n, d): each sample's own emotion direction
    drops = torch.zeros(len(x), n_heads)

    def write(inp: torch.Tensor) -> torch.Tensor:
        out = o_proj(inp.to(device=param.device, dtype=param.dtype))
        return (norm(out) if norm is not None else out).float().cpu()

    for start in range(0, len(x), chunk):
        rows = slice(start, start + chunk)
        xs = x[rows].float()
        full = write(xs)
        ablated = xs.unsqueeze(1).repeat(1, n_heads, 1)
        for h in range(n_heads):
            ablated[:, h, h * head_dim : (h + 1) * head_dim] = 0
        cut = write(ablated.view(-1, xs.shape[-1])).view(len(xs), n_heads, -1)
        drops[rows] = ((full.unsqueeze(1) - cut) * vs[rows].unsqueeze(1)).sum(-1)
    return emotion_means(drops, emotions)
