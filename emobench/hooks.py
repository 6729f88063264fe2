"""One hook mechanism for controllers and discovery.

Resolve every hook point first (a typo fails before anything is attached), then attach all hooks
under one ExitStack so that every handle is removed on every exit path, exceptions included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

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
    """Module paths of one decoder block's hook points.

    - ``block``: its output is the residual stream after the block (after the MLP);
    - ``pre_mlp_norm``: its input is the residual stream after attention;
    - ``attn_out``: its input is the concatenated per-head attention output (heads x head_dim);
    - ``mlp_down``: its input is the MLP's neuron activations (d_ff).
    """

    index: int
    block: str
    pre_mlp_norm: str
    attn_out: str
    mlp_down: str


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
    points = []
    for i, block in enumerate(layers):
        base = f"{prefix}.{i}"
        attn = _child(block, base, _ATTENTION, "attention")
        mlp = _child(block, base, _MLP, "MLP")
        points.append(
            BlockPoints(
                index=i,
                block=base,
                pre_mlp_norm=_child(block, base, _PRE_MLP_NORM, "pre-MLP norm"),
                attn_out=_child(_get(model, attn), attn, _ATTN_OUT, "attention output projection"),
                mlp_down=_child(_get(model, mlp), mlp, _MLP_DOWN, "MLP down projection"),
            )
        )
    resolve(model, [p for bp in points for p in (bp.pre_mlp_norm, bp.attn_out, bp.mlp_down)])
    return points


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
