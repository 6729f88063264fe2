"""The accuracy-vs-quality frontier of the HTML report, from the sweep.json files that
`emobench sweep` writes (emobench.sweep): one line per controller setting, the chosen point
marked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emobench.errors import EmoBenchError
from emobench.jsonl import read_json_file
from emobench.record import finite

log = logging.getLogger("emobench.leaderboard")

SWEEP_FILE = "sweep.json"


def sweep_files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            inside = sorted(p.rglob(SWEEP_FILE))
            if not inside:
                raise EmoBenchError(
                    f"--sweeps {p}: no {SWEEP_FILE} under it; pass an `emobench sweep --out` "
                    "directory"
                )
            found += inside
        else:
            raise EmoBenchError(
                f"--sweeps {p} does not exist; pass an `emobench sweep --out` directory "
                f"(holding {SWEEP_FILE}) or a {SWEEP_FILE} file"
            )
    return found


def load_sweeps(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The readable sweeps under `paths`; a damaged file is skipped with a warning naming it."""
    sweeps = []
    for path in sweep_files(paths):
        data, problem = read_json_file(path)
        if problem:
            log.warning("%s: skipped: %s", path, problem)
            continue
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            log.warning("%s: skipped: not an emobench sweep (no 'rows' list)", path)
            continue
        sweeps.append({**data, "path": str(path)})
    return sweeps


def settings(entry: dict[str, Any]) -> dict[str, str]:
    """A sweep row's controller arguments."""
    if isinstance(entry.get("args"), dict):
        return {str(k): str(v) for k, v in entry["args"].items()}
    # Sweeps written before rows carried "args" kept the settings as top-level strings (every
    # measure is a number).
    return {k: v for k, v in entry.items() if isinstance(v, str) and k != "controller"}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def knob_of(sweep: dict[str, Any]) -> str | None:
    """The strength the sweep varied: its own `knob`, else the first numeric setting."""
    if isinstance(sweep.get("knob"), str):
        return sweep["knob"]
    swept = [settings(r) for r in sweep["rows"] if isinstance(r, dict) and settings(r)]
    for key in swept[0] if swept else {}:
        if all(key in s and _number(s[key]) is not None for s in swept):
            return key
    return None


def describe(args: dict[str, str]) -> str:
    return " ".join(f"{k} {v}" for k, v in args.items())


def _point(entry: dict[str, Any]) -> dict[str, float | None]:
    return {k: finite(entry.get(k)) for k in ("acc", "acc_qa", "gate_pass", "ppl")}


def _slice(sweep: dict[str, Any]) -> tuple[str, int | None]:
    where = sweep.get("slice") if isinstance(sweep.get("slice"), dict) else sweep
    docs = where.get("docs")
    return str(where.get("task", "?")), len(docs) if isinstance(docs, list) else None


def frontier_data(sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    """Lines, chosen points and sources for charts.frontier and the report's caption.

    The reference rows (`none`, `prompt`) of sweeps made on the same slice are the same runs,
    so a point that appears in several sweeps is drawn once."""
    lines: dict[tuple, dict[str, Any]] = {}
    seen: set[tuple] = set()
    bests, sources = [], []
    for sweep in sweeps:
        knob = knob_of(sweep)
        task, docs = _slice(sweep)
        best = sweep.get("best") if isinstance(sweep.get("best"), dict) else {}
        # Older sweeps name their controller only in their rows.
        swept = sweep.get("controller") or best.get("controller")
        sources.append(
            {"path": sweep["path"], "controller": swept, "task": task, "docs": docs, "knob": knob}
        )
        for entry in sweep["rows"]:
            if not isinstance(entry, dict):
                continue
            controller = str(entry.get("controller", "?"))
            args = settings(entry)
            point = _point(entry)
            key = (controller, json.dumps(args, sort_keys=True), *point.values())
            if key in seen:
                continue
            seen.add(key)
            fixed = {k: v for k, v in args.items() if k != knob}
            label = f"{controller} {describe(fixed)}".strip()
            line = lines.setdefault(
                (controller, label), {"controller": controller, "label": label, "points": []}
            )
            strength = args.get(knob or "")
            line["knob"] = knob if strength is not None else None
            line["points"].append(
                {**point, "strength": _number(strength or "") or 0.0, "tag": strength or ""}
            )
        if best:
            label = f"{best.get('controller', '?')} {describe(settings(best))}".strip()
            bests.append({"label": label, **_point(best)})
    for line in lines.values():
        line["points"].sort(key=lambda p: p["strength"])
        if line["knob"] and len(line["points"]) > 1:
            first, last = line["points"][0]["tag"], line["points"][-1]["tag"]
            line["label"] += f" ({line['knob']} {first} to {last})"
    controllers = list(dict.fromkeys(line["controller"] for line in lines.values()))
    return {
        "lines": list(lines.values()),
        "bests": bests,
        "controllers": controllers,
        "sources": sources,
    }


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.1f} %"


def frontier_section(sweeps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The chart, its alt text and its sources; None when no sweep has a row to draw."""
    from emobench.leaderboard.charts import frontier

    data = frontier_data(sweeps)
    if not data["lines"]:
        return None
    chosen = "; ".join(
        f"{b['label']}: accuracy {_pct(b['acc'])}, gate pass {_pct(b['gate_pass'])}"
        for b in data["bests"]
    )
    alt = (
        "Expression accuracy against the share of replies through the quality gate (left) and "
        f"against perplexity (right), one line per controller setting: "
        f"{', '.join(line['label'] for line in data['lines'])}."
        + (f" Chosen points: {chosen}." if chosen else "")
    )
    return {
        "uri": frontier(data["lines"], data["bests"], data["controllers"]),
        "alt": alt,
        "sources": data["sources"],
        "bests": data["bests"],
    }
