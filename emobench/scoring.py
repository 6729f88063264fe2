"""Scoring separate from generation: classify text files, re-score a finished run's samples log."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from emobench import EMOTIONS
from emobench.classify import Classifier
from emobench.errors import DataError
from emobench.jsonl import read_jsonl
from emobench.metrics import (
    BREAKDOWNS,
    cohen_kappa,
    confusion,
    macro_f1,
    mean_where,
    sample_metrics,
)

log = logging.getLogger(__name__)

# Far past the encoder's 256-token window; longer texts are cut here, with a warning, so one
# runaway generation cannot exhaust memory in the tokenizer.
MAX_CHARS = 20_000


def _clip(text: str, where: str) -> str:
    if len(text) > MAX_CHARS:
        log.warning("%s: text of %d characters truncated to %d", where, len(text), MAX_CHARS)
        return text[:MAX_CHARS]
    return text


def read_texts(path: str | Path, field: str = "text") -> list[str]:
    """The `field` of every line of a JSONL file; a line without it fails with file:line."""
    texts = []
    for where, record in read_jsonl(path):
        text = record.get(field)
        if not isinstance(text, str):
            raise DataError(f"{where}: no string field {field!r}")
        texts.append(_clip(text, where))
    return texts


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """(doc, reply, the run's own scoring) of an lm-eval samples log of sev_emotion."""
    out = []
    for where, record in read_jsonl(path):
        try:
            doc = record["doc"]
            text = record["resps"][0][0]
            missing = [k for k in ("target_emotion", "valence") if k not in doc]
        except (KeyError, IndexError, TypeError) as exc:
            missing = [repr(exc)]
        if missing:
            raise DataError(
                f"{where}: not an lm-eval samples line of sev_emotion "
                f"({', '.join(missing)} missing)"
            )
        original = None
        # Runs scored by another version may lack the JSON record; re-scoring still works.
        with contextlib.suppress(KeyError, IndexError, TypeError, json.JSONDecodeError):
            original = json.loads(record["filtered_resps"][0])
        out.append({"doc": doc, "text": _clip(text, where), "original": original})
    return out


def summarize(
    docs: list[dict[str, Any]], labels: list[str], classifier_labels: list[str]
) -> dict[str, Any]:
    """Accuracy, slices, macro-F1 and confusion for (doc, predicted label) pairs."""
    # The same per-sample metrics and slice means as the task, so the numbers cannot drift apart.
    per_doc = [sample_metrics(d, {"label": lab}) for d, lab in zip(docs, labels, strict=True)]
    out: dict[str, Any] = {"n": len(docs)}
    for metric in ("acc", *BREAKDOWNS):
        out[metric] = mean_where([m[metric] for m in per_doc])
    targets = [d["target_emotion"] for d in docs]
    all_labels = list(EMOTIONS) + [lab for lab in classifier_labels if lab not in EMOTIONS]
    out["macro_f1"] = macro_f1(targets, labels, all_labels)
    out["confusion"] = {
        "labels": all_labels,
        "rows": "target",
        "cols": "predicted",
        "matrix": confusion(targets, labels, all_labels),
    }
    return out


def score_samples(path: str | Path, classifier: Classifier) -> dict[str, Any]:
    classifier.require_labels(EMOTIONS)
    samples = read_samples(path)
    scored = classifier.classify([s["text"] for s in samples])
    labels = [s["label"] for s in scored]
    result = summarize([s["doc"] for s in samples], labels, list(classifier.labels))
    result["classifier"] = classifier.spec()
    originals = [s["original"] for s in samples]
    if all(o is not None for o in originals):
        result["agreement_with_run"] = {
            "classifier": originals[0].get("classifier"),
            "cohen_kappa": cohen_kappa([o["label"] for o in originals], labels),
        }
    return result


def results_beside(samples_path: str | Path) -> dict[str, Any] | None:
    """The lm-eval results file written with a samples log (same timestamp), if it is there."""
    path = Path(samples_path)
    stamp = path.stem.rpartition("_")[2]
    candidate = path.with_name(f"results_{stamp}.json")
    if candidate.is_file():
        with contextlib.suppress(json.JSONDecodeError, OSError):
            return json.loads(candidate.read_text())
    return None


def as_results(result: dict[str, Any], samples_path: str | Path, task: str = "sev_emotion") -> dict:
    """A re-scored run in the shape of lm-eval's results file, so the leaderboard can rank it."""
    import time

    original = results_beside(samples_path) or {}
    metrics = {"acc": result["acc"]} | {k: result[k] for k in BREAKDOWNS}
    record = dict(original.get("emobench", {}))
    record.update(
        classifier=result["classifier"],
        rescored_from=str(samples_path),
        agreement_with_run=result.get("agreement_with_run"),
    )
    record[task] = {"macro_f1": result["macro_f1"], "confusion": result["confusion"]}
    return {
        "results": {task: {f"{k},classify": v for k, v in metrics.items()}},
        "n-samples": {task: {"original": result["n"], "effective": result["n"]}},
        "emobench": record,
        "date": time.time(),
    }
