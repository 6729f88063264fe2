"""Expression accuracy and its breakdowns, per sample and aggregated."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from emobench import EMOTIONS, VALENCES

BREAKDOWNS: tuple[str, ...] = tuple(f"acc_{e}" for e in EMOTIONS) + tuple(
    f"acc_{v}" for v in VALENCES
)
# Per-reply quality (emobench.quality), averaged over the run; True = higher is better.
QUALITY: dict[str, bool] = {
    "relevance": True,
    "distinct_2": True,
    "longest_repeat": False,
    "truncated": False,
    "two_sentences": True,
    "words": False,
    # Perplexity under the unsteered model (emobench.fluency); a geometric mean over replies.
    "ppl": False,
}


def sample_metrics(doc: Mapping[str, Any], scored: Mapping[str, Any]) -> dict[str, Any]:
    """One doc's metrics. A breakdown metric is None for docs outside its slice."""
    correct = float(scored["label"] == doc["target_emotion"])
    out: dict[str, Any] = {"acc": correct}
    for emotion in EMOTIONS:
        out[f"acc_{emotion}"] = correct if doc["target_emotion"] == emotion else None
    for valence in VALENCES:
        out[f"acc_{valence}"] = correct if doc["valence"] == valence else None
    quality = scored.get("quality")
    if quality is not None:
        for name in QUALITY:
            value = quality.get(name)
            out[name] = None if value is None else float(value)
    return out


def mean_where(items: Iterable[float | None]) -> float:
    """Mean over the docs that belong to a slice (None marks docs outside it)."""
    values = [x for x in items if x is not None]
    return sum(values) / len(values) if values else math.nan


def geometric_mean_where(items: Iterable[float | None]) -> float:
    """Geometric mean over measured values (perplexity: one runaway reply must not dominate)."""
    values = [math.log(x) for x in items if x is not None and x > 0]
    return math.exp(sum(values) / len(values)) if values else math.nan


def task_metrics(results: Mapping[str, Any], task: str = "sev_emotion") -> dict[str, float]:
    """{metric: value} for a task from an lm-eval results dict (the filter suffix removed)."""
    block = results.get("results", {}).get(task, {})
    out: dict[str, float] = {}
    for key, value in block.items():
        metric, _, _filter = key.partition(",")
        if "stderr" in metric or not isinstance(value, (int, float)):
            continue
        if metric == "acc" or metric in BREAKDOWNS or metric in QUALITY:
            out[metric] = float(value)
    return out


def confusion(targets: list[str], predicted: list[str], labels: list[str]) -> list[list[int]]:
    """Rows: target label; columns: predicted label (both in `labels` order)."""
    index = {lab: i for i, lab in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(targets, predicted, strict=True):
        matrix[index[t]][index[p]] += 1
    return matrix


def macro_f1(targets: list[str], predicted: list[str], labels: list[str]) -> float:
    """Unweighted mean F1 over `labels`; a label never targeted nor predicted is left out."""
    scores = []
    for lab in labels:
        tp = sum(t == lab and p == lab for t, p in zip(targets, predicted, strict=True))
        fp = sum(t != lab and p == lab for t, p in zip(targets, predicted, strict=True))
        fn = sum(t == lab and p != lab for t, p in zip(targets, predicted, strict=True))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else math.nan


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Agreement of two labelings beyond chance (1 = identical, 0 = chance)."""
    n = len(a)
    if n == 0:
        return math.nan
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    labels = set(a) | set(b)
    expected = sum((a.count(lab) / n) * (b.count(lab) / n) for lab in labels)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)
