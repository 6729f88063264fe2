"""The scoring seam: one classifier scores every controller's generations the same way."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from emobench import __version__
from emobench.errors import EmoBenchError
from emobench.registry import CLASSIFIERS, create

DEFAULT_CLASSIFIER = "minilm"


class Classifier:
    """Maps texts to a probability over `labels`. Subclasses implement `predict_proba`."""

    name: str = "base"
    labels: tuple[str, ...] = ()
    args: dict[str, Any]
    registry_name: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), len(labels)) probabilities; called once per task with every text."""
        raise NotImplementedError

    def classify(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        probs = self.predict_proba(list(texts))
        out = []
        for row in probs:
            out.append(
                {
                    "label": self.labels[int(np.argmax(row))],
                    "probs": {
                        lab: round(float(p), 6) for lab, p in zip(self.labels, row, strict=True)
                    },
                }
            )
        return out

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
            "emobench_version": __version__,
        }


@functools.lru_cache(maxsize=4)
def get_classifier(name: str = DEFAULT_CLASSIFIER) -> Classifier:
    """One instance per name per process: the encoder loads once, however many tasks score."""
    clf = create(CLASSIFIERS, name)
    if not isinstance(clf, Classifier):
        raise TypeError(
            f"classifier {name!r} is a {type(clf).__name__}, not an emobench Classifier"
        )
    return clf
