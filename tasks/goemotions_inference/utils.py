"""Functions named by the goemotions_inference YAML files; lm-eval loads this file by path.

Data and label mapping come from emobench.classify.goemotions, so the classifier's training data
and these tasks read GoEmotions the same way. Importing this file also registers the lm-eval
model `emobench` (as sev_emotion's functions do), so `lm_eval run --model emobench --tasks
"$(emobench tasks-path goemotions_inference)"` works without plugin discovery of models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import emobench.model  # noqa: F401  (registers the lm-eval model "emobench")
from emobench.classify.goemotions import (
    DEFAULT_SPLIT,
    EKMAN,
    LABELS,
    ekman_label,
    load_comments,
    require_split,
)
from emobench.errors import DataError
from emobench.scoring.metrics import mean_where

__all__ = [
    "EKMAN_CHOICES",
    "FINE_CHOICES",
    "doc_to_text",
    "ekman_docs",
    "fine_docs",
    "mean_where",
    "process_results",
]

# The 27 emotions (GoEmotions' order, neutral excluded) and the 7 Ekman classes (the published
# mapping's order: anger, disgust, fear, happiness, sadness, surprise, neutral).
FINE_CHOICES: tuple[str, ...] = tuple(label for label in LABELS if label != "neutral")
EKMAN_CHOICES: tuple[str, ...] = tuple(EKMAN)
INSTRUCTION = "Which emotion does the writer of this Reddit comment express?"
# lm-eval's evaluation split of these tasks, whichever GoEmotions split fills it.
EVAL_SPLIT = "test"


def _fine_label(labels: tuple[str, ...]) -> str | None:
    """The comment's one emotion: exactly one of the 27 labels and not neutral."""
    return labels[0] if len(labels) == 1 and labels[0] in FINE_CHOICES else None


def _docs(
    metadata: dict[str, Any],
    choices: tuple[str, ...],
    label_of: Callable[[tuple[str, ...]], str | None],
    variant: str,
) -> dict[str, Any]:
    import datasets

    split = str(metadata.get("split") or DEFAULT_SPLIT)
    path = require_split(split)
    docs = []
    for comment in load_comments(path):
        label = label_of(comment.labels)
        if label is None:
            continue
        docs.append(
            {
                "id": comment.id,
                "text": comment.text,
                "label": label,
                "gold": choices.index(label),
                # On the doc, so that process_results sees the choices lm-eval scored.
                "choices": list(choices),
                "split": split,
            }
        )
    if not docs:
        raise DataError(f"{path}: no comment has a single {variant} label")
    return {EVAL_SPLIT: datasets.Dataset.from_list(docs)}


def fine_docs(**metadata: Any) -> dict[str, Any]:
    """Comments with exactly one of the 27 emotion labels (and not neutral)."""
    return _docs(metadata, FINE_CHOICES, _fine_label, "goemotions_inference")


def ekman_docs(**metadata: Any) -> dict[str, Any]:
    """Comments whose labels all map to one of the 7 Ekman classes (neutral included)."""
    return _docs(metadata, EKMAN_CHOICES, ekman_label, "goemotions_inference_ekman")


def doc_to_text(doc: dict[str, Any]) -> str:
    return f"{INSTRUCTION}\n\nComment: {doc['text']}\nEmotion:"


def process_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, Any]:
    """acc and acc_norm as lm-eval's multiple_choice computes them (acc_norm divides each
    choice's log-likelihood by its length in characters), and acc_<label> for the doc's gold
    class (None for the other classes, so that every doc reports every key: data-parallel
    ranks gather metrics by the keys of the first rank)."""
    choices: list[str] = doc["choices"]
    lls = [float(ll) for ll, _ in results]
    if len(lls) != len(choices):
        raise DataError(f"doc {doc['id']!r}: {len(lls)} log-likelihoods for {len(choices)} choices")
    # max over indices keeps the first of equal scores, as numpy's argmax does in lm-eval.
    pred = max(range(len(lls)), key=lambda i: lls[i])
    pred_norm = max(range(len(lls)), key=lambda i: lls[i] / len(choices[i]))
    acc = float(pred == doc["gold"])
    out: dict[str, Any] = {"acc": acc, "acc_norm": float(pred_norm == doc["gold"])}
    for label in choices:
        out[f"acc_{label}"] = acc if label == doc["label"] else None
    return out
