"""Functions named by sev_emotion.yaml; lm-eval loads this file by path. Logic lives in emobench.

Importing it registers the lm-eval model `emobench` as well: lm-eval imports a task's
`!function` modules before it builds the model, so stock `lm_eval run --model emobench
--include_path DIR --tasks sev_emotion` works with no plugin discovery of models.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lm_eval.api.filter import Filter

import emobench.model  # noqa: F401  (registers the lm-eval model "emobench")
from emobench import EMOTIONS
from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.data import load_docs, user_message
from emobench.errors import EmoBenchError
from emobench.reply import measured_ppl, quality_gate
from emobench.scoring.metrics import (
    confusion_matrix,
    docs_digest,
    geometric_mean_where,
    macro_f1_of,
    mean_where,
    one_value,
    sample_metrics,
)
from emobench.scoring.quality import measure_quality

__all__ = [
    "ClassifyFilter",
    "confusion_matrix",
    "doc_to_text",
    "docs_digest",
    "geometric_mean_where",
    "macro_f1_of",
    "mean_where",
    "one_value",
    "process_results",
    "sev_test",
    "sev_train",
]

log = logging.getLogger("emobench.tasks.sev_emotion")


def _docs(split: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The split as docs, each naming the classifier that will score it.

    lm-eval passes the task's metadata here: `--metadata '{"classifier": "nrclex"}'` and, merged
    in, the model's `--model_args` (the emobench model takes `classifier=` too). The filter
    only sees docs and replies, so the docs carry the choice; the classifier is loaded now, so
    a bad name or a broken head fails before anything is generated.
    """
    import datasets

    name = str(metadata.get("classifier") or DEFAULT_CLASSIFIER)
    get_classifier(name).require_labels(EMOTIONS)
    docs = [{**doc, "classifier": name} for doc in load_docs(split)]
    return {split: datasets.Dataset.from_list(docs)}


def sev_test(**metadata: Any) -> dict[str, Any]:
    """The SEV test split as 2,880 docs."""
    return _docs("test", metadata)


def sev_train(**metadata: Any) -> dict[str, Any]:
    """The SEV train split as 2,880 docs, for sweeps (sev_emotion_train)."""
    return _docs("train", metadata)


def doc_to_text(doc: dict[str, Any]) -> str:
    """The user turn. The emobench model ignores this and builds the chat from the doc itself."""
    return user_message(doc["scenario"], doc["event"])


class ClassifyFilter(Filter):
    """Score every generation of the task in one batched classifier call.

    Each response becomes a JSON string {text, label, probs, match, classifier, head, quality,
    gate}: a
    string, because lm-eval writes filtered responses to the samples log with str(). Perplexity
    and the quality gate come with the emobench model's replies (emobench.reply); under other
    lm-eval models there are none, and quality-adjusted accuracy is NaN.
    """

    def apply(self, resps: list[list[str]], docs: list[dict[str, Any]]) -> list[str]:
        names = {d.get("classifier") or DEFAULT_CLASSIFIER for d in docs}
        if len(names) != 1:
            raise EmoBenchError(f"one run, one classifier: the docs name {sorted(names)}")
        clf = get_classifier(names.pop())
        if any(len(r) != 1 for r in resps):
            log.warning("sev_emotion scores the first of several responses per doc (repeats > 1)")
        texts = [r[0] for r in resps]
        scored = clf.classify(texts, [d["target_emotion"] for d in docs])
        spec = clf.spec()
        name, head = spec["name"], (spec.get("head") or {}).get("sha256")
        out = []
        for text, verdict, quality in zip(texts, scored, measure_quality(docs, texts), strict=True):
            quality["ppl"] = measured_ppl(text)
            gate = quality_gate(text)
            record = {
                "text": str(text),
                **verdict,
                "classifier": name,
                "head": head,
                "quality": quality,
                "gate": None if gate is None else gate.checks(quality),
            }
            out.append(json.dumps(record, ensure_ascii=False))
        return out


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return sample_metrics(doc, json.loads(results[0]))
