"""Sweep `steer` settings on a slice of the SEV *train* split, scored for accuracy and quality.

    python scripts/steer_sweep.py --out leaderboard/published/steer_sweep

Runs `emobench --tasks sev_emotion_train` once per setting (plus `none` and `prompt` for
reference) on the same docs (12 situations spread over the split x 6 emotions = 72 replies by
default), then writes sweep.md / sweep.json / sweep.png beside the per-run results. The test split
is never touched: it is for reporting. Each run keeps a generation journal under --work, so an
interrupted sweep resumes where it stopped.

The recommended setting is the one with the highest quality-adjusted accuracy (correct AND
through the embedded model's quality gate, see emobench.gate); ties go to the smaller alpha.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tabulate import tabulate

from emobench import EMOTIONS
from emobench.record import task_extras
from emobench.scoring.metrics import task_metrics

TASK = "sev_emotion_train"


def slice_indices(items: int, stride: int) -> list[int]:
    """Docs of every `stride`-th (skeleton, valence) item, all six emotions each."""
    return [i * stride * len(EMOTIONS) + e for i in range(items) for e in range(len(EMOTIONS))]


def run(out: Path, work: Path, samples: list[int], controller: str, args: dict[str, str]) -> dict:
    tag = controller + "".join(f"_{k}{v}" for k, v in args.items())
    cmd = [
        sys.executable,
        "-m",
        "emobench.cli",
        "--tasks",
        TASK,
        "--controller",
        controller,
        "--samples",
        json.dumps({TASK: samples}),
        "--batch_size",
        "16",
        "--output_path",
        str(work / tag),
        "--log_samples",
        "--use_cache",
        str(work / tag / "cache"),
    ]
    if args:
        cmd += ["--controller_args", *[f"{k}={v}" for k, v in args.items()]]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    results_file = sorted((work / tag).rglob("results_*.json"))[-1]
    results = json.loads(results_file.read_text())
    # The committed copy carries metrics only (the samples log quotes SEV text: third-party).
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "runs" / f"{tag}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    m = task_metrics(results, TASK)
    summary = task_extras(results, TASK)
    qa = summary.get("quality_adjusted") or {}
    return {
        "controller": controller,
        **args,
        **m,
        "macro_f1": summary["macro_f1"],
        "acc_qa": qa.get("acc_qa"),
        "gate_pass": qa.get("gate_pass"),
    }


def pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def best_steer(rows: list[dict]) -> dict:
    steer = [r for r in rows if r["controller"] == "steer"]
    return max(steer, key=lambda r: (r["acc_qa"] or 0.0, -float(r["alpha"])))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    layer_ranges = list(dict.fromkeys(r["layers"] for r in rows if r["controller"] == "steer"))
    for layers in layer_ranges:
        pts = sorted(
            (r for r in rows if r.get("layers") == layers), key=lambda r: float(r["alpha"])
        )
        alphas = [float(r["alpha"]) for r in pts]
        axes[0].plot(alphas, [100 * r["acc"] for r in pts], "o-", label=f"blocks {layers}")
        axes[1].plot(
            alphas, [100 * (r["acc_qa"] or 0) for r in pts], "o-", label=f"blocks {layers}"
        )
    for ax, key, title in ((axes[0], "acc", "accuracy %"), (axes[1], "acc_qa", "quality-adj. %")):
        for r, style in zip(rows[:2], ("k--", "k:"), strict=True):
            ax.axhline(
                100 * (r[key] or 0), color="grey", linestyle=style[1:], label=r["controller"]
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("alpha (x RMS of the residual)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("steer on the SEV train slice, embedded SmolLM2-135M-Instruct")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="committed tables, plot and results")
    parser.add_argument("--work", default="runs/steer_sweep", help="samples logs and journals")
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--stride", type=int, default=37)  # coprime to 3: all valences
    parser.add_argument("--alphas", default="0.5,1,2,4")
    parser.add_argument("--layers", default="6-15,12-21,18-27")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    samples = slice_indices(args.items, args.stride)
    rows = [run(out, work, samples, "none", {}), run(out, work, samples, "prompt", {})]
    for layers in args.layers.split(","):
        for alpha in args.alphas.split(","):
            rows.append(run(out, work, samples, "steer", {"alpha": alpha, "layers": layers}))
            print(rows[-1], flush=True)
    best = best_steer(rows)
    (out / "sweep.json").write_text(
        json.dumps({"slice": {"task": TASK, "docs": samples}, "rows": rows, "best": best}, indent=2)
        + "\n"
    )
    headers = [
        "controller",
        "alpha",
        "layers",
        "acc %",
        "quality-adj. acc %",
        "gate pass %",
        "macro-F1",
        "ppl",
        "relevance",
        "distinct-2",
        "cut off %",
        "words",
    ]
    body = [
        [
            r["controller"],
            r.get("alpha", ""),
            r.get("layers", ""),
            pct(r["acc"]),
            pct(r["acc_qa"]),
            pct(r["gate_pass"]),
            pct(r["macro_f1"]),
            f"{r['ppl']:.2f}",
            f"{r['relevance']:.3f}",
            pct(r["distinct_2"]),
            pct(r["truncated"]),
            f"{r['words']:.1f}",
        ]
        for r in rows
    ]
    table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    note = (
        f"\n\nBest quality-adjusted point: alpha {best['alpha']}, blocks {best['layers']} "
        f"({pct(best['acc_qa'])} % quality-adjusted, {pct(best['acc'])} % raw). "
        f"{len(samples)} replies per row (SEV train docs {samples[0]}..{samples[-1]}, "
        f"stride {args.stride} items).\n"
    )
    (out / "sweep.md").write_text(table + note)
    plot(rows, out / "sweep.png")
    print(table + note)


if __name__ == "__main__":
    main()
