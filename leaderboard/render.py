"""Collect emobench results files into leaderboard rows and render them."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import secrets
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Any

from tabulate import tabulate

from emobench import EMOTIONS, VALENCES
from emobench.errors import EmoBenchError
from emobench.jsonl import json_error
from emobench.record import finite, foreign_record, given_args, read_record, task_extras
from emobench.report import percent
from emobench.scoring.metrics import task_metrics

log = logging.getLogger(__name__)  # under "emobench": the CLI prints it

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
        else:
            raise EmoBenchError(
                f"{p} does not exist; pass an --output_path directory of an emobench run "
                "or a results_*.json file"
            )
    return found


def row_from_results(results: dict[str, Any], source: str = "") -> dict[str, Any] | None:
    if TASK not in results.get("results", {}):
        return None
    # A run of another lm-eval model (stock `--model hf`) has no record: it ranks as unsteered.
    info = read_record(results) or foreign_record(results, TASK)
    metrics = task_metrics(results, TASK)
    extras = task_extras(results, TASK)
    qa = extras.get("quality_adjusted") or {}
    controller = info.get("controller", {})
    return {
        "model": info.get("model", "?"),
        "controller": controller.get("name", "?"),
        # The settings that ran: a controller's resolved defaults (spec "effective") over the
        # arguments the user gave; the full spec stays in the results.
        "controller_args": json.dumps(
            {**given_args(controller, info), **(controller.get("effective") or {})},
            sort_keys=True,
        ),
        "classifier": _classifier_name(info.get("classifier", {})),
        "n": results.get("n-samples", {}).get(TASK, {}).get("effective"),
        **{k: finite(metrics.get(k)) for k in COLUMNS if k.startswith("acc")},
        "macro_f1": finite(extras.get("macro_f1")),
        # Quality-adjusted accuracy: correct AND through the model's quality gate (emobench.gate).
        "acc_qa": finite(qa.get("acc_qa")),
        "gate_pass": finite(qa.get("gate_pass")),
        "relevance": finite(metrics.get("relevance")),
        "ppl": finite(metrics.get("ppl")),
        "date": results.get("date"),
        "file": source,
    }


def _classifier_name(spec: dict[str, Any]) -> str:
    """Name plus the head's hash, so runs scored by different heads are never merged."""
    sha = (spec.get("head") or {}).get("sha256")
    return f"{spec.get('name', '?')}@{sha[:8]}" if sha else spec.get("name", "?")


def _read_row(path: Path) -> dict[str, Any] | str:
    """The leaderboard row of one results file, or why the file has none."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({json_error(exc)})"
    except (OSError, UnicodeDecodeError) as exc:
        return f"unreadable ({exc})"
    if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
        return "not an lm-eval results file (no 'results' object)"
    if TASK not in results["results"]:
        return f"lm-eval results without {TASK}"
    try:
        return row_from_results(results, str(path)) or f"no {TASK} results"
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return f"malformed {TASK} results ({type(exc).__name__}: {exc})"


def collect(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """One row per (model, controller + args, classifier, n): the newest run wins.

    A path that does not exist is an error; a file that holds no emobench results (damaged,
    or another task's) is skipped with a warning that names it and says why.
    """
    newest: dict[tuple, dict[str, Any]] = {}
    for path in _result_files(paths):
        row = _read_row(path)
        if isinstance(row, str):
            log.warning("%s: skipped: %s", path, row)
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


def _json_safe(value: Any) -> Any:
    """`value` with every NaN or infinity as None: strict JSON parsers reject bare NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def render_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(_json_safe(rows), indent=2, allow_nan=False) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    """Write under a temporary name beside `path`, then rename: never a half-written file."""
    # Not mkstemp: that makes the file private, these are for sharing (the umask decides).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("x", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after a successful replace


def _out_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EmoBenchError(
            f"--out {out} is a file; pass a directory (leaderboard.{{md,csv,json,html}} "
            "are written into it)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmoBenchError(
            f"--out {out}: cannot create the directory ({exc.strerror}); pass a writable directory"
        ) from exc
    return out


def write_all(rows: list[dict[str, Any]], out: str | Path | None) -> str:
    """Write leaderboard.{md,csv,json,html} to `out` (if given); return the terminal table."""
    if out is not None:
        folder = _out_dir(out)
        # Everything is rendered before the first file is written, so a rendering error leaves
        # the previous leaderboard whole.
        rendered = {
            "leaderboard.md": render_markdown(rows) + "\n",
            "leaderboard.csv": render_csv(rows),
            "leaderboard.json": render_json(rows),
            "leaderboard.html": render_html(rows),
        }
        for name, text in rendered.items():
            try:
                _write_atomic(folder / name, text)
            except OSError as exc:
                raise EmoBenchError(
                    f"cannot write {folder / name} ({exc.strerror or exc}); "
                    "pass a writable directory to --out"
                ) from exc
    return render_terminal(rows)
