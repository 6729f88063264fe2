"""Sweep `steer` settings on a slice of the SEV *train* split, scored for accuracy and quality.

    python scripts/steer_sweep.py --out leaderboard/published/steer_sweep

Runs `emobench --tasks sev_emotion_train` once per setting (plus `none` and `prompt` for
reference) on the same docs (8 situations spread over the split x 6 emotions = 48 replies by
default), then writes sweep.md / sweep.json beside the per-run results. The test split is never
touched: it is for reporting.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tabulate import tabulate

from emobench import EMOTIONS
from emobench.metrics import task_metrics

TASK = "sev_emotion_train"


def slice_indices(items: int, stride: int) -> list[int]:
    """Docs of every `stride`-th (skeleton, valence) item, all six emotions each."""
    return [i * stride * len(EMOTIONS) + e for i in range(items) for e in range(len(EMOTIONS))]


def run(out: Path, samples: list[int], controller: str, args: dict[str, str]) -> dict:
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
        str(out / tag),
    ]
    if args:
        cmd += ["--controller_args", *[f"{k}={v}" for k, v in args.items()]]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (results_file,) = sorted((out / tag).rglob("results_*.json"))[-1:]
    results = json.loads(results_file.read_text())
    m = task_metrics(results, TASK)
    return {
        "controller": controller,
        **args,
        **m,
        "macro_f1": results["emobench"][TASK]["macro_f1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--stride", type=int, default=61)  # coprime to 3: all valences
    parser.add_argument("--alphas", default="1,2,4,8")
    parser.add_argument("--layers", default="6-15,12-21,18-27")
    args = parser.parse_args()
    out = Path(args.out)
    samples = slice_indices(args.items, args.stride)
    rows = [run(out, samples, "none", {}), run(out, samples, "prompt", {})]
    for layers in args.layers.split(","):
        for alpha in args.alphas.split(","):
            rows.append(run(out, samples, "steer", {"alpha": alpha, "layers": layers}))
            print(rows[-1], flush=True)
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    headers = [
        "controller",
        "alpha",
        "layers",
        "acc %",
        "macro-F1",
        "relevance",
        "distinct-2",
        "longest repeat",
        "cut off %",
        "<=2 sentences %",
        "words",
    ]
    body = [
        [
            r["controller"],
            r.get("alpha", ""),
            r.get("layers", ""),
            f"{100 * r['acc']:.1f}",
            f"{100 * r['macro_f1']:.1f}",
            f"{r['relevance']:.3f}",
            f"{100 * r['distinct_2']:.1f}",
            f"{r['longest_repeat']:.2f}",
            f"{100 * r['truncated']:.1f}",
            f"{100 * r['two_sentences']:.1f}",
            f"{r['words']:.1f}",
        ]
        for r in rows
    ]
    table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    (out / "sweep.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
