"""One hook mechanism for controllers and discovery.

Resolve every hook point first (a typo fails before anything is attached), then attach all hooks
under one ExitStack so that every handle is removed on every exit path, exceptions included.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from emobench.errors import EmoBenchError

# Where the decoder blocks live, by architecture family (checked in order).
_LAYER_PATHS = (
    "model.layers",
    "model.language_model.layers",
    "model.decoder.layers",
    "transformer.h",
    "gpt_neox.layers",
    "layers",
)


def _get(root: nn.Module, dotted: str) -> Any:
    obj: Any = root
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks of a causal LM (Llama, Gemma-3, Qwen2, GPT-2, GPT-NeoX, ...)."""
    for path in _LAYER_PATHS:
        with contextlib.suppress(AttributeError):
            layers = _get(model, path)
            if isinstance(layers, nn.ModuleList):
                return layers
    raise EmoBenchError(
        f"cannot find the decoder layers of {type(model).__name__}; tried {', '.join(_LAYER_PATHS)}"
    )


# Inside one decoder block, by the names the supported families give them (checked in order).
_ATTENTION = ("self_attn", "attn", "attention")
_ATTN_OUT = ("o_proj", "c_proj", "dense", "out_proj")
_MLP = ("mlp", "feed_forward")
_MLP_DOWN = ("down_proj", "c_proj", "dense_4h_to_h", "fc2", "w2")
# The norm in front of the MLP: its *input* is the residual stream after attention. Reading it
# there (rather than adding up attention outputs) is right for every family, including Gemma-3,
# which normalises the attention output before adding it to the residual.
_PRE_MLP_NORM = ("pre_feedforward_layernorm", "post_attention_layernorm", "ln_2")


@dataclass(frozen=True)
class BlockPoints:
    """Module paths of one decoder block's hook points, and the widths of what they carry.

    - ``block``: its output is the residual stream after the block (after the MLP);
    - ``pre_mlp_norm``: its input is the residual stream after attention;
    - ``attn_out``: its input is the concatenated per-head attention output, ``n_heads`` slices
      of ``head_dim`` (head h is ``[h * head_dim, (h + 1) * head_dim)``); Gemma-3's
      ``n_heads * head_dim`` differs from the hidden size;
    - ``mlp_down``: its input is the MLP's ``d_ff`` neuron activations.
    """

    index: int
    block: str
    pre_mlp_norm: str
    attn_out: str
    mlp_down: str
    n_heads: int = 0
    head_dim: int = 0
    d_ff: int = 0

    def head_slice(self, head: int) -> slice:
        if not 0 <= head < self.n_heads:
            raise EmoBenchError(f"block {self.index} has heads 0-{self.n_heads - 1}, not {head}")
        return slice(head * self.head_dim, (head + 1) * self.head_dim)


