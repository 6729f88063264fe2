"""Collect emobench results files into leaderboard rows and render them."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

from tabulate import tabulate

from emobench import EMOTIONS, VALENCES
from emobench.report import percent
from emobench.scoring.metrics import task_metrics

TASK = "sev_emotion"
COLUMNS = [
    "model",
    "controller",
    "controller_args",
    "classifier",
    "n",
    "acc",
    "acc_qa",
    "macro_f1",
    "gate_pass",
    "relevance",
    "ppl",
    *[f"acc_{e}" for e in EMOTIONS],
    *[f"acc_{v}" for v in VALENCES],
    "date",
    "file",
]


def _result_files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(p.rglob("results_*.json"))
    return found


def row_from_results(results: dict[str, Any], source: str = "") -> dict[str, Any] | None:
    info = results.get("emobench")
    if not info or TASK not in results.get("results", {}):
        return None
    metrics = task_metrics(results, TASK)
    qa = info.get(TASK, {}).get("quality_adjusted") or {}
    controller = info.get("controller", {})
    return {
        "model": info.get("model", "?"),
        "controller": controller.get("name", "?"),
        # The settings that ran: a controller's resolved defaults (spec "effective") over the
        # arguments the user gave; the full spec stays in the results.
        "controller_args": json.dumps(
            {**(info.get("controller_args_given") or {}), **(controller.get("effective") or {})},
            sort_keys=True,
        ),
        "classifier": _classifier_name(info.get("classifier", {})),
        "n": results.get("n-samples", {}).get(TASK, {}).get("effective"),
        **{k: metrics.get(k) for k in COLUMNS if k.startswith("acc")},
        "macro_f1": info.get(TASK, {}).get("macro_f1"),
        # Quality-adjusted accuracy: correct AND through the model's quality gate (emobench.gate).
        "acc_qa": _finite(qa.get("acc_qa")),
        "gate_pass": _finite(qa.get("gate_pass")),
        "relevance": _finite(metrics.get("relevance")),
        "ppl": _finite(metrics.get("ppl")),
        "date": results.get("date"),
        "file": source,
    }


def _finite(value: Any) -> float | None:
    """None for a missing or NaN measure (JSON has no NaN; CSV shows a blank)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _classifier_name(spec: dict[str, Any]) -> str:
    """Name plus the head's hash, so runs scored by different heads are never merged."""
    sha = (spec.get("head") or {}).get("sha256")
    return f"{spec.get('name', '?')}@{sha[:8]}" if sha else spec.get("name", "?")


def collect(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """One row per (model, controller + args, classifier, n): the newest run wins."""
    newest: dict[tuple, dict[str, Any]] = {}
    for path in _result_files(paths):
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        row = row_from_results(results, str(path))
        if row is None:
            continue
        key = (row["model"], row["controller"], row["controller_args"], row["classifier"], row["n"])
        if key not in newest or (row["date"] or 0) >= (newest[key]["date"] or 0):
            newest[key] = row
    return sorted(newest.values(), key=lambda r: (-(r["acc"] or 0), r["controller"]))


def _display_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    headers = [
        "rank",
        "controller",
        "args",
        "model",
        "classifier",
        "n",
        "acc %",
        "quality-adj. acc %",
        "macro-F1",
        "gate pass %",
        "relevance",
        "ppl",
        *EMOTIONS,
        *[v[:3] for v in VALENCES],
    ]
    body = []
    for i, r in enumerate(rows, start=1):
        args = "" if r["controller_args"] == "{}" else r["controller_args"]
        body.append(
            [
                i,
                r["controller"],
                args,
                r["model"],
                r["classifier"],
                r["n"],
                percent(r["acc"]),
                percent(r.get("acc_qa")),
                percent(r.get("macro_f1")),
                percent(r.get("gate_pass")),
                "" if r.get("relevance") is None else f"{r['relevance']:.3f}",
                "" if r.get("ppl") is None else f"{r['ppl']:.2f}",
                *[percent(r[f"acc_{e}"]) for e in EMOTIONS],
                *[percent(r[f"acc_{v}"]) for v in VALENCES],
            ]
        )
    return headers, body


def render_terminal(rows: list[dict[str, Any]]) -> str:
    headers, body = _display_rows(rows)
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


def render_markdown(rows: list[dict[str, Any]]) -> str:
    headers, body = _display_rows(rows)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def render_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def render_html(rows: list[dict[str, Any]]) -> str:
    from jinja2 import Environment, select_autoescape

    template_text = (
        files("emobench.leaderboard") / "templates" / "leaderboard.html.j2"
    ).read_text()
    env = Environment(autoescape=select_autoescape(default=True))
    headers, body = _display_rows(rows)
    return env.from_string(template_text).render(headers=headers, rows=body, task=TASK)


def write_all(rows: list[dict[str, Any]], out: str | Path | None) -> str:
    """Write leaderboard.{md,csv,json,html} to `out` (if given); return the terminal table."""
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "leaderboard.md").write_text(render_markdown(rows) + "\n")
        (out / "leaderboard.csv").write_text(render_csv(rows))
        (out / "leaderboard.json").write_text(json.dumps(rows, indent=2) + "\n")
        (out / "leaderboard.html").write_text(render_html(rows))
    return render_terminal(rows)
