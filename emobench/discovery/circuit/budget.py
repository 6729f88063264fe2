"""The budgeted integration of a circuit (METHOD.md, controller 3, step 3).

A global budget of components (10 per sublayer by default) is split between MLP neurons (70 %)
and attention heads (30 %). Every sublayer first gets a floor (4 neurons per MLP, 2 heads per
attention), so that no layer is silenced outright; the rest of a kind's budget follows the
sublayers' importance, clipped at zero (a sublayer that pushes *away* from the emotion earns
nothing), in whole components by the largest-remainder rule, and no sublayer may hold more than
40 % of its kind's budget, so that one loud layer cannot take the whole circuit.

Pure Python on plain numbers: unit-tested on hand-made inputs, independent of any model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from emobench.errors import EmoBenchError


@dataclass(frozen=True)
class Budget:
    """The numbers of the integration; the defaults are the reference's."""

    per_sublayer: int = 10  # K = per_sublayer x (number of sublayers)
    neuron_share: float = 0.7  # the rest goes to heads
    neuron_floor: int = 4  # per MLP
    head_floor: int = 2  # per attention
    cap: float = 0.4  # of the kind's budget, per sublayer

    def __post_init__(self) -> None:
        if self.per_sublayer < 0:
            raise EmoBenchError(f"per_sublayer must be >= 0, got {self.per_sublayer}")
        if not 0.0 <= self.neuron_share <= 1.0:
            raise EmoBenchError(f"neuron_share must be in [0, 1], got {self.neuron_share}")
        if self.neuron_floor < 0 or self.head_floor < 0:
            raise EmoBenchError("neuron_floor and head_floor must be >= 0")
        if not 0.0 < self.cap <= 1.0:
            raise EmoBenchError(f"cap must be in (0, 1], got {self.cap}")

    def totals(self, layers: int) -> tuple[int, int]:
        """(neuron budget, head budget) for a model with `layers` blocks (2 sublayers each)."""
        total = self.per_sublayer * 2 * layers
        neurons = round(total * self.neuron_share)
        return neurons, total - neurons

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _clean(weights: Sequence[float]) -> list[float]:
    """max(I, 0), with NaN (a sublayer that could not be measured) counted as 0."""
    return [w if w > 0 and math.isfinite(w) else 0.0 for w in (float(x) for x in weights)]


def _water_fill(amount: int, weights: list[float], room: list[int]) -> list[float]:
    """Real-valued shares of `amount`, proportional to `weights`, none above its `room`.

    A sublayer whose share would exceed its room is fixed at the room and the excess goes
    back to the others, again in proportion; when every weight left is zero the excess is
    shared equally, so that the total is always placed (the caller checks sum(room) >= amount).
    """
    open_ = [i for i, r in enumerate(room) if r > 0]
    shares = [0.0] * len(room)
    left = float(amount)
    while left > 1e-9 and open_:
        w = [weights[i] for i in open_]
        total = sum(w)
        if total <= 0:
            w, total = [1.0] * len(open_), float(len(open_))
        quota = {i: left * wi / total for i, wi in zip(open_, w, strict=True)}
        full = [i for i in open_ if quota[i] >= room[i] - shares[i]]
        if not full:
            for i in open_:
                shares[i] += quota[i]
            break
        for i in full:
            left -= room[i] - shares[i]
            shares[i] = float(room[i])
        open_ = [i for i in open_ if i not in full]
    return shares


def _round(shares: list[float], amount: int, weights: list[float], room: list[int]) -> list[int]:
    """Whole numbers summing to `amount`: floors first, then +1 by largest remainder."""
    counts = [min(math.floor(s + 1e-9), r) for s, r in zip(shares, room, strict=True)]
    # Ties go to the heavier sublayer, then the earlier one, so the result is deterministic.
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - counts[i]), -weights[i], i))
    left = amount - sum(counts)
    while left > 0:
        progressed = False
        for i in order:
            if left == 0:
                break
            if counts[i] < room[i]:
                counts[i] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return counts


def allocate(
    importance: Sequence[float], budget: int, floor: int, cap: float, capacity: Sequence[int]
) -> list[int]:
    """How many components each sublayer of one kind gets.

    - every sublayer gets ``min(floor, capacity)``; when the floors alone exceed the budget,
      the floor shrinks to what fits evenly (``budget // n``);
    - the rest is shared in proportion to ``max(importance, 0)`` (equally when all are <= 0),
      whole components by largest remainder, at most ``floor(cap * budget)`` per sublayer
      (never below its floor) and never more than its ``capacity``;
    - the cap yields only when the budget cannot be placed under it (a small model with few
      layers), and the total is exactly ``min(budget, sum(capacity))``.
    """
    n = len(importance)
    if len(capacity) != n:
        raise EmoBenchError(f"{n} importances but {len(capacity)} capacities")
    if n == 0 or budget <= 0:
        return [0] * n
    capacity = [max(0, int(c)) for c in capacity]
    weights = _clean(importance)
    budget = min(int(budget), sum(capacity))
    if floor * n > budget:
        floor = budget // n
    base = [min(floor, c) for c in capacity]
    left = budget - sum(base)
    limit = max(math.floor(cap * budget), 0)
    room = [max(0, min(c, max(limit, b)) - b) for c, b in zip(capacity, base, strict=True)]
    if sum(room) < left:  # the cap cannot hold: fill up to each sublayer's capacity instead
        room = [c - b for c, b in zip(capacity, base, strict=True)]
    shares = _water_fill(left, weights, room)
    extra = _round(shares, left, weights, room)
    return [b + e for b, e in zip(base, extra, strict=True)]
