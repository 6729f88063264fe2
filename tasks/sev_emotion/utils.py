"""Hooks named by sev_emotion.yaml. lm-eval loads this file by path; the logic lives in emobench."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from lm_eval.api.filter import Filter

from emobench import EMOTIONS
from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.data import load_docs, user_message
from emobench.scoring import fluency
from emobench.scoring.metrics import geometric_mean_where, mean_where, sample_metrics
from emobench.scoring.quality import relevance, text_quality

__all__ = [
    "ClassifyFilter",
    "doc_to_text",
    "geometric_mean_where",
    "mean_where",
    "process_results",
    "sev_test",
    "sev_train",
]

log = logging.getLogger("emobench.tasks.sev_emotion")


def sev_test(**_metadata: Any) -> dict[str, Any]:
    """The SEV test split as 2,880 docs (lm-eval passes --metadata and model_args; unused)."""
    import datasets

    return {"test": datasets.Dataset.from_list(load_docs("test"))}


def sev_train(**_metadata: Any) -> dict[str, Any]:
    """The SEV train split as 2,880 docs, for sweeps (sev_emotion_train)."""
    import datasets

    return {"train": datasets.Dataset.from_list(load_docs("train"))}


def doc_to_text(doc: dict[str, Any]) -> str:
    """The user turn. The emobench model ignores this and builds the chat from the doc itself."""
    return user_message(doc["scenario"], doc["event"])


class ClassifyFilter(Filter):
    """Score every generation of the task in one batched classifier call.

    The classifier is $EMOBENCH_CLASSIFIER (the emobench CLI sets it from --classifier), default
    `minilm`. Each response becomes a JSON string {text, label, probs, classifier, quality}:
    a string, because lm-eval writes filtered responses to the samples log with str().
    """

    def __init__(self, classifier: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classifier_name = (
            os.environ.get("EMOBENCH_CLASSIFIER") or classifier or DEFAULT_CLASSIFIER
        )

    def apply(self, resps: list[list[str]], docs: list[dict[str, Any]]) -> list[str]:
        clf = get_classifier(self.classifier_name)
        clf.require_labels(EMOTIONS)
        if any(len(r) != 1 for r in resps):
            log.warning("sev_emotion scores the first of several responses per doc (repeats > 1)")
        texts = [r[0] for r in resps]
        scored = clf.classify(texts)
        name = clf.spec()["name"]
        situations = [user_message(d["scenario"], d["event"]) for d in docs]
        related = relevance(texts, situations)
        out = []
        for doc, text, verdict, rel in zip(docs, texts, scored, related, strict=True):
            quality = {**text_quality(text), "relevance": round(float(rel), 6)}
            # Measured by the emobench model after generation; None under other lm-eval models.
            quality["ppl"] = fluency.recall(doc.get("key", ""), text)
            record = {"text": text, **verdict, "classifier": name, "quality": quality}
            out.append(json.dumps(record, ensure_ascii=False))
        return out


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return sample_metrics(doc, json.loads(results[0]))
