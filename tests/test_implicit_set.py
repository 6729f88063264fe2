"""The hand-written implicit-emotion validation set stays what its README says: every line shows
its emotion without naming it, the labels and kinds are known, and no line comes from held-out
data."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from emobench import EMOTIONS
from emobench.jsonl import read_jsonl

HERE = Path(__file__).parent / "data" / "implicit"
KINDS = {"implicit", "sarcastic", "enthusiastic", "transformed", "bland", "mixed"}


def lines() -> list[dict]:
    return [record for _, record in read_jsonl(HERE / "implicit_emotion.jsonl")]


def names(text: str, stems: list[str]) -> list[str]:
    return [s for s in stems if re.search(rf"\b{re.escape(s)}", text, flags=re.IGNORECASE)]


def test_every_line_is_labelled_and_unique() -> None:
    rows = lines()
    assert len(rows) >= 300
    assert all(set(r) == {"text", "emotion", "kind"} for r in rows)
    assert {r["emotion"] for r in rows} == {*EMOTIONS, "neutral"}
    assert {r["kind"] for r in rows} == KINDS
    assert all((r["kind"] == "bland") == (r["emotion"] == "neutral") for r in rows)
    assert len({r["text"].lower() for r in rows}) == len(rows)
    counts = Counter(r["emotion"] for r in rows)
    # The emotions a weak classifier misreads when they are implicit carry most of the set.
    assert all(counts[e] >= 50 for e in ("fear", "surprise", "anger", "disgust"))


def test_no_line_names_its_own_emotion() -> None:
    banned = json.loads((HERE / "banned_words.json").read_text())
    offenders = [
        (i, r["emotion"], names(r["text"], banned[r["emotion"]]))
        for i, r in enumerate(lines(), start=1)
        if r["emotion"] in banned and names(r["text"], banned[r["emotion"]])
    ]
    assert offenders == []
    # The bland lines name no emotion at all.
    every = [s for stems in banned.values() for s in stems]
    assert [r["text"] for r in lines() if r["kind"] == "bland" and names(r["text"], every)] == []


def test_transformed_lines_come_from_the_train_split_only(sev_dir: Path) -> None:
    rows = lines()
    sources = [rec for _, rec in read_jsonl(HERE / "transformed_sources.jsonl")]
    transformed = [i for i, r in enumerate(rows, start=1) if r["kind"] == "transformed"]
    assert sorted(s["line"] for s in sources) == transformed
    train = {
        rec["key"]: rec["gen_text"]
        for _, rec in read_jsonl(sev_dir / "judged" / "train_accepted.jsonl")
    }
    held_out = {
        rec["gen_text"]
        for name in ("test_accepted.jsonl", "test_rejected.jsonl")
        for _, rec in read_jsonl(sev_dir / "judged" / name)
    }
    for s in sources:
        assert s["source_key"] in train, s
        assert rows[s["line"] - 1]["text"] != train[s["source_key"]]  # rewritten, not copied
    assert not {r["text"] for r in rows} & held_out


def test_benchmark_counts_the_other_targets_a_verdict_accepts(tmp_path: Path) -> None:
    """benchmarks/implicit_set.py, run as a user runs it: `other` is the share of the other
    targets whose threshold a line's probabilities reach (six for a bland line), averaged over
    the lines that show one emotion; a mixed line counts in `n` and not in `other`."""
    import subprocess
    import sys

    import numpy as np

    from emobench.classify import get_classifier

    rows = lines()
    picked = [
        next(r for r in rows if r["emotion"] == "fear" and r["kind"] == "implicit"),
        next(r for r in rows if r["emotion"] == "fear" and r["kind"] == "mixed"),
        next(r for r in rows if r["kind"] == "bland"),
    ]
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps(r) + "\n" for r in picked))
    out = tmp_path / "report.json"
    script = Path(__file__).parents[1] / "benchmarks" / "implicit_set.py"
    args = ["--classifiers", "minilm-ft", "--file", str(small), "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())["minilm-ft"]
    clf = get_classifier("minilm-ft")
    thresholds = clf.match_thresholds()
    probs = clf.predict_proba([r["text"] for r in picked])

    def other(row: np.ndarray, target: str) -> float:
        rest = [t for t in EMOTIONS if t != target]
        return float(np.mean([row[clf.labels.index(t)] >= thresholds[t] for t in rest]))

    assert report["fear"]["n"] == 2 and "other" not in report["fear/mixed"]
    assert report["fear alone"]["n"] == 1 and "neutral alone" not in report
    assert report["fear alone"]["accuracy"] == report["fear/implicit"]["accuracy"]
    assert report["fear"]["other"] == other(probs[0], "fear")
    assert report["neutral"]["other"] == other(probs[2], "neutral")


def test_the_readme_counts_are_the_files() -> None:
    """The set's README gives its make-up per emotion and kind; a line added or relabelled
    without it would leave readers counting a different set than the one measured."""
    text = (HERE / "README.md").read_text()
    table = text[text.index("| emotion | implicit |") :].split("\n\n", 1)[0].splitlines()
    kinds = [k.strip() for k in table[0].strip("|").split("|")][1:-1]
    stated = {}
    for row in table[2:-1]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        stated |= {(cells[0], k): int(c) for k, c in zip(kinds, cells[1:-1], strict=True) if c}
    assert stated == dict(Counter((r["emotion"], r["kind"]) for r in lines()))
    by_emotion = Counter(r["emotion"] for r in lines())
    by_kind = Counter(r["kind"] for r in lines())
    for row in table[2:-1]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert int(cells[-1]) == by_emotion[cells[0]]
    total = [c.strip() for c in table[-1].strip("|").split("|")]
    assert [int(c) for c in total[1:-1]] == [by_kind[k] for k in kinds]
    assert int(total[-1]) == len(lines())
