"""The HTML report: per ranking the ranked table, per-emotion accuracy bars and, per row, the
confusion matrix and a few sample generations per target emotion; then the accuracy-vs-quality
frontier of the sweeps given. One self-contained file (charts are data URIs).

Generations are model output, so untrusted: the template is rendered with autoescaping on for
everything and nothing from a results file or a samples log is ever marked safe; a
Content-Security-Policy that allows no script stands behind that."""

from __future__ import annotations

import json
import logging
import re
import zlib
from importlib.resources import files
from pathlib import Path
from typing import Any

from emobench.leaderboard.collect import TASK, rankings

from emobench import EMOTIONS
from emobench.errors import DataError
from emobench.jsonl import open_bytes
from emobench.record import read_record, task_extras
from emobench.scoring.rescore import SAMPLES_SUFFIXES, results_beside
from emobench.scoring.situations import reference_parts

logger = logging.getLogger("emobench.leaderboard")

SAMPLES_PER_EMOTION = 2
# Replies are capped at 100 tokens by the task; this bounds the report if a log holds more.
MAX_REPLY_CHARS = 2000
STAMP = re.compile(r"^results_(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)")


def _read_results(path: str | Path) -> dict[str, Any] | None:
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def _heat(share: float) -> str:
    """Cell style for a share of its row: white to blue, with text that stays readable."""
    if share <= 0:
        return ""
    text = "#fff" if share > 0.55 else "#111"
    return f"background: rgba(37, 99, 235, {0.08 + 0.87 * share:.2f}); color: {text}"


def confusion_table(results: dict[str, Any]) -> dict[str, Any] | None:
    """The run's confusion matrix (target rows, predicted columns) as heat-table cells."""
    try:
        matrix = task_extras(results, TASK).get("confusion")
    except (AttributeError, TypeError, ValueError):
        return None
    if not isinstance(matrix, dict):
        return None
    labels, counts = matrix.get("labels"), matrix.get("matrix")
    if not isinstance(labels, list) or not isinstance(counts, list):
        return None
    # The matrix has one row per target emotion (the six) and one column per label the
    # classifier can give (six, or seven with neutral).
    rows = []
    for target, values in zip(labels, counts, strict=False):
        if not isinstance(values, list) or len(values) != len(labels):
            return None
        if not all(isinstance(v, (int, float)) for v in values):
            return None
        total = sum(values)
        if not total and target not in EMOTIONS:
            continue  # the `neutral` row: no doc has it as its target
        rows.append(
            {
                "target": str(target),
                "total": total,
                "cells": [
                    {
                        "n": round(v),
                        "style": _heat(v / total if total else 0.0),
                        "hit": str(label) == str(target),
                    }
                    for label, v in zip(labels, values, strict=True)
                ],
            }
        )
    if not rows:
        return None
    return {"labels": [str(label) for label in labels], "rows": rows}


def samples_log(results_path: Path, results: dict[str, Any] | None) -> tuple[Path | None, str]:
    """The samples log of a run and where it was looked for."""
    candidates: list[Path] = []
    stamp = STAMP.match(results_path.name)
    if stamp:
        candidates += [
            results_path.with_name(f"samples_{TASK}_{stamp.group(1)}{suffix}")
            for suffix in SAMPLES_SUFFIXES
        ]
    record = (read_record(results) or {}) if results else {}
    if isinstance(record.get("rescored_from"), str):
        # A re-scored run: the log it was scored from.
        candidates.append(Path(record["rescored_from"]))
    for path in candidates:
        if path.is_file():
            return path, ""
    where = " or ".join(str(p) for p in candidates) or f"a samples_{TASK}_<stamp>.jsonl beside it"
    return None, f"No samples log for this run (looked for {where}); run with --log_samples."


def _label(sample: dict[str, Any]) -> str:
    """The classifier's label of a reply: the `classify` filter's output is a JSON string."""
    value = sample.get("filtered_resps")
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return "?"
    return str(value.get("label", "?")) if isinstance(value, dict) else "?"


def _reply(sample: dict[str, Any]) -> str | None:
    resps = sample.get("resps")
    try:
        reply = resps[0][0]  # type: ignore[index]
    except (IndexError, KeyError, TypeError):
        return None
    if not isinstance(reply, str):
        return None
    return reply if len(reply) <= MAX_REPLY_CHARS else reply[:MAX_REPLY_CHARS] + "…"


