"""`circuit`: modulate the emotion circuit's neurons and heads (METHOD.md, controller 3).

For every block, with the circuit that `emobench discover circuit` found for the target emotion:
add lambda * dmu_mlp(L)[n] to each chosen neuron's down_proj input at the last position (the
last prompt token at prefill, then each generated token), and lambda * dmu_attn(L)[head slice]
to each chosen head's slice of the o_proj input, at every position by default (as the reference
did) or at the last one only. The system message is the neutral one: the emotion is never named.

lambda: `lam` given as a number applies to every emotion; as a string it may also name
per-emotion values, "anger:0.8,fear:1.2" or "0.9,anger:0.7" (a bare number is the default for
the others); `lam_<emotion>=x` arguments win over both. What is not given comes from the
artifact's `recommended.json` (same keys: `lam` as a number, string or {emotion: value}, and
`positions`), else the reference's 1.0, with 0.8 for anger.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch

from emobench import EMOTIONS
from emobench.controller import ArtifactController, finite_number
from emobench.errors import EmoBenchError
from emobench.hooks import BlockPoints, hook_points, hooked, last_position

REFERENCE_LAM = {**dict.fromkeys(EMOTIONS, 1.0), "anger": 0.8}
POSITIONS = ("all", "last")


def _number(value: Any, what: str) -> float:
    return finite_number("circuit", what, value)


def parse_lam(spec: Any, what: str = "lam") -> dict[str, float]:
    """{emotion: lambda} from a number, a dict, or a string such as "0.9,anger:0.7" (an emotion
    named nowhere is left out, for the caller's defaults to fill)."""
    if spec is None or spec == "":
        return {}
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, str):
        items = []
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            name, sep, value = part.rpartition(":")
            items.append((name.strip() if sep else "*", value.strip()))
    else:
        items = [("*", spec)]
    default: dict[str, float] = {}
    named: dict[str, float] = {}
    for name, value in items:
        if name in ("*", "default"):
            default = dict.fromkeys(EMOTIONS, _number(value, what))
        elif name in EMOTIONS:
            named[name] = _number(value, f"{what} ({name})")
        else:
            raise EmoBenchError(
                f"{what}: unknown emotion {name!r}; use one of {', '.join(EMOTIONS)}, "
                "e.g. lam='anger:0.8,fear:1.2'"
            )
    return {**default, **named}  # a named emotion beats the default, wherever it is written


def circuit_edits(
    tensors: dict[str, torch.Tensor],
    index: int,
    lam: float,
    head_dim: int,
    head_mask: torch.Tensor | None = None,
    neuron_mask: torch.Tensor | None = None,
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per block, lambda x the difference vectors of emotion `index` on the circuit's heads and
    neurons (or on other masks of the same shape: the random controls of the analysis)."""
    heads = (tensors["head_mask"][index] if head_mask is None else head_mask).float()
    neurons = (tensors["neuron_mask"][index] if neuron_mask is None else neuron_mask).float()
    attn = tensors["dmu_attn"][index] * heads.repeat_interleave(head_dim, dim=-1)
    mlp = tensors["dmu_mlp"][index] * neurons
    return {layer: (lam * attn[layer], lam * mlp[layer]) for layer in range(len(attn))}


def modulation_hooks(
    model: Any,
    points: list[BlockPoints],
    edits: dict[int, tuple[torch.Tensor, torch.Tensor]],
    every_position: bool,
) -> dict[str, Callable[..., Any]]:
    """Forward pre-hooks that add the edits: to the o_proj input at every position (or the last
    one), to the down_proj input at the last position (the reference's rules)."""
    param = next(model.parameters())

    def add(vector: torch.Tensor, everywhere: bool):
        vector = vector.to(device=param.device, dtype=param.dtype)

        def hook(module, args):
            x = args[0].clone()  # the caller's tensor is left as it was
            if everywhere:
                x += vector
            else:
                last_position(x).add_(vector)
            return (x, *args[1:])

        return hook

    pre = {}
    for p in points:
        attn, mlp = edits[p.index]
        if attn.any():
            pre[p.attn_out] = add(attn, every_position)
        if mlp.any():
            pre[p.mlp_down] = add(mlp, False)
    return pre


class CircuitController(ArtifactController):
    name = "circuit"
    kind = "emotion-circuit"
    shipped = "circuit"
    sweep_grid: ClassVar[dict[str, list[Any]]] = {"lam": [0.5, 1, 2, 3, 4]}
    strength = "lam"  # what a sweep varies

    def __init__(
        self,
        lam: float | str | None = None,
        positions: str | None = None,
        artifact: str | None = None,
        lam_anger: float | None = None,
        lam_sadness: float | None = None,
        lam_happiness: float | None = None,
        lam_fear: float | None = None,
        lam_surprise: float | None = None,
        lam_disgust: float | None = None,
    ) -> None:
        super().__init__(artifact)
        recommended = self.recommended()
        given = {
            "anger": lam_anger,
            "sadness": lam_sadness,
            "happiness": lam_happiness,
            "fear": lam_fear,
            "surprise": lam_surprise,
            "disgust": lam_disgust,
        }
        self.lam = {
            **REFERENCE_LAM,
            **parse_lam(recommended.get("lam"), "recommended.json lam"),
            **parse_lam(lam),
            **{e: _number(v, f"lam_{e}") for e, v in given.items() if v is not None},
        }
        chosen = positions if positions not in (None, "") else recommended.get("positions", "all")
        if chosen not in POSITIONS:
            raise EmoBenchError(
                f"positions must be one of {', '.join(POSITIONS)} (where the heads are edited), "
                f"got {chosen!r}"
            )
        self.positions = str(chosen)

    def generation_kwargs(self) -> dict[str, Any]:
        return {"min_new_tokens": 10, "repetition_penalty": 1.1, "no_repeat_ngram_size": 3}

    def edits(self, model: Any, emotion: str) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Per block, the (o_proj input, down_proj input) vectors to add: lambda * dmu, zero
        outside the circuit's heads and neurons. Float32, on the CPU."""
        if emotion not in EMOTIONS:
            raise EmoBenchError(
                f"circuit has no circuit for {emotion!r}; emotions: {', '.join(EMOTIONS)}"
            )
        tensors, meta = self.load_artifact(model)
        points = hook_points(model)
        shape = tuple(tensors["dmu_attn"].shape[1:]), tuple(tensors["dmu_mlp"].shape[1:])
        here = (len(points), points[0].n_heads * points[0].head_dim), (len(points), points[0].d_ff)
        if shape != here:
            raise EmoBenchError(
                f"{self.artifact_path()}: its circuit has (layers, width) {shape}, this model "
                f"{here}; rebuild it with `{meta.get('command', 'emobench discover circuit')}`"
            )
        index = meta["emotions"].index(emotion)
        return circuit_edits(tensors, index, self.lam[emotion], points[0].head_dim)

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        hooks = modulation_hooks(
            model, hook_points(model), self.edits(model, emotion), self.positions == "all"
        )
        with hooked(model, forward_pre=hooks):
            yield

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        # What actually runs, defaults resolved (the args above are only what was passed).
        spec["effective"] = {"lam": dict(self.lam), "positions": self.positions}
        return spec
