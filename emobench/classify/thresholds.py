"""Per-target thresholds for the judge-compatible verdict (`Classifier.match`).

The reference's judge answers "does this text express <target>?", so a reply that shows fear
mostly but leaves some probability on sadness can still pass. The forced choice (the most probable
label is the target) cannot say that. The verdict here is: the target's probability reaches a
threshold chosen for that target, on the classifier's *training* data only (out-of-fold
probabilities, so that the threshold is not fitted to texts the head has memorised), never on a
test set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Candidate thresholds: the verdict must stay meaningful, so never below 0.05.
GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def youden_threshold(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(threshold, J) maximising Youden's J = true-positive rate - false-positive rate of
    `scores >= threshold` over GRID; ties go to the lowest threshold (the judge is lenient)."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        raise ValueError("a threshold needs both positive and negative examples")
    passed = scores[None, :] >= GRID[:, None]
    tpr = passed[:, positive].mean(axis=1)
    fpr = passed[:, ~positive].mean(axis=1)
    j = tpr - fpr
    best = int(np.argmax(j))  # argmax takes the first maximum: the lowest threshold
    return float(GRID[best]), float(j[best])


def choose_thresholds(
    probs: np.ndarray,
    labels: Sequence[str],
    truth: Sequence[str],
    targets: Sequence[str],
    rejected: Sequence[tuple[np.ndarray, str]] = (),
) -> dict[str, dict[str, float]]:
    """For each target emotion: the threshold on its probability that best separates texts
    whose true label is the target from all other texts, plus `rejected` rows (a text's
    out-of-fold probabilities and the target a judge said it does not express), which count as
    negatives for their own target only. Returns {target: {threshold, youden_j, positives,
    negatives}}."""
    probs = np.asarray(probs)
    truth_arr = np.asarray(truth)
    out: dict[str, dict[str, float]] = {}
    for target in targets:
        col = list(labels).index(target)
        extra = [row[col] for row, t in rejected if t == target]
        scores = np.concatenate([probs[:, col], np.asarray(extra, dtype=np.float64)])
        positive = np.concatenate([truth_arr == target, np.zeros(len(extra), dtype=bool)])
        threshold, j = youden_threshold(scores, positive)
        out[target] = {
            "threshold": threshold,
            "youden_j": round(j, 4),
            "positives": int(positive.sum()),
            "negatives": int((~positive).sum()),
        }
    return out
