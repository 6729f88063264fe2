"""`emobench sweep`: a controller's settings on a slice of the SEV *train* split, scored for
accuracy beside quality, so that the setting a test-split row uses is chosen where it is not
reported.

    emobench sweep --controller circuit --grid lam=0.5,1,2,4 --out DIR
    emobench sweep --controller steer --grid alpha=0.5,1,2,4 --grid layers=6-15,12-21 --out DIR

Runs `emobench --tasks sev_emotion_train` once per grid point (plus `none` and `prompt` for
reference) on the same docs (12 situations spread over the split x 6 emotions = 72 replies by
default), each with a journal under --work so an interrupted sweep resumes, and writes
sweep.md, sweep.json, sweep.png (accuracy and quality-adjusted accuracy against the controller's
strength knob, `Controller.strength`) and recommended.json: the best quality-adjusted point
(ties to the weaker setting), ready to copy into the controller's artifact. A model with no
quality gate is refused after the first reference run: raw accuracy would choose for it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

from emobench import EMOTIONS, atomic
from emobench.errors import EmoBenchError
from emobench.model_args import plain_value
from emobench.record import finite, task_extras
from emobench.scoring.metrics import task_metrics

TASK = "sev_emotion_train"
REFERENCES = ("none", "prompt")
# Every 37th (skeleton, valence) item: 12 items spread over the 480 of the train split.
STRIDE = 37


def slice_indices(items: int, stride: int) -> list[int]:
    """Docs of every `stride`-th (skeleton, valence) item, all six emotions each."""
    return [i * stride * len(EMOTIONS) + e for i in range(items) for e in range(len(EMOTIONS))]


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, eq, values = spec.partition("=")
        if not eq or not key or not values:
            raise EmoBenchError(f"--grid {spec!r}: expected name=v1,v2,... (e.g. lam=0.5,1,2)")
        grid[key] = [v for v in values.split(",") if v]
    return grid


def _folder_part(value: str) -> str:
    """A value as part of a folder name. A path (artifact=...) keeps its last part and a short
    hash of the whole, so that a/directions and b/directions get folders of their own."""
    name = Path(value).name
    if name == value:
        return value
    return f"{name}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def controller_argv(args: dict[str, Any]) -> list[str]:
    """`--controller_args` for a command line: one key=value word per argument, since a value
    may hold a comma (layers=12,13)."""
    return ["--controller_args", *[f"{k}={v}" for k, v in args.items()]] if args else []


def newest_results(folder: Path, since: float) -> Path | None:
    """The results file a run started at `since` wrote under `folder`. lm-eval puts it under
    a folder named for the model, so a name sort would rank another model's older run first."""
    written = [p for p in folder.rglob("results_*.json") if p.stat().st_mtime >= since]
    return max(written, key=lambda p: p.stat().st_mtime) if written else None


