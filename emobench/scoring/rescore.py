"""Scoring separate from generation: classify text files, re-score a finished run's samples log."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emobench import EMOTIONS
from emobench.classify import Classifier
from emobench.errors import DataError
from emobench.jsonl import read_json_file, read_jsonl
from emobench.record import QA_KEYS, given_args, given_model_args, read_record, reply_settings
from emobench.scoring.gate import QualityGate, describe, gate_for
from emobench.scoring.metrics import BREAKDOWNS, QUALITY, aggregate, cohen_kappa, sample_metrics
from emobench.scoring.quality import measure_quality
from emobench.scoring.situations import restore_situations

log = logging.getLogger(__name__)

# Far past the encoder's 256-token window; longer texts are cut here, with a warning, so one
# runaway generation cannot exhaust memory in the tokenizer.
MAX_CHARS = 20_000


def _clip(text: str, where: str) -> str:
    if len(text) > MAX_CHARS:
        log.warning("%s: text of %d characters truncated to %d", where, len(text), MAX_CHARS)
        return text[:MAX_CHARS]
    return text


def texts_of(rows: Iterable[tuple[str, dict[str, Any]]], field: str) -> list[str]:
    """The `field` of each ("file:line", record) of `read_jsonl`, refused by file:line where it
    is missing."""
    texts = []
    for where, record in rows:
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
            missing = [k for k in ("key", "target_emotion", "valence") if k not in doc]
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
    restore_situations(out, path)
    return out


def summarize(
    docs: list[dict[str, Any]],
    labels: list[str],
    qualities: list[dict[str, Any] | None] | None = None,
    gate: QualityGate | None = None,
    classifier_labels: tuple[str, ...] = (),
    matches: list[bool] | None = None,
) -> dict[str, Any]:
    """Accuracy, slices, macro-F1 and confusion for (doc, predicted label) pairs; with the
    replies' quality measures also their means and the quality-adjusted accuracy. The same
    per-sample metrics and aggregations as the task, so the numbers cannot drift apart."""
    rows = []
    for i, (doc, label) in enumerate(zip(docs, labels, strict=True)):
        quality = qualities[i] if qualities is not None else None
        checks = gate.checks(quality) if gate is not None and quality else None
        scored = {"label": label, "probs": classifier_labels, "quality": quality, "gate": checks}
        if matches is not None:
            scored["match"] = matches[i]
        rows.append(sample_metrics(doc, scored))
    agg = aggregate(rows)
    out: dict[str, Any] = {"n": len(docs)}
    out |= {k: agg[k] for k in ("acc", *BREAKDOWNS, "macro_f1", "confusion", "docs_sha256")}
    if matches is not None:
        out["acc_match"] = agg["acc_match"]
    if qualities is not None and all(q is not None for q in qualities):
        out |= {name: agg[name] for name in QUALITY if name in agg}
        out["quality_adjusted"] = {k: agg[k] for k in QA_KEYS} | {"gate": describe(gate)}
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
    scored = classifier.classify(texts, [d["target_emotion"] for d in docs])
    labels = [s["label"] for s in scored]
    matches = [bool(s["match"]) for s in scored]
    qualities = measure_quality(docs, texts)
    try:
        beside = results_beside(path) or {}
    except DataError as exc:
        if fluency:
            raise
        # Only --fluency needs the run's record; the re-score goes on without its gate.
        log.warning("%s; scored without the run's record", exc)
        beside = {}
    run = read_record(beside) or {}
    if fluency:
        from emobench.scoring.fluency import measure_saved

        if not run.get("model") or not run.get("controller"):
            raise DataError(
                f"{path}: no emobench results file beside it (results_<same date>.json) to say "
                "which model and controller made these replies; --fluency needs both"
            )
        given = given_model_args(beside.get("config") or {})
        if shaping := reply_settings(given):
            raise DataError(
                f"{path}: the run's model had {shaping}, which --fluency does not load again "
                "(it loads pretrained= and dtype=); drop --fluency to keep the run's own "
                "perplexities"
            )
        load = {"pretrained": run["model"]}
        if str(given.get("dtype", "auto")) != "auto":
            load["dtype"] = given["dtype"]
        ppl = measure_saved(
            docs, texts, load, run["controller"]["name"], given_args(run["controller"], run)
        )
    else:
        ppl = [((s["original"] or {}).get("quality") or {}).get("ppl") for s in samples]
    for q, p in zip(qualities, ppl, strict=True):
        q["ppl"] = p
    if gate is None and run.get("model"):
        gate = gate_for(run["model"])
    if gate is None:
        log.warning(
            "%s: no quality-adjusted accuracy: %s; pass --gate FILE",
            path,
            f"no quality gate for {run['model']}"
            if run.get("model")
            else "no emobench results file beside it names the model whose gate applies",
        )
    result = summarize(docs, labels, qualities, gate, tuple(classifier.labels), matches)
    result["classifier"] = classifier.spec()
    result["per_sample"] = [
        {"key": d.get("key"), "label": lab, "match": m, "quality": q}
        for d, lab, m, q in zip(docs, labels, matches, qualities, strict=True)
    ]
    originals = [s["original"] for s in samples]
    if all(o is not None for o in originals):
        result["agreement_with_run"] = {
            "classifier": originals[0].get("classifier"),
            "cohen_kappa": cohen_kappa([o["label"] for o in originals], labels),
        }
    return result


# A samples log as lm-eval writes it, and as `emobench publish` keeps it (gzip).
SAMPLES_SUFFIXES = (".jsonl", ".jsonl.gz")


def _log_name(samples_path: str | Path) -> str:
    name = Path(samples_path).name
    for suffix in sorted(SAMPLES_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def run_stamp(samples_path: str | Path) -> str:
    """The timestamp a samples log shares with its results file: samples_<task>_<stamp>.jsonl."""
    return _log_name(samples_path).rpartition("_")[2]


def run_task(samples_path: str | Path) -> str | None:
    """The task a samples log is of (samples_<task>_<stamp>.jsonl), or None for another name."""
    name = _log_name(samples_path)
    task = name.removeprefix("samples_").rpartition("_")[0]
    return task if name.startswith("samples_") and task else None


def results_beside(samples_path: str | Path) -> dict[str, Any] | None:
    """The lm-eval results file written with a samples log (same timestamp), if it is there;
    a damaged one is an error that names it, not a file that is not there."""
    path = Path(samples_path)
    candidate = path.with_name(f"results_{run_stamp(path)}.json")
    if not candidate.is_file():
        return None
    results, problem = read_json_file(candidate)
    if problem:
        raise DataError(f"{candidate}: {problem}")
    if not isinstance(results, dict):
        raise DataError(f"{candidate}: not an lm-eval results file (no JSON object)")
    return results


def as_results(result: dict[str, Any], samples_path: str | Path) -> dict:
    """A re-scored run in the shape of lm-eval's results file, so the leaderboard can rank it
    beside the runs of its task, as a full or a partial run as the original was."""
    import time

    original = results_beside(samples_path) or {}
    task = run_task(samples_path) or "sev_emotion"
    counts = (original.get("n-samples") or {}).get(task) or {}
    metrics = {
        k: result[k]
        for k in ("acc", "acc_match", *BREAKDOWNS, "macro_f1", "confusion", "docs_sha256")
        if k in result
    }
    metrics |= {k: result[k] for k in QUALITY if k in result}
    qa = dict(result.get("quality_adjusted") or {})
    gate = qa.pop("gate", None)
    metrics |= qa
    record = read_record(original) or {}
    record.update(
        classifier=result["classifier"],
        gate=gate,
        rescored_from=str(samples_path),
        agreement_with_run=result.get("agreement_with_run"),
    )
    out = {
        "results": {task: {f"{k},classify": v for k, v in metrics.items()}},
        "n-samples": {
            task: {"original": counts.get("original", result["n"]), "effective": result["n"]}
        },
        "config": {**(original.get("config") or {}), "emobench": record},
        "date": time.time(),
    }
    if "total_evaluation_time_seconds" in original:
        out["total_evaluation_time_seconds"] = original["total_evaluation_time_seconds"]
    return out
