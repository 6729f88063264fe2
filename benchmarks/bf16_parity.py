"""Does bfloat16 give the verdicts of float32? Same docs, same controllers, both dtypes, one run.

    python benchmarks/bf16_parity.py [--per_emotion 16] [--controllers none,prompt]

A fixed slice of the SEV test split (the first --per_emotion docs of each target emotion) is
generated greedily in float32 and in bfloat16 with fluency on, and scored by the shared
classifier. Printed per controller: identical replies, verdict agreement, expression accuracy
in each dtype, gate pass rates, and the time of each side. Parity holds when, for every
controller, the accuracies differ by at most --tolerance points.
"""

from __future__ import annotations

import argparse
import json

from speed import SEV_GEN, requests, timed  # the benchmark beside this one

from emobench import EMOTIONS
from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.controller import create_controller
from emobench.data import load_docs
from emobench.model import EmoBenchLM
from emobench.reply import measured_ppl, quality_gate
from emobench.run import CPU_BATCH_SIZE
from emobench.scoring.quality import measure_quality


def fixed_slice(per_emotion: int) -> list[dict]:
    docs = load_docs("test")
    return [
        d for e in EMOTIONS for d in [x for x in docs if x["target_emotion"] == e][:per_emotion]
    ]


def generate(controller: str, dtype: str, docs: list[dict], batch: int) -> tuple[list, float]:
    lm = EmoBenchLM(controller=create_controller(controller), dtype=dtype, batch_size=batch)
    seconds, replies = timed(lm.generate_until, requests(docs, SEV_GEN), True)
    return replies, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per_emotion", type=int, default=16)
    parser.add_argument("--controllers", default="none,prompt")
    parser.add_argument("--batch_size", type=int, default=int(CPU_BATCH_SIZE))
    parser.add_argument("--tolerance", type=float, default=2.0, help="accuracy points")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    docs = fixed_slice(args.per_emotion)
    targets = [d["target_emotion"] for d in docs]
    classifier = get_classifier(DEFAULT_CLASSIFIER)
    report: dict[str, dict] = {}
    for controller in args.controllers.split(","):
        sides = {}
        for dtype in ("float32", "bfloat16"):
            replies, seconds = generate(controller, dtype, docs, args.batch_size)
            texts = [str(x) for x in replies]
            labels = [r["label"] for r in classifier.classify(texts)]
            quality = measure_quality(docs, texts)
            for q, reply in zip(quality, replies, strict=True):
                q["ppl"] = measured_ppl(reply)
            sides[dtype] = {
                "replies": texts,
                "correct": [lab == t for lab, t in zip(labels, targets, strict=True)],
                "gate": [
                    bool(quality_gate(r).passes(q)) for r, q in zip(replies, quality, strict=True)
                ],
                "seconds": seconds,
            }
        f32, b16 = sides["float32"], sides["bfloat16"]
        n = len(docs)
        acc = {k: 100 * sum(v["correct"]) / n for k, v in sides.items()}
        report[controller] = {
            "docs": n,
            "identical_replies_pct": 100
            * sum(a == b for a, b in zip(f32["replies"], b16["replies"], strict=True))
            / n,
            "verdict_agreement_pct": 100
            * sum(a == b for a, b in zip(f32["correct"], b16["correct"], strict=True))
            / n,
            "accuracy_float32": acc["float32"],
            "accuracy_bfloat16": acc["bfloat16"],
            "gate_pass_float32": 100 * sum(f32["gate"]) / n,
            "gate_pass_bfloat16": 100 * sum(b16["gate"]) / n,
            "seconds_float32": f32["seconds"],
            "seconds_bfloat16": b16["seconds"],
        }
    print(
        f"{len(docs)} SEV test docs ({args.per_emotion} per emotion), greedy, fluency on, "
        f"batch {args.batch_size}, classifier {DEFAULT_CLASSIFIER}"
    )
    parity = True
    for controller, r in report.items():
        gap = abs(r["accuracy_float32"] - r["accuracy_bfloat16"])
        parity &= gap <= args.tolerance
        print(
            f"  {controller:>8}: identical replies {r['identical_replies_pct']:.1f} %, "
            f"verdicts agree {r['verdict_agreement_pct']:.1f} %, accuracy "
            f"{r['accuracy_float32']:.1f} (fp32) vs {r['accuracy_bfloat16']:.1f} (bf16), "
            f"gate pass {r['gate_pass_float32']:.1f} vs {r['gate_pass_bfloat16']:.1f}, "
            f"time {r['seconds_float32']:.1f} s vs {r['seconds_bfloat16']:.1f} s "
            f"({r['seconds_float32'] / r['seconds_bfloat16']:.2f}x)"
        )
    print(f"parity (accuracy within {args.tolerance} points everywhere): {parity}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"tolerance": args.tolerance, "parity": parity, **report}, handle, indent=2)
    raise SystemExit(0 if parity else 1)


if __name__ == "__main__":
    main()