def projection_weight(module: nn.Module) -> torch.Tensor:
    """A projection's weight as (out_features, in_features), for nn.Linear and GPT-2's Conv1D
    (which stores it transposed)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise EmoBenchError(f"{type(module).__name__} is not a linear projection (no 2-D weight)")
    if isinstance(module, nn.Linear):
        return weight
    if type(module).__name__ == "Conv1D":
        return weight.t()
    raise EmoBenchError(
        f"{type(module).__name__}: unknown projection layout; emobench reads nn.Linear and Conv1D"
    )


def _config_value(config: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _head_shape(config: Any) -> tuple[int, int]:
    """(attention heads, head width) from the text config of a causal LM."""
    config = getattr(config, "text_config", None) or config
    heads = _config_value(config, "num_attention_heads", "n_head")
    hidden = _config_value(config, "hidden_size", "n_embd")
    if heads is None or hidden is None:
        raise EmoBenchError(f"{type(config).__name__} names no attention head count")
    return heads, _config_value(config, "head_dim") or hidden // heads


def _child(block: nn.Module, prefix: str, names: tuple[str, ...], what: str) -> str:
    for name in names:
        if isinstance(getattr(block, name, None), nn.Module):
            return f"{prefix}.{name}"
    raise EmoBenchError(
        f"{prefix} ({type(block).__name__}) has no {what} module; tried {', '.join(names)}"
    )


def hook_points(model: nn.Module) -> list[BlockPoints]:
    """Resolve the hook points of every decoder block (Llama, Gemma-3, Qwen2, GPT-2, ...)."""
    layers = decoder_layers(model)
    prefix = next(name for name, module in model.named_modules() if module is layers)
    n_heads, head_dim = _head_shape(model.config)
    points = []
    for i, block in enumerate(layers):
        base = f"{prefix}.{i}"
        attn = _child(block, base, _ATTENTION, "attention")
        mlp = _child(block, base, _MLP, "MLP")
        attn_out = _child(_get(model, attn), attn, _ATTN_OUT, "attention output projection")
        mlp_down = _child(_get(model, mlp), mlp, _MLP_DOWN, "MLP down projection")
        heads_width = projection_weight(_get(model, attn_out)).shape[1]
        if heads_width != n_heads * head_dim:
            raise EmoBenchError(
                f"{attn_out} takes {heads_width} inputs, but the config says {n_heads} heads x "
                f"{head_dim} = {n_heads * head_dim}; emobench cannot tell where each head is"
            )
        points.append(
            BlockPoints(
                index=i,
                block=base,
                pre_mlp_norm=_child(block, base, _PRE_MLP_NORM, "pre-MLP norm"),
                attn_out=attn_out,
                mlp_down=mlp_down,
                n_heads=n_heads,
                head_dim=head_dim,
                # The projection itself is the truth: configs name d_ff in many ways.
                d_ff=int(projection_weight(_get(model, mlp_down)).shape[1]),
            )
        )
    resolve(model, [p for bp in points for p in (bp.pre_mlp_norm, bp.attn_out, bp.mlp_down)])
    if model not in _CHECKED:
        _check_residual_after_attention(model, points)
        _CHECKED.add(model)
    return points


# Models whose pre-MLP norm was seen to read the residual stream after attention.
_CHECKED: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def _check_residual_after_attention(model: nn.Module, points: list[BlockPoints]) -> None:
    """Refuse a model whose pre-MLP norm does not read the residual after attention, seen on one
    short forward pass: with a parallel residual (GPT-NeoX / Pythia) it reads the block's input,
    and with a norm on the attention output before the residual (OLMo2) the raw attention
    output. Directions, circuits and neuron reads would be taken from the wrong tensor."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, pre: bool) -> HookFn:
        def hook(module: nn.Module, args: Any, output: Any = None) -> None:
            value = args[0] if pre else output
            seen[name] = (value[0] if isinstance(value, tuple) else value).detach()

        return hook

    forward = {p.block: keep(p.block, False) for p in points}
    forward |= {p.attn_out: keep(p.attn_out, False) for p in points}
    pre = {p.pre_mlp_norm: keep(p.pre_mlp_norm, True) for p in points}
    device = next(model.parameters()).device
    ids = torch.arange(1, 5, device=device)[None]
    with torch.no_grad(), hooked(model, forward=forward, forward_pre=pre):
        model(input_ids=ids, use_cache=False)
    for before, point in zip([None, *points], points, strict=False):
        mid = seen[point.pre_mlp_norm].float()
        if before is not None and torch.allclose(mid, seen[before.block].float()):
            what = "the block's input (a parallel residual, as GPT-NeoX's use_parallel_residual)"
        elif torch.allclose(mid, seen[point.attn_out].float()):
            what = "the attention output before it joins the residual (a norm on it, as OLMo2's)"
        else:
            continue
        raise EmoBenchError(
            f"{type(model).__name__}: {point.pre_mlp_norm} reads {what}, not the residual "
            "stream after attention; emobench's hook points cannot read this architecture"
        )


def last_position(hidden: torch.Tensor) -> torch.Tensor:
    """The last position of every row of a (batch, seq, width) activation, as a writable view.

    Under left padding (emobench generates and reads activations left-padded) this is each
    row's last prompt token in the prefill pass, and the token just generated in every later
    pass with a KV cache (seq = 1). With right padding it would be a pad token for every row
    shorter than the longest, so every batch emobench makes is left-padded: HFLM's for
    generation and `discovery.activations` for reading.
    """
    return hidden[:, -1]


def resolve(model: nn.Module, names: list[str]) -> dict[str, nn.Module]:
    """Map hook-point names (dotted module paths) to modules; fail listing every missing name."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise EmoBenchError(
            f"{type(model).__name__} has no module(s) {', '.join(missing)}; "
            f"hook points must be dotted module paths such as 'model.layers.0.mlp'"
        )
    return {n: modules[n] for n in names}


HookFn = Callable[..., Any]


@contextlib.contextmanager
def hooked(
    model: nn.Module,
    forward: Mapping[str, HookFn] | None = None,
    forward_pre: Mapping[str, HookFn] | None = None,
) -> Iterator[None]:
    """Attach forward hooks and forward pre-hooks by module path for the duration of the block."""
    forward = dict(forward or {})
    forward_pre = dict(forward_pre or {})
    modules = resolve(model, sorted(set(forward) | set(forward_pre)))
    with contextlib.ExitStack() as stack:
        for name, fn in forward.items():
            stack.callback(modules[name].register_forward_hook(fn).remove)
        for name, fn in forward_pre.items():
            stack.callback(modules[name].register_forward_pre_hook(fn).remove)
        yield


def hook_count(model: nn.Module) -> int:
    """Forward hooks and pre-hooks attached anywhere in `model` (for leak checks)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
