"""One pass over the prompts reading, at the last prompt token of every block, the four points a
circuit needs: the residual after attention and after the block (for the directions and sigma),
the o_proj input (per-head outputs) and the down_proj input (MLP neurons).

It runs the decoder without the LM head (nothing here needs logits, and the head of a small
model with a large vocabulary costs as much as its blocks) and gives every row the position ids
generation gives it under left padding, so that what is read is what generation will see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from emobench.discovery.activations import encode, position_ids, prepare
from emobench.errors import EmoBenchError
from emobench.hooks import BlockPoints, hooked


@dataclass
class Captured:
    """(n_prompts, n_layers, width) float32 activations at the last prompt token."""

    post_attn: torch.Tensor  # width = hidden size
    post_block: torch.Tensor  # width = hidden size
    heads: torch.Tensor  # width = n_heads * head_dim (o_proj input)
    neurons: torch.Tensor  # width = d_ff (down_proj input)


def decoder(model: nn.Module) -> nn.Module:
    """The model without its LM head (LlamaModel, GPT2Model, ...): same modules, no logits."""
    base = getattr(model, "base_model", None)
    return base if isinstance(base, nn.Module) and base is not model else model


def uniform_widths(points: list[BlockPoints]) -> tuple[int, int, int]:
    """(n_heads, head_dim, d_ff), the same in every block, or a clear error."""
    shapes = {(p.n_heads, p.head_dim, p.d_ff) for p in points}
    if len(shapes) != 1:
        raise EmoBenchError(
            f"circuit discovery needs the same heads and MLP width in every block, found "
            f"{sorted(shapes)}; this architecture is not supported"
        )
    return next(iter(shapes))


def capture(
    model: nn.Module,
    tokenizer: Any,
    prompts: list[str],
    points: list[BlockPoints],
    batch_size: int,
    desc: str = "Reading activations",
) -> Captured:
    n_heads, head_dim, d_ff = uniform_widths(points)
    n, layers, hidden = len(prompts), len(points), int(model.config.hidden_size)
    out = Captured(
        post_attn=torch.zeros(n, layers, hidden),
        post_block=torch.zeros(n, layers, hidden),
        heads=torch.zeros(n, layers, n_heads * head_dim),
        neurons=torch.zeros(n, layers, d_ff),
    )
    rows = slice(0, 0)

    def read_input(target: torch.Tensor, layer: int):
        def hook(module, args):
            target[rows, layer] = args[0][:, -1].detach().float().cpu()

        return hook

    def read_output(target: torch.Tensor, layer: int):
        def hook(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            target[rows, layer] = h[:, -1].detach().float().cpu()

        return hook

    pre: dict[str, Any] = {}
    for p in points:
        pre[p.pre_mlp_norm] = read_input(out.post_attn, p.index)
        pre[p.attn_out] = read_input(out.heads, p.index)
        pre[p.mlp_down] = read_input(out.neurons, p.index)
    post = {p.block: read_output(out.post_block, p.index) for p in points}
    prepare(tokenizer)
    device = next(model.parameters()).device
    run = decoder(model)
    with torch.inference_mode(), hooked(model, forward=post, forward_pre=pre):
        for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch"):
            rows = slice(start, min(n, start + batch_size))
            enc = encode(tokenizer, prompts[rows]).to(device)
            run(**enc, position_ids=position_ids(enc["attention_mask"]), use_cache=False)
    return out
