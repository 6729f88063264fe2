"""Expression accuracy and its breakdowns, per sample and aggregated."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
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


GATE_CHECKS = ("fluent", "varied", "on_topic")


def sample_metrics(doc: Mapping[str, Any], scored: Mapping[str, Any]) -> dict[str, Any]:
    """One doc's metrics. A breakdown metric is None for docs outside its slice; a
    quality-adjusted one is NaN when the reply's quality could not be gated (no calibrated
    gate, or perplexity not measured), so that the run's aggregate is None (no value) rather
    than an average over the replies that happened to be measured."""
    target = doc["target_emotion"]
    hit = scored["label"] == target
    correct = float(hit)
    out: dict[str, Any] = {"acc": correct}
    # The judge-compatible verdict (Classifier.match_rule), for comparison with judged numbers;
    # None in samples scored before it existed, so that the run has no value, not a guess.
    match = scored.get("match")
    out["acc_match"] = None if match is None else float(bool(match))
    for emotion in EMOTIONS:
        out[f"acc_{emotion}"] = correct if target == emotion else None
    for valence in VALENCES:
        out[f"acc_{valence}"] = correct if doc["valence"] == valence else None
    # Aggregated over the whole run by macro_f1_of / confusion_matrix below; the classifier's
    # other labels (neutral, ...) ride along so that their columns exist even when unused.
    others = sorted(set(scored.get("probs") or ()) - set(EMOTIONS))
    out["macro_f1"] = out["confusion"] = (target, scored["label"], others)
    # The classifier head's hash, so that a run of another lm-eval model (which records no
    # classifier spec) still says which head scored it.
    out["classifier_head"] = scored.get("head")
    # Which docs the run read: a --samples run and a --limit run of one size read different docs.
    out["docs_sha256"] = doc["key"]
    quality = scored.get("quality")
    if quality is not None:
        for name in QUALITY:
            value = quality.get(name)
            out[name] = None if value is None else float(value)
    checks = scored.get("gate")
    passed = math.nan if checks is None else float(all(checks.values()))
    out["acc_qa"] = passed if math.isnan(passed) else float(hit and passed)
    for emotion in EMOTIONS:
        out[f"acc_qa_{emotion}"] = out["acc_qa"] if target == emotion else None
    out["gate_pass"] = passed
    for name in GATE_CHECKS:
        out[name] = math.nan if checks is None else float(checks[name])
    return out


def _measured(value: float) -> float | None:
    """An aggregate with nothing to show is None, written as JSON null: Python's json writes a
    bare NaN, which JSON.parse, jq and most other readers refuse."""
    return None if math.isnan(value) else value


def mean_where(items: Iterable[float | None]) -> float | None:
    """Mean over the docs that belong to a slice (None marks docs outside it); None when the
    slice is empty (a --limit run) or any of its docs could not be measured (NaN)."""
    values = [x for x in items if x is not None]
    return _measured(sum(values) / len(values)) if values else None


def geometric_mean_where(items: Iterable[float | None]) -> float | None:
    """Geometric mean over measured values (perplexity: one runaway reply must not dominate);
    None when no reply was measured."""
    values = [math.log(x) for x in items if x is not None and x > 0]
    return math.exp(sum(values) / len(values)) if values else None


def _split(rows: Sequence[Sequence[Any]]) -> tuple[list[str], list[str], list[str]]:
    """(targets, predictions, columns) of per-sample (target, predicted[, other labels]) rows;
    the columns are the six emotions, then the classifier's other labels and any other
    prediction (neutral, ...)."""
    targets = [str(r[0]) for r in rows]
    predicted = [str(r[1]) for r in rows]
    others = {str(lab) for r in rows if len(r) > 2 for lab in r[2]} | set(predicted)
    return targets, predicted, list(EMOTIONS) + sorted(others - set(EMOTIONS))


def confusion_matrix(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Task aggregation: the confusion matrix (rows: target, columns: predicted)."""
    targets, predicted, labels = _split(rows)
    return {
        "labels": labels,
        "rows": "target",
        "cols": "predicted",
        "matrix": confusion(targets, predicted, labels),
    }


def one_value(items: Iterable[Any]) -> Any:
    """Task aggregation of a value every doc shares (the classifier head): that value, or None
    when the docs disagree or none has one."""
    values = set(items)
    return values.pop() if len(values) == 1 else None


def docs_digest(keys: Iterable[str]) -> str:
    """Task aggregation: the sha256 of the run's doc keys (sorted, one per line), the same for
    two runs that read the same docs in any order."""
    return hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()


def macro_f1_of(rows: Sequence[Sequence[Any]]) -> float | None:
    """Task aggregation: macro-F1 over the same labels."""
    return _measured(macro_f1(*_split(rows)))


def aggregate(per_doc: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The task's aggregations (sev_emotion.yaml names the same functions) over
    `sample_metrics` rows: what a results file reports, for re-scoring outside lm-eval."""
    special = {
        "ppl": geometric_mean_where,
        "macro_f1": macro_f1_of,
        "confusion": confusion_matrix,
        "classifier_head": one_value,
        "docs_sha256": docs_digest,
    }
    names = dict.fromkeys(k for row in per_doc for k in row)
    return {
        name: special.get(name, mean_where)([row.get(name) for row in per_doc]) for name in names
    }


def task_metrics(results: Mapping[str, Any], task: str = "sev_emotion") -> dict[str, float]:
    """{metric: value} for a task from an lm-eval results dict (the filter suffix removed)."""
    block = results.get("results", {}).get(task, {})
    out: dict[str, float] = {}
    for key, value in block.items():
        metric, _, _filter = key.partition(",")
        if "stderr" in metric or not isinstance(value, (int, float)):
            continue
        if metric in ("acc", "acc_match") or metric in BREAKDOWNS or metric in QUALITY:
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