def swept_before(
    out: Path, controller: str, grid: dict[str, list[str]], items: int, extra: list[str]
) -> dict[str, Any] | None:
    """The recommended point of an earlier sweep in `out` of the same grid, slice and run
    arguments (a resumed job need not load the model once per point again), else None."""
    try:
        report = json.loads((out / "sweep.json").read_text())
        recommended = json.loads((out / "recommended.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = (
        report.get("controller") == controller
        and report.get("grid") == grid
        and report.get("docs") == slice_indices(items, STRIDE)
        and report.get("extra") == list(extra)
    )
    return recommended if same and isinstance(recommended, dict) else None


def run_point(
    out: Path, work: Path, samples: list[int], controller: str, args: dict[str, str], extra: list
) -> dict[str, Any]:
    tag = controller + "".join(f"_{k}{_folder_part(str(v))}" for k, v in args.items())
    cmd = [sys.executable, "-m", "emobench.cli", "--tasks", TASK, "--controller", controller]
    cmd += ["--samples", json.dumps({TASK: samples}), "--output_path", str(work / tag)]
    cmd += ["--log_samples", "--use_cache", str(work / tag / "cache"), *extra]
    cmd += controller_argv(args)
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    path = newest_results(work / tag, started) if proc.returncode == 0 else None
    if path is None:
        lines = proc.stderr.strip().splitlines() or ["(no error output)"]
        said = lines[-1] if proc.returncode != 0 else f"it wrote no results file under {work / tag}"
        raise EmoBenchError(
            f"the {controller} run at {json.dumps(args)} failed: {said} (command: {' '.join(cmd)})"
        )
    results = json.loads(path.read_text())
    # The committed copy carries metrics only (the samples log quotes SEV text: third-party).
    text = json.dumps(results, indent=2, default=str) + "\n"
    atomic.write_text(out / "runs" / f"{tag}.json", text)
    extras = task_extras(results, TASK)
    qa = extras.get("quality_adjusted") or {}
    return {
        "controller": controller,
        "args": args,
        **task_metrics(results, TASK),
        "macro_f1": extras.get("macro_f1"),
        "acc_qa": finite(qa.get("acc_qa")),
        "gate_pass": finite(qa.get("gate_pass")),
        # lm-eval writes this one as a string.
        "seconds": finite(float(results.get("total_evaluation_time_seconds") or "nan")),
    }


def best(rows: list[dict[str, Any]], controller: str, knob: str | None) -> dict[str, Any]:
    """Highest quality-adjusted accuracy; ties to the weaker strength."""
    mine = [r for r in rows if r["controller"] == controller]

    def strength(r: dict[str, Any]) -> float:
        try:
            return float(r["args"].get(knob, 0)) if knob else 0.0
        except ValueError:
            return 0.0

    return max(mine, key=lambda r: (r["acc_qa"] or 0.0, -strength(r)))


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _said(value: float | None) -> str:
    return "n/a (no quality gate)" if value is None else f"{100 * value:.1f} %"


def _num(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    headers = ["controller", *keys, "acc %", "quality-adj. %", "gate pass %", "macro-F1", "ppl"]
    headers += ["relevance", "distinct-2", "cut off %", "words", "s"]
    body = [
        [
            r["controller"],
            *[r["args"].get(k, "") for k in keys],
            _pct(r.get("acc")),
            _pct(r.get("acc_qa")),
            _pct(r.get("gate_pass")),
            _pct(r.get("macro_f1")),
            _num(r.get("ppl"), ".2f"),
            _num(r.get("relevance"), ".3f"),
            _pct(r.get("distinct_2")),
            _pct(r.get("truncated")),
            _num(r.get("words"), ".1f"),
            _num(r.get("seconds"), ".0f"),
        ]
        for r in rows
    ]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def plot(rows: list[dict[str, Any]], controller: str, knob: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    mine = [r for r in rows if r["controller"] == controller]
    others = sorted({json.dumps({k: v for k, v in r["args"].items() if k != knob}) for r in mine})
    for other in others:
        fixed = json.loads(other)
        pts = [r for r in mine if all(r["args"].get(k) == v for k, v in fixed.items())]
        pts.sort(key=lambda r: float(r["args"][knob]))
        xs = [float(r["args"][knob]) for r in pts]
        label = ", ".join(f"{k} {v}" for k, v in fixed.items()) or controller
        axes[0].plot(xs, [100 * r["acc"] for r in pts], "o-", label=label)
        axes[1].plot(xs, [100 * (r["acc_qa"] or 0) for r in pts], "o-", label=label)
    references = [r for r in rows if r["controller"] in REFERENCES]
    for ax, key, name in ((axes[0], "acc", "accuracy %"), (axes[1], "acc_qa", "quality-adj. %")):
        for r, style in zip(references, ("--", ":"), strict=True):
            ax.axhline(100 * (r[key] or 0), color="grey", linestyle=style, label=r["controller"])
        ax.set_xscale("log", base=2)
        ax.set_xlabel(knob)
        ax.set_title(name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep(
    controller: str,
    grid: dict[str, list[str]],
    out: str | Path,
    work: str | Path,
    items: int = 12,
    stride: int = STRIDE,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    from emobench.controller import create_controller

    knob = create_controller(controller).strength
    if knob is None and grid:
        knob = next(iter(grid))
    keys = list(grid)
    points = [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]
    for point in points:
        # Every point's arguments are checked here, as its run will read them, before minutes
        # of reference runs.
        create_controller(controller, **{k: plain_value(v) for k, v in point.items()})
    samples = slice_indices(items, stride)
    from emobench.data import load_docs

    split = len(load_docs("train")) // len(EMOTIONS)
    if items < 1 or stride < 1 or samples[-1] >= split * len(EMOTIONS):
        most = 1 + (split - 1) // max(stride, 1)
        raise EmoBenchError(
            f"--items {items} --stride {stride}: the slice must hold at least one item and end "
            f"inside the train split's {split} items (--items at most {most} at --stride {stride})"
        )
    out, work = Path(out), Path(work)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_point(out, work, samples, REFERENCES[0], {}, extra or [])]
    if rows[0]["acc_qa"] is None:
        # Raw accuracy alone would choose the strongest setting, gibberish and all.
        raise EmoBenchError(
            f"the {REFERENCES[0]} reference run has no quality-adjusted accuracy, and a sweep "
            "chooses by it: the model has no quality gate (or measure_fluency is off); "
            "calibrate one with `emobench calibrate-gate --model_args pretrained=<the model>` "
            f"and sweep again (runs resume from their journals under {work})"
        )
    rows += [run_point(out, work, samples, name, {}, extra or []) for name in REFERENCES[1:]]
    for point in points:
        rows.append(run_point(out, work, samples, controller, point, extra or []))
        print(table(rows[-1:], keys).splitlines()[-1], flush=True)
    chosen = best(rows, controller, knob)
    recommended = {
        # As the run received them: `--controller_args alpha=4` passes the number 4.
        **{k: plain_value(v) for k, v in chosen["args"].items()},
        "chosen_by": f"emobench sweep: best quality-adjusted accuracy on {len(samples)} replies "
        f"of the SEV train split (docs {samples[0]}..{samples[-1]}, stride {stride} items)",
        "acc_qa": chosen["acc_qa"],
        "acc": chosen["acc"],
    }
    (out / "recommended.json").write_text(json.dumps(recommended, indent=2) + "\n")
    report = {
        "task": TASK,
        "docs": samples,
        "controller": controller,
        "knob": knob,
        "grid": grid,
        "extra": list(extra or []),
        "rows": rows,
    }
    (out / "sweep.json").write_text(json.dumps({**report, "best": chosen}, indent=2) + "\n")
    typed = {k: plain_value(v) for k, v in chosen["args"].items()}
    unsteered = rows[0]["acc_qa"]
    # A best point that does not beat the unsteered model is no recommendation to act on.
    warning = (
        f" It is no better than {REFERENCES[0]}: the controller does not help on this slice."
        if chosen["acc_qa"] is not None and unsteered is not None and chosen["acc_qa"] <= unsteered
        else ""
    )
    text = table(rows, keys) + (
        f"\n\nBest quality-adjusted point: {json.dumps(typed)} "
        f"({_said(chosen['acc_qa'])} quality-adjusted, {_said(chosen['acc'])} raw; "
        + ", ".join(f"{r['controller']} {_said(r['acc_qa'])}" for r in rows[: len(REFERENCES)])
        + f"); {len(samples)} replies per row.{warning}\n"
    )
    (out / "sweep.md").write_text(text)
    if knob:
        plot(rows, controller, knob, out / "sweep.png", f"{controller} on the SEV train slice")
    print(text)
    return report
