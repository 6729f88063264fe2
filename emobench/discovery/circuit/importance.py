"""Sublayer importance (METHOD.md, controller 3 step 2): how far one sublayer can move the output.

For each sublayer (the attention or the MLP of block L) add alpha * sigma * v_local to what it
writes into the residual stream at the last prompt token, and measure the change of
<final hidden state, v_ref> divided by alpha * sigma, averaged over the alphas. Prompts carry no
emotion instruction (the `none` controller's chat), so the score says what the sublayer does to
a neutral reply.

Cost: the edit touches only the last token, so every earlier position is computed once per
prompt (a KV-cache prefill) and each (sublayer, alpha) is a one-token forward pass of every
prompt, the six emotions side by side in one batch: 2 x layers x alphas one-token passes per
batch of prompts, instead of as many full passes.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from emobench.discovery.activations import encode, position_ids, prepare
from emobench.discovery.circuit.capture import decoder
from emobench.discovery.circuit.components import attention_output_norm, mlp_output_norm
from emobench.hooks import BlockPoints, hooked, last_position

ALPHAS = (0.1, 0.3, 0.5, 0.7)
KINDS = ("attention", "mlp")  # index 0 and 1 of every (..., 2) tensor of a circuit artifact


def _path(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


def residual_writers(model: nn.Module, points: list[BlockPoints]) -> list[tuple[str, str]]:
    """Per block, the modules whose outputs are added to the residual stream: (attention, MLP).

    o_proj and down_proj for Llama, Qwen2 and GPT-2; Gemma-3's post-attention and
    post-feedforward norms, which normalise those outputs before the addition.
    """
    writers = []
    for p in points:
        attn_norm, mlp_norm = attention_output_norm(model, p), mlp_output_norm(model, p)
        writers.append(
            (
                _path(model, attn_norm) if attn_norm is not None else p.attn_out,
                _path(model, mlp_norm) if mlp_norm is not None else p.mlp_down,
            )
        )
    return writers


def sign_aligned(v_local: torch.Tensor, v_ref: torch.Tensor) -> torch.Tensor:
    """(E, L, 2, d) unit local directions, each flipped if it points away from its v_ref (E, d)."""
    unit = v_local / v_local.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    dots = (unit * v_ref[:, None, None, :]).sum(-1, keepdim=True)
    return torch.where(dots < 0, -unit, unit)


def _step(run: nn.Module, cache: Any, last: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The final hidden state of the last token, given the cache of every earlier one."""
    croppable = getattr(cache, "is_croppable", True)
    past = cache if croppable else copy.deepcopy(cache)
    out = run(
        input_ids=last,
        attention_mask=mask,
        position_ids=position_ids(mask)[:, -1:],
        past_key_values=past,
        use_cache=True,
    )
    if croppable:
        cache.crop(-1)  # back to the prefill, for the next edit
    return out.last_hidden_state[:, -1].float().cpu()


@torch.inference_mode()
def sublayer_importance(
    model: nn.Module,
    tokenizer: Any,
    prompts: list[str],
    points: list[BlockPoints],
    v_local: torch.Tensor,
    v_ref: torch.Tensor,
    sigma: torch.Tensor,
    alphas: tuple[float, ...] = ALPHAS,
    batch_size: int = 16,
) -> torch.Tensor:
    """(E, L, 2) unit importance I = <dh_final, v_ref> / (alpha * sigma), mean over alphas.

    `v_local` (E, L, 2, d): the emotion directions where each sublayer writes (after attention
    for the attention, after the block for the MLP); `v_ref` (E, d); `sigma` (L, 2) the RMS of
    the residual at those points. The final hidden state is the decoder's output (after its
    final norm): what the LM head reads, as in the reference.
    """
    n_emotions, layers = v_local.shape[0], len(points)
    directions = sign_aligned(v_local.float(), v_ref.float())
    writers = residual_writers(model, points)
    param = next(model.parameters())
    run = decoder(model)
    active: dict[str, Any] = {"path": None, "delta": None}

    def make_hook(path: str):
        def hook(module, args, output):
            if active["path"] == path:
                h = output[0] if isinstance(output, tuple) else output
                last_position(h).add_(active["delta"])
            return output

        return hook

    hooks = {path: make_hook(path) for pair in writers for path in pair}
    totals = torch.zeros(n_emotions, layers, len(KINDS))
    ref = v_ref.float()
    prepare(tokenizer)
    chunks = range(0, len(prompts), batch_size)
    bar = tqdm(total=len(chunks) * layers * len(KINDS) * len(alphas), desc="Sublayer importance")
    with hooked(model, forward=hooks):
        for start in chunks:
            enc = encode(tokenizer, prompts[start : start + batch_size]).to(param.device)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            rows = len(ids)
            # Row p * E + e holds prompt p under emotion e's edit: the prefill is shared.
            ids = ids.repeat_interleave(n_emotions, dim=0)
            mask = mask.repeat_interleave(n_emotions, dim=0)
            prefill = run(
                input_ids=ids[:, :-1],
                attention_mask=mask[:, :-1],
                position_ids=position_ids(mask)[:, :-1],
                use_cache=True,
            )
            cache = prefill.past_key_values
            active["path"] = None
            base = _step(run, cache, ids[:, -1:], mask)
            refs = ref.repeat(rows, 1)  # (rows * E, d), emotion e's v_ref on row p * E + e
            base_proj = (base * refs).sum(-1)
            for layer in range(layers):
                for k in range(len(KINDS)):
                    dose_unit = sigma[layer, k].item()
                    vecs = directions[:, layer, k].repeat(rows, 1)
                    for alpha in alphas:
                        dose = alpha * dose_unit
                        active["path"] = writers[layer][k]
                        active["delta"] = (dose * vecs).to(device=param.device, dtype=param.dtype)
                        moved = (_step(run, cache, ids[:, -1:], mask) * refs).sum(-1) - base_proj
                        per_emotion = moved.view(rows, n_emotions).sum(0)
                        totals[:, layer, k] += per_emotion / max(dose, 1e-12) / len(alphas)
                        bar.update()
            active["path"] = None
    bar.close()
    return totals / len(prompts)