def sample_generations(log: Path, per: int = SAMPLES_PER_EMOTION) -> list[dict[str, Any]]:
    """The first `per` replies of each target emotion in the log: lm-eval writes docs in order,
    so runs over the same docs show the same situations."""
    picked: dict[str, list[dict[str, Any]]] = {e: [] for e in EMOTIONS}
    with open_bytes(log) as handle:
        for raw in handle:
            line = raw.decode("utf-8", errors="replace")
            if all(len(v) >= per for v in picked.values()):
                break
            try:
                sample = json.loads(line)
            except ValueError:
                continue
            doc = sample.get("doc") if isinstance(sample, dict) else None
            target = doc.get("target_emotion") if isinstance(doc, dict) else None
            if target not in picked or len(picked[target]) >= per:
                continue
            reply = _reply(sample)
            if reply is None:
                continue
            label = _label(sample)
            picked[target].append(
                {
                    "target": target,
                    "doc": str(doc.get("key", sample.get("doc_id", ""))),
                    "label": label,
                    "hit": label == target,
                    "reply": reply,
                    "parts": reference_parts(reply),
                }
            )
    return [s for e in EMOTIONS for s in picked[e]]


def _run(row: dict[str, Any]) -> dict[str, Any]:
    """What the report shows of one row beyond its table line."""
    path = Path(row.get("file") or "")
    results = _read_results(path) if row.get("file") else None
    log, note = samples_log(path, results) if row.get("file") else (None, "No results file.")
    samples: list[dict[str, Any]] = []
    if log is not None:
        try:
            samples = sample_generations(log)
        except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz: BadGzipFile, EOFError
            why = getattr(exc, "strerror", None) or exc
            note = f"The samples log {log} could not be read ({why})."
        else:
            if not samples:
                note = f"The samples log {log} holds no {TASK} replies."
    record = (read_record(results) or {}) if results else {}
    read_as = "read as"
    if samples and record.get("rescored_from"):
        # The samples log holds the verdicts made when the run ran, not the re-scoring's.
        try:
            original = read_record(results_beside(log) or {}) or {}
        except DataError as exc:
            logger.warning("%s; its samples are labelled as the run's own classifier's", exc)
            original = {}
        by = (original.get("classifier") or {}).get("name") or "the run's own classifier"
        now = (record.get("classifier") or {}).get("name") or "another classifier"
        read_as = f"read as by {by}"
        note = (
            f"This row was re-scored by {now}: the confusion matrix above is its verdicts; the "
            f"labels below are {by}'s, given when the run ran."
        )
    args = "" if row.get("controller_args") in (None, "{}") else row["controller_args"]
    return {
        "anchor": f"run-{row['ranking_index']}-{row['position']}",
        "title": f"{row['rank']}. {row['controller']}",
        "args": args,
        "model": row.get("model"),
        "file": row.get("file"),
        "confusion": confusion_table(results) if results else None,
        "samples": samples,
        "samples_log": str(log) if log else None,
        "samples_note": note,
        "read_as": read_as,
    }


def _legend(row: dict[str, Any], group: list[dict[str, Any]]) -> str:
    label = f"{row['rank']}. {row['controller']}"
    if len({r["model"] for r in group}) > 1:
        label += f" ({row['model']})"
    # Tied rows of one controller share rank and name: its settings tell them apart.
    if sum(r["controller"] == row["controller"] and r["rank"] == row["rank"] for r in group) > 1:
        label += f" {row.get('controller_args') or ''}".rstrip()
    return label


def report_context(rows: list[dict[str, Any]], sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    from emobench.leaderboard.charts import MAX_BARS, emotion_bars
    from emobench.leaderboard.frontier import frontier_section
    from emobench.leaderboard.render import HEADERS, cells

    sections = []
    for index, (title, group) in enumerate(rankings(rows)):
        series = [(_legend(r, group), [r.get(f"acc_{e}") for e in EMOTIONS]) for r in group]
        has_bars = any(v is not None for _, values in series for v in values)
        shown = ", ".join(label for label, _ in series[:MAX_BARS])
        sections.append(
            {
                "title": title,
                "anchor": f"ranking-{index}",
                "body": [cells(r) for r in group],
                "bars": emotion_bars(series) if has_bars else None,
                "bars_alt": f"Expression accuracy per target emotion, grouped bars for {shown}, "
                "with the chance level of 16.7 %.",
                "bars_cut": len(series) > MAX_BARS,
                "runs": [
                    _run({**r, "ranking_index": index, "position": i})
                    for i, r in enumerate(group, start=1)
                ],
            }
        )
    return {
        "task": TASK,
        "headers": HEADERS,
        "sections": sections,
        "frontier": frontier_section(sweeps) if sweeps else None,
        "sweeps_given": bool(sweeps),
        "per_emotion": SAMPLES_PER_EMOTION,
        "max_bars": MAX_BARS,
        "emotions": EMOTIONS,
    }


def render_report(rows: list[dict[str, Any]], sweeps: list[dict[str, Any]] | None = None) -> str:
    from jinja2 import Environment, StrictUndefined

    template = (files("emobench.leaderboard") / "templates" / "leaderboard.html.j2").read_text(
        encoding="utf-8"
    )
    # autoescape=True, not select_autoescape: a template from a string has no file extension
    # to select by, and every value here may come from a results file or a model.
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template).render(**report_context(rows, list(sweeps or [])))
