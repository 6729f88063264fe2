"""One hook mechanism for controllers and discovery.

Resolve every hook point first (a typo fails before anything is attached), then attach all hooks
under one ExitStack so that every handle is removed on every exit path, exceptions included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import nn

from emobench.errors import EmoBenchError

# Where the decoder blocks live, by architecture family (checked in order).
_LAYER_PATHS = (
    "model.layers",
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
