"""The scoring seam: one classifier scores every controller's generations the same way."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from emobench import __version__
from emobench.errors import EmoBenchError
from emobench.registry import CLASSIFIERS, create

DEFAULT_CLASSIFIER = "mpnet-ft"


class Classifier:
    """Maps texts to a probability over `labels`. Subclasses implement `predict_proba`."""

    name: str = "base"
    labels: tuple[str, ...] = ()
    args: dict[str, Any]
    registry_name: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), len(labels)) probabilities; called once per task with every text."""
        raise NotImplementedError

    def match_thresholds(self) -> dict[str, float] | None:
        """Per-target probability thresholds of the judge-compatible verdict, or None when the
        classifier has none (its verdict is then the forced choice: label == target)."""
        return None

    def match_rule(self) -> dict[str, Any]:
        """How `match` decides, for the record of a run."""
        thresholds = self.match_thresholds()
        if thresholds is None:
            return {"rule": "forced choice: the most probable label is the target"}
        return {
            "rule": "the target's probability reaches the target's threshold",
            "thresholds": {k: round(float(v), 4) for k, v in thresholds.items()},
        }

    def classify(
        self, texts: Sequence[str], targets: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """`label` (the most probable label) and `probs` per text; with `targets`, also `match`:
        does the text express its target emotion (the reference judge's question), by
        `match_rule`."""
        if targets is not None:
            if len(targets) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(targets)} targets")
            self.require_labels(sorted(set(targets)))
        probs = self.checked_proba(texts)
        thresholds = self.match_thresholds() if targets is not None else None
        out = []
        for i, row in enumerate(probs):
            label = self.labels[int(np.argmax(row))]
            scored: dict[str, Any] = {
                "label": label,
                "probs": {lab: round(float(p), 6) for lab, p in zip(self.labels, row, strict=True)},
            }
            if targets is not None:
                target = targets[i]
                if thresholds is None or target not in thresholds:
                    scored["match"] = label == target
                else:
                    p_target = float(row[self.labels.index(target)])
                    scored["match"] = p_target >= thresholds[target]
            out.append(scored)
        return out

    def checked_proba(self, texts: Sequence[str]) -> np.ndarray:
        """`predict_proba`, refused with the classifier's name unless it is one finite row per
        text and one column per label: a plugin's slip must not shift every verdict."""
        expected = (len(texts), len(self.labels))
        try:
            probs = np.asarray(self.predict_proba(list(texts)), dtype=float)
        except (TypeError, ValueError) as exc:  # ragged rows, or not numbers
            probs, what = np.empty((0, 0)), f"what is not a numeric table ({exc})"
        else:
            what = f"shape {probs.shape}" if probs.shape != expected else "non-finite values"
        if probs.shape != expected or not np.isfinite(probs).all():
            raise EmoBenchError(
                f"classifier {self.spec()['name']!r} ({type(self).__module__}:"
                f"{type(self).__qualname__}).predict_proba returned {what} for {len(texts)} "
                f"texts; it must return one row per text and one finite column per label "
                f"({len(self.labels)}: {', '.join(self.labels)})"
            )
        return probs

    def require_labels(self, needed: Sequence[str]) -> None:
        missing = [lab for lab in needed if lab not in self.labels]
        if missing:
            raise EmoBenchError(
                f"classifier {self.spec()['name']!r} cannot name {', '.join(missing)} "
                f"(its labels: {', '.join(self.labels)}); "
                "pick a classifier that covers the target emotions"
            )

    def spec(self) -> dict[str, Any]:
        return {
            "name": getattr(self, "registry_name", self.name),
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "args": dict(getattr(self, "args", {})),
            "labels": list(self.labels),
            "match": self.match_rule(),
            "emobench_version": __version__,
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (texts, labels) logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    return p / p.sum(axis=1, keepdims=True)


class CardedClassifier(Classifier):
    """A classifier whose shipped head comes with a JSON card (`meta`): the card holds the
    judge-compatible thresholds and what a run's record says about the head."""

    meta: dict[str, Any]
    # The card's entries copied into spec()["head"], when present.
    card_keys: tuple[str, ...] = ("sha256", "trained_on", "heldout")

    def match_thresholds(self) -> dict[str, float] | None:
        thresholds = (self.meta.get("match") or {}).get("thresholds")
        return {str(k): float(v) for k, v in thresholds.items()} if thresholds else None

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["head"] = {k: self.meta[k] for k in self.card_keys if k in self.meta}
        return spec


@functools.lru_cache(maxsize=4)
def get_classifier(name: str = DEFAULT_CLASSIFIER) -> Classifier:
    """One instance per name per process: the encoder loads once, however many tasks score."""
    clf = create(CLASSIFIERS, name)
    if not isinstance(clf, Classifier):
        raise TypeError(
            f"classifier {name!r} is a {type(clf).__name__}, not an emobench Classifier"
        )
    return clf
