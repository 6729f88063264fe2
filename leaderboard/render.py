"""Render leaderboard rows (emobench.leaderboard.collect) as a terminal table, Markdown, CSV,
JSON and HTML; every format keeps the rankings apart."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from emobench.leaderboard.collect import COLUMNS, collect, rankings
from tabulate import tabulate

from emobench import EMOTIONS, VALENCES, atomic
from emobench.errors import EmoBenchError
from emobench.report import percent

__all__ = ["FORMATS", "collect", "render", "write_all"]


def wall(seconds: float | None, from_journal: int | None = None, n: int | None = None) -> str:
    if seconds is None:
        return ""
    minutes, sec = divmod(round(seconds), 60)
    text = f"{minutes}m {sec:02d}s" if minutes else f"{sec}s"
    # A resumed run spent that time on the rest only: say so, or it reads as a fast run.
    return f"{text} ({from_journal}/{n} from journal)" if from_journal and n else text


HEADERS = [
    "rank",
    "controller",
    "args",
    "model",
    "n",
    "acc %",
    "judge-compatible %",
    "quality-adj. acc %",
    "macro-F1",
    "gate pass %",
    "relevance",
    "ppl",
    *EMOTIONS,
    *[v[:3] for v in VALENCES],
    "wall time",
]


def cells(r: dict[str, Any]) -> list[Any]:
    args = "" if r["controller_args"] == "{}" else r["controller_args"]
    return [
        r["rank"],
        r["controller"],
        args,
        r["model"],
        r["n"],
        percent(r["acc"]),
        percent(r.get("acc_match")),
        percent(r.get("acc_qa")),
        percent(r.get("macro_f1")),
        percent(r.get("gate_pass")),
        "" if r.get("relevance") is None else f"{r['relevance']:.3f}",
        "" if r.get("ppl") is None else f"{r['ppl']:.2f}",
        *[percent(r[f"acc_{e}"]) for e in EMOTIONS],
        *[percent(r[f"acc_{v}"]) for v in VALENCES],
        wall(r.get("wall_seconds"), r.get("replies_from_journal"), r.get("n")),
    ]


def tables(rows: list[dict[str, Any]]) -> list[tuple[str, list[list[Any]]]]:
    """(ranking title, table body) per ranking."""
    return [(title, [cells(r) for r in group]) for title, group in rankings(rows)]


def render_terminal(rows: list[dict[str, Any]]) -> str:
    return "\n\n".join(
        f"{title}\n" + tabulate(body, headers=HEADERS, tablefmt="simple", disable_numparse=True)
        for title, body in tables(rows)
    )


def render_markdown(rows: list[dict[str, Any]]) -> str:
    return "\n\n".join(
        f"### {title}\n\n"
        + tabulate(body, headers=HEADERS, tablefmt="github", disable_numparse=True)
        for title, body in tables(rows)
    )


def render_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def render_html(rows: list[dict[str, Any]], sweeps: list[dict[str, Any]] | None = None) -> str:
    """The full HTML report (emobench.leaderboard.report); `sweeps` as frontier.load_sweeps."""
    from emobench.leaderboard.report import render_report

    return render_report(rows, sweeps)


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


FORMATS = {
    "table": render_terminal,
    "markdown": render_markdown,
    "csv": render_csv,
    "json": render_json,
    "html": render_html,
}


def render(rows: list[dict[str, Any]], fmt: str, sweeps: list[dict[str, Any]] | None = None) -> str:
    if fmt not in FORMATS:
        raise EmoBenchError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "html":
        return render_html(rows, sweeps)
    return FORMATS[fmt](rows)


def write_one(text: str, path: str | Path) -> None:
    path = Path(path)
    if path.is_dir():
        raise EmoBenchError(f"-o {path} is a directory; pass a file name (or use --out DIR)")
    try:
        atomic.write_text(path, text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise EmoBenchError(
            f"-o {path}: cannot write ({exc.strerror or exc}); pass a writable path"
        ) from exc


def write_all(
    rows: list[dict[str, Any]],
    out: str | Path | None,
    sweeps: list[dict[str, Any]] | None = None,
) -> str:
    """Write leaderboard.{md,csv,json,html} to `out` (if given); return the terminal table."""
    if out is not None:
        folder = _out_dir(out)
        # Everything is rendered before the first file is written, so a rendering error leaves
        # the previous leaderboard whole.
        rendered = {
            "leaderboard.md": render_markdown(rows) + "\n",
            "leaderboard.csv": render_csv(rows),
            "leaderboard.json": render_json(rows),
            "leaderboard.html": render_html(rows, sweeps),
        }
        for name, text in rendered.items():
            try:
                atomic.write_text(folder / name, text)
            except OSError as exc:
                raise EmoBenchError(
                    f"cannot write {folder / name} ({exc.strerror or exc}); "
                    "pass a writable directory to --out"
                ) from exc
    return render_terminal(rows)
