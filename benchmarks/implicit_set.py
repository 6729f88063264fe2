"""How the shared classifier reads emotion that is shown, not named: the hand-written validation
set in tests/data/implicit/ (never used for training or thresholds).

    python benchmarks/implicit_set.py [--classifiers minilm,minilm-sev6,minilm-ft+mpnet-ft]
        [--json FILE] [--file tests/data/hard_cases.jsonl] [--head PATH]

Printed per classifier and emotion: accuracy of the most probable label (7 labels; neutral for
the bland lines), the forced choice among the six emotions (what SEV's accuracy counts; not for
neutral), the judge-compatible match rate (the target's probability reaches its threshold), and
the Wilson 95 % interval of the label accuracy: how far the rate on lines of that kind could lie
from the one measured on so few (16 lines of happiness: one line is 6 points), and `other %`:
the share of the *other* target emotions the judge-compatible verdict also accepts (five per
line, six for a bland one; mixed lines are left out, since their second emotion is there too). A
lenient threshold lifts the match rate; this column shows what it costs. `fear alone` is every
fear line but the mixed ones: how the head reads an emotion when no other shares the line. `a+b`
is the mean of classifiers a's and b's probabilities (label and forced choice only: such a mean
has no thresholds of its own; `ft-pair` is the one that has).

--file reads another set of the same shape instead: lines with `text`, the expected label under
`emotion` (or `label`) and a `kind`, such as the hand-written hard cases and the over-steered
replies of tests/data/hard_cases.jsonl.

--head scores a head built elsewhere (`emobench train-classifier --head ft --out PATH`) in place
of the packaged one, for one fine-tuned classifier: `--classifiers mpnet-ft --head PATH`.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from emobench import EMOTIONS
from emobench.classify import get_classifier
from emobench.jsonl import read_jsonl
from emobench.registry import CLASSIFIERS, create

SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "implicit" / "implicit_emotion.jsonl"


def wilson(hits: int, n: int) -> tuple[float, float]:
    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    return round(float(ci.low), 4), round(float(ci.high), 4)


def ensemble(names: list[str], texts: list[str]) -> list[dict]:
    """The mean of several classifiers' probabilities, as `classify` would report it without a
    target: an ensemble has no thresholds of its own, so no judge-compatible verdict."""
    members = [get_classifier(n) for n in names]
    labels = members[0].labels
    if any(m.labels != labels for m in members):
        raise SystemExit(f"{'+'.join(names)}: the members' labels differ")
    probs = np.mean([m.predict_proba(texts) for m in members], axis=0)
    return [
        {"label": labels[int(row.argmax())], "probs": dict(zip(labels, row, strict=True))}
        for row in probs
    ]


def measure(name: str, lines: list[dict], head: str | None = None) -> dict[str, dict]:
    emotional = [x for x in lines if x["emotion"] in EMOTIONS]
    bland = [x for x in lines if x["emotion"] not in EMOTIONS]
    thresholds = None
    if "+" in name:
        scored = ensemble(name.split("+"), [x["text"] for x in emotional + bland])
    else:
        clf = create(CLASSIFIERS, name, head=head) if head else get_classifier(name)
        scored = clf.classify([x["text"] for x in emotional], [x["emotion"] for x in emotional])
        scored += clf.classify([x["text"] for x in bland])
        thresholds = clf.match_thresholds()
    by: dict[str, list[dict]] = defaultdict(list)
    for s, line in zip(scored, emotional + bland, strict=True):
        target = line["emotion"]
        row = {"accuracy": s["label"] == target}
        if target in EMOTIONS:
            row["forced_choice"] = max(EMOTIONS, key=lambda e: s["probs"][e]) == target
            if "match" in s:
                row["match"] = bool(s["match"])
        if thresholds and line["kind"] != "mixed":
            others = [t for t in EMOTIONS if t != target]
            row["other"] = float(np.mean([s["probs"][t] >= thresholds[t] for t in others]))
        keys = [target, f"{target}/{line['kind']}"]
        if target in EMOTIONS and line["kind"] != "mixed":
            keys.append(f"{target} alone")
        for key in keys:
            by[key].append(row)
    # Each measure over the lines that have it: `other` leaves the mixed lines out.
    return {
        key: {"n": len(rows)}
        | {
            k: float(np.mean([r[k] for r in rows if k in r]))
            for k in dict.fromkeys(k for r in rows for k in r)
        }
        | {"accuracy_ci95": wilson(sum(r["accuracy"] for r in rows), len(rows))}
        for key, rows in sorted(by.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifiers", default="minilm")
    parser.add_argument("--json", default=None)
    parser.add_argument("--file", default=str(SET), help=f"default {SET.name}")
    parser.add_argument("--head", default=None, help="a head's .safetensors, card beside it")
    args = parser.parse_args()
    names = args.classifiers.split(",")
    if args.head and (len(names) != 1 or names[0] not in ("minilm-ft", "mpnet-ft")):
        parser.error(
            "--head replaces one fine-tuned classifier's head: give --classifiers minilm-ft or "
            "mpnet-ft"
        )
    lines = [
        record | {"emotion": record.get("emotion", record.get("label")), "kind": record.get("kind")}
        for _, record in read_jsonl(args.file)
    ]
    report = {name: measure(name, lines, args.head) for name in names}
    for name, rows in report.items():
        print(f"\n{name}: {len(lines)} lines of {Path(args.file).name}")
        print(
            f"  {'emotion[/kind]':<24}{'n':>5}{'label %':>10}{'95 % CI':>12}"
            f"{'forced %':>10}{'match %':>10}{'other %':>10}"
        )
        for key, r in rows.items():
            cells = [
                f"{100 * r[k]:>10.1f}" if k in r else f"{'':>10}"
                for k in ("accuracy", "forced_choice", "match", "other")
            ]
            low, high = r["accuracy_ci95"]
            cells.insert(1, f"{f'{100 * low:.0f}-{100 * high:.0f}':>12}")
            print(f"  {key:<24}{r['n']:>5}" + "".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
