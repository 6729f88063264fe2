"""`steer`: add an emotion direction to the residual stream (METHOD.md, controller 2).

h <- h + alpha * RMS(h) * v_e(L) on the output of each block in the chosen range, at the last
position of every forward pass (the last prompt token at prefill, then each generated token),
with the neutral system message. Directions come from `emobench discover directions`; the
artifact for the embedded default model ships in controllers/artifacts/.

Defaults: alpha and layers given on the command line win. Otherwise an artifact may carry
`recommended.json` (alpha, layers, and where they came from: for the shipped artifact, the best
quality-adjusted point of `emobench sweep` on the SEV train split); failing that, alpha
2.0 and the reference's blocks 11-20 of 28 mapped to the model's depth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch

from emobench import EMOTIONS
from emobench.controller import ArtifactController, finite_number
from emobench.errors import EmoBenchError
from emobench.hooks import hook_points, hooked, last_position

# The reference steered blocks 11-20 of Llama-3.2-3B's 28; other depths get the same share.
REFERENCE_RANGE, REFERENCE_DEPTH = (11, 20), 28
FALLBACK_ALPHA = 2.0


def default_layers(depth: int) -> tuple[int, int]:
    lo, hi = REFERENCE_RANGE
    return round(lo * depth / REFERENCE_DEPTH), round(hi * depth / REFERENCE_DEPTH)


def parse_layers(spec: str | None, depth: int) -> tuple[int, int]:
    if spec is None or spec == "":
        return default_layers(depth)
    try:
        lo, _, hi = str(spec).partition("-")
        first, last = int(lo), int(hi or lo)
    except ValueError as exc:
        raise EmoBenchError(
            f"layers must look like '12-21' (first-last, inclusive), got {spec!r}"
        ) from exc
    if not 0 <= first <= last < depth:
        raise EmoBenchError(
            f"layers {spec!r} out of range for a model with {depth} blocks (0-{depth - 1})"
        )
    return first, last


class SteerController(ArtifactController):
    name = "steer"
    strength = "alpha"
    kind = "emotion-directions"
    shipped = "directions"
    sweep_grid: ClassVar[dict[str, list[Any]]] = {"alpha": [0.5, 1, 2, 4]}

    def __init__(
        self, alpha: float | None = None, layers: str | None = None, artifact: str | None = None
    ) -> None:
        super().__init__(artifact)
        recommended = self.recommended()
        chosen = alpha if alpha is not None else recommended.get("alpha", FALLBACK_ALPHA)
        self.alpha = finite_number(self.name, "alpha", chosen)
        self.layers = layers if layers not in (None, "") else recommended.get("layers")

    def generation_kwargs(self) -> dict[str, Any]:
        return {"min_new_tokens": 10, "repetition_penalty": 1.05, "no_repeat_ngram_size": 3}

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        if emotion not in EMOTIONS:
            raise EmoBenchError(
                f"{self.name} has no direction for {emotion!r}; emotions: {', '.join(EMOTIONS)}"
            )
        tensors, meta = self.load_artifact(model)
        points = hook_points(model)
        first, last = parse_layers(self.layers, len(points))
        param = next(model.parameters())

        def make_hook(v: torch.Tensor):
            v = v.to(device=param.device, dtype=param.dtype)

            def hook(module, args, output):
                last = last_position(output[0] if isinstance(output, tuple) else output)
                rms = last.pow(2).mean(dim=-1, keepdim=True).sqrt()
                last += self.alpha * rms * v
                return output

            return hook

        hooks = {
            points[i].block: make_hook(self.direction(tensors, meta, emotion, i))
            for i in range(first, last + 1)
        }
        with hooked(model, forward=hooks):
            yield

    def direction(
        self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], emotion: str, layer: int
    ) -> torch.Tensor:
        """The vector v added at block `layer` for `emotion`: the artifact's direction. The one
        seam for a subclass that steers along other vectors with the same rule (a null baseline
        of random directions, for one)."""
        return tensors["post_block"][meta["emotions"].index(emotion), layer]

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        # What actually runs, defaults resolved (the args above are only what was passed).
        spec["effective"] = {"alpha": self.alpha, "layers": self.layers or "proportional"}
        return spec
