"""`random-direction`: the null baseline of `steer`, steering along random directions.

Everything is `steer`'s: the hook points (the output of each decoder block), the blocks, the
rule h <- h + alpha * RMS(h) * v at the last position, the defaults of alpha and layers (given,
else the artifact's recommended.json, else steer's fallbacks) and the generation settings. Only
v differs: for each emotion and block, a random vector with the norm of steer's direction there,
drawn from a generator seeded by (seed, emotion, block), so every emotion gets its own vector
and a run is reproducible. A steering claim is worth what it beats this by.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from emobench.controllers.steer import SteerController

from emobench.errors import EmoBenchError

__all__ = ["RandomDirectionController", "random_unit"]
__version__ = "0.1.0"

MAX_SEED = 2**63 - 1


def random_unit(seed: int, emotion: str, layer: int, width: int) -> torch.Tensor:
    """A random unit vector of `width` float32 entries (Gaussian, so uniform on the sphere), the
    same for the same (seed, emotion, layer) in every run; any other triple gives another."""
    key = hashlib.sha256(f"random-direction/{seed}/{emotion}/{layer}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") & MAX_SEED)
    v = torch.randn(width, generator=generator, dtype=torch.float32)
    return v / v.norm()


def _seed(value: Any) -> int:
    """The seed as an int in [0, 2**63), refused (naming it) otherwise."""
    seed = None
    if isinstance(value, int) and not isinstance(value, bool):
        seed = value
    elif isinstance(value, str) and value.strip().isdigit():
        seed = int(value)
    if seed is None or not 0 <= seed <= MAX_SEED:
        raise EmoBenchError(
            f"random-direction: seed must be a whole number from 0 to {MAX_SEED}, got {value!r}"
        )
    return seed


class RandomDirectionController(SteerController):
    name = "random-direction"

    def __init__(
        self,
        seed: int = 0,
        alpha: float | None = None,
        layers: str | None = None,
        artifact: str | None = None,
    ) -> None:
        self.seed = _seed(seed)
        super().__init__(alpha=alpha, layers=layers, artifact=artifact)

    def direction(
        self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], emotion: str, layer: int
    ) -> torch.Tensor:
        steer = super().direction(tensors, meta, emotion, layer)
        v = random_unit(self.seed, emotion, layer, steer.shape[-1]) * steer.float().norm()
        return v.to(steer.dtype)

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        # The seed is part of what ran even when left at its default: it goes into the
        # leaderboard's args column beside steer's resolved alpha and layers.
        spec["effective"]["seed"] = self.seed
        spec["plugin"] = {"distribution": "emobench-random-direction", "version": __version__}
        return spec
