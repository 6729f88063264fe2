"""Expression accuracy and its breakdowns, per sample and aggregated."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from emobench import EMOTIONS, VALENCES

BREAKDOWNS: tuple[str, ...] = tuple(f"acc_{e}" for e in EMOTIONS) + tuple(f"acc_{v}" for v in VALENCES)


def sample_metrics(doc: Mapping[str, Any], scored: Mapping[str, Any]) -> dict[str, Any]:
    """One doc's metrics. A breakdown metric is None for docs outside its slice."""
    correct = float(scored["label"] == doc["target_emotion"])
    out: dict[str, Any] = {"acc": correct}
    for emotion in EMOTIONS:
        out[f"acc_{emotion}"] = correct if doc["target_emotion"] == emotion else None
    for valence in VALENCES:
        out[f"acc_{valence}"] = correct if doc["valence"] == valence else None
    return out


def mean_where(items: Iterable[float | None]) -> float:
    """Mean over the docs that belong to a slice (None marks docs outside it)."""
    values = [x for x in items if x is not None]
    return sum(values) / len(values) if values else math.nan


def task_metrics(results: Mapping[str, Any], task: str = "sev_emotion") -> dict[str, float]:
    """{metric: value} for a task from an lm-eval results dict (the filter suffix removed)."""
    block = results.get("results", {}).get(task, {})
    out: dict[str, float] = {}
    for key, value in block.items():
        metric, _, _filter = key.partition(",")
        if "stderr" in metric or not isinstance(value, (int, float)):
            continue
        if metric == "acc" or metric in BREAKDOWNS:
            out[metric] = float(value)
    return out
