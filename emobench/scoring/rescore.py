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
from emobench.scoring.gate import QualityGate, gate_for, quality_adjusted
from emobench.scoring.metrics import (
    BREAKDOWNS,
    QUALITY,
    cohen_kappa,
    confusion,
    geometric_mean_where,
    macro_f1,
    mean_where,
    sample_metrics,
)
from emobench.scoring.quality import measure_quality

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
    docs: list[dict[str, Any]],
    labels: list[str],
    classifier_labels: list[str],
    qualities: list[dict[str, Any] | None] | None = None,
    gate: QualityGate | None = None,
) -> dict[str, Any]:
    """Accuracy, slices, macro-F1 and confusion for (doc, predicted label) pairs; with the
    replies' quality measures also their means and the quality-adjusted accuracy."""
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
    if qualities is not None and all(q is not None for q in qualities):
        for name in QUALITY:
            values = [q.get(name) for q in qualities]  # type: ignore[union-attr]
            agg = geometric_mean_where if name == "ppl" else mean_where
            out[name] = agg([None if v is None else float(v) for v in values])
        out["quality_adjusted"] = quality_adjusted(targets, labels, qualities, gate)
    return out


def score_samples(
    path: str | Path,
    classifier: Classifier,
    fluency: bool = False,
    gate: QualityGate | None = None,
) -> dict[str, Any]:
    """Re-score a samples log: new verdicts, the quality measures recomputed from the texts,
    perplexity taken from the run (or measured again with `fluency=True`, which loads the
    run's model and rebuilds its controller's prompts), quality-adjusted accuracy under `gate`
    (default: the run's model's calibrated gate)."""
    classifier.require_labels(EMOTIONS)
    samples = read_samples(path)
    docs = [s["doc"] for s in samples]
    texts = [s["text"] for s in samples]
    scored = classifier.classify(texts)
    labels = [s["label"] for s in scored]
    qualities = measure_quality(docs, texts)
    run = (results_beside(path) or {}).get("emobench", {})
    if fluency:
        from emobench.scoring.fluency import measure_saved

        if not run.get("model") or not run.get("controller"):
            raise DataError(
                f"{path}: no emobench results file beside it (results_<same date>.json) to say "
                "which model and controller made these replies; --fluency needs both"
            )
        ppl = measure_saved(
            docs,
            texts,
            run["model"],
            run["controller"]["name"],
            run.get("controller_args_given") or {},
        )
    else:
        ppl = [((s["original"] or {}).get("quality") or {}).get("ppl") for s in samples]
    for q, p in zip(qualities, ppl, strict=True):
        q["ppl"] = p
    if gate is None and run.get("model"):
        gate = gate_for(run["model"])
    result = summarize(docs, labels, list(classifier.labels), qualities, gate)
    result["classifier"] = classifier.spec()
    result["per_sample"] = [
        {"key": d.get("key"), "label": lab, "quality": q}
        for d, lab, q in zip(docs, labels, qualities, strict=True)
    ]
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
    metrics |= {k: result[k] for k in QUALITY if k in result}
    record = dict(original.get("emobench", {}))
    record.update(
        classifier=result["classifier"],
        rescored_from=str(samples_path),
        agreement_with_run=result.get("agreement_with_run"),
    )
    record[task] = {
        k: result[k] for k in ("macro_f1", "confusion", "quality_adjusted") if k in result
    }
    return {
        "results": {task: {f"{k},classify": v for k, v in metrics.items()}},
        "n-samples": {task: {"original": result["n"], "effective": result["n"]}},
        "emobench": record,
        "date": time.time(),
    }
