"""Rankings that cannot mislead: a --limit run is never ranked against full runs, rows scored by
different classifier heads never share a ranking, and every format keeps them apart."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from emobench.leaderboard.collect import collect
from emobench.leaderboard.render import render

from emobench.classify import DEFAULT_CLASSIFIER
from tests.helpers import ROOT, emobench

PUBLISHED = ROOT / "leaderboard" / "published" / "sev_emotion"


def published() -> list[dict[str, Any]]:
    """The committed full-split results files scored by the default classifier, parsed: the
    newest of each controller, as the leaderboard ranks them (a run regenerated and published
    whole supersedes the re-scored one; the same runs are published re-scored by the earlier
    head too)."""
    runs = [json.loads(p.read_text()) for p in sorted(PUBLISHED.glob("results_*.json"))]
    newest: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r["date"]):
        record = run["config"]["emobench"]
        if record["classifier"]["name"] == DEFAULT_CLASSIFIER:
            newest[record["controller"]["name"]] = run
    assert len(newest) >= 4, "the published runs of the default classifier are missing"
    return list(newest.values())


def accuracy(results: dict[str, Any]) -> float:
    return float(results["results"]["sev_emotion"]["acc,classify"])


def as_partial(results: dict[str, Any], n: int, acc: float) -> dict[str, Any]:
    """The same run as if made with --limit n, with a higher accuracy than any full run."""
    out = copy.deepcopy(results)
    out["n-samples"]["sev_emotion"]["effective"] = n
    out.setdefault("config", {})["limit"] = n
    out["results"]["sev_emotion"]["acc,classify"] = acc
    return out


def with_head(results: dict[str, Any], sha: str, acc: float) -> dict[str, Any]:
    out = copy.deepcopy(results)
    record = (out.get("config") or {}).get("emobench") or out["emobench"]
    record["classifier"].setdefault("head", {})["sha256"] = sha
    out["results"]["sev_emotion"]["acc,classify"] = acc
    return out


def write(folder: Path, runs: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, results in enumerate(runs):
        (folder / f"results_2026-01-01T00-00-{i:02d}.json").write_text(json.dumps(results))
    return folder


def test_partial_run_is_ranked_apart_even_when_it_scores_higher(tmp_path: Path) -> None:
    full = published()
    best_full = max(accuracy(r) for r in full)
    runs = [*full, as_partial(full[0], 24, best_full + 0.3)]
    rows = collect([write(tmp_path / "runs", runs)])
    full_rows = [r for r in rows if not r["partial"]]
    partial_rows = [r for r in rows if r["partial"]]
    assert len(partial_rows) == 1 and len(full_rows) == len(full)
    # Full runs keep ranks 1..k among themselves, best first; the partial run ranks alone.
    assert [r["rank"] for r in full_rows] == list(range(1, len(full) + 1))
    assert [r["acc"] for r in full_rows] == sorted((r["acc"] for r in full_rows), reverse=True)
    assert partial_rows[0]["rank"] == 1
    assert partial_rows[0]["ranking"] != full_rows[0]["ranking"]
    assert "partial" in partial_rows[0]["ranking"]
    # Full rankings come first in every format.
    assert rows.index(partial_rows[0]) == len(rows) - 1
    markdown = render(rows, "markdown")
    assert markdown.index("full runs") < markdown.index("partial runs")


def test_partial_runs_of_different_sizes_are_ranked_apart(tmp_path: Path) -> None:
    """A --limit 2 run read other docs than a --limit 4 run: neither outranks the other."""
    full = published()
    runs = [as_partial(full[0], 4, 0.25), as_partial(full[1], 2, 0.0), as_partial(full[2], 2, 0.5)]
    rows = collect([write(tmp_path / "runs", runs)])
    by_size = {r["n"]: r["ranking"] for r in rows}
    assert len(set(by_size.values())) == 2 and "partial runs of 4 docs" in by_size[4]
    assert [(r["n"], r["rank"]) for r in rows] == [(4, 1), (2, 1), (2, 2)]


def test_rows_of_different_classifier_heads_never_share_a_ranking(tmp_path: Path) -> None:
    full = published()
    other = [with_head(r, "f" * 64, accuracy(r)) for r in full[:2]]
    rows = collect([write(tmp_path / "runs", [*full, *other])])
    rankings: dict[str, set[str]] = {}
    for row in rows:
        rankings.setdefault(row["ranking"], set()).add(row["classifier"])
    assert len(rankings) == 2
    assert all(len(classifiers) == 1 for classifiers in rankings.values())
    # Each ranking restarts at 1.
    for name in rankings:
        ranks = [r["rank"] for r in rows if r["ranking"] == name]
        assert ranks == list(range(1, len(ranks) + 1))


def test_the_default_classifiers_ranking_comes_first(tmp_path: Path) -> None:
    """Rankings of other classifiers follow the default's, whatever their names' order."""
    full = published()
    other = [with_head(r, "f" * 64, 1.0) for r in full]
    for run in other:
        run["config"]["emobench"]["classifier"]["name"] = "aaa-first-by-name"
    rows = collect([write(tmp_path / "runs", [*other, *full])])
    order = list(dict.fromkeys(r["classifier"].split("@")[0] for r in rows))
    assert order == [DEFAULT_CLASSIFIER, "aaa-first-by-name"]


def test_csv_and_json_carry_ranking_rank_partial_and_wall_time(tmp_path: Path) -> None:
    timed = next(r for r in published() if r.get("total_evaluation_time_seconds"))
    runs = [timed, as_partial(timed, 12, 0.9)]
    rows = collect([write(tmp_path / "runs", runs)])
    table = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert {r["partial"] for r in table} == {"True", "False"}
    assert all(r["ranking"] and r["rank"] == "1" for r in table)
    as_json = json.loads(render(rows, "json"))
    seconds = float(timed["total_evaluation_time_seconds"])
    assert [r["wall_seconds"] for r in as_json] == [seconds, seconds]


def test_format_and_output_file_through_the_command(tmp_path: Path) -> None:
    folder = write(tmp_path / "runs", published())
    out = tmp_path / "board.csv"
    proc = emobench("leaderboard", str(folder), "--format", "csv", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(published())
    proc = emobench("leaderboard", str(folder), "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("### sev_emotion, scored by ")


def test_rows_with_equal_accuracy_share_a_rank(tmp_path: Path) -> None:
    """Competition ranking (1, 2, 2, 4): tied rows keep their name order but not different
    ranks; the HTML report still gives each run its own anchor."""
    full = published()
    top = max(accuracy(r) for r in full)
    tied = [as_partial(r, 24, 0.5) for r in full[:3]] + [as_partial(full[3], 24, top + 0.1)]
    rows = collect([write(tmp_path / "runs", tied)])
    assert [(r["rank"], r["acc"]) for r in rows] == [(1, top + 0.1), (2, 0.5), (2, 0.5), (2, 0.5)]
    assert [r["controller"] for r in rows[1:]] == sorted(r["controller"] for r in rows[1:])
    html = render(rows, "html")
    anchors = re.findall(r'<details id="(run-[^"]+)"', html)
    assert len(anchors) == len(set(anchors)) == 4


def test_runs_of_one_size_that_read_other_docs_are_ranked_apart(tmp_path: Path, tiny_llama_dir):
    """A --samples run reports which docs it read, so it never ranks beside a --limit run of the
    same size (the first docs) or a --samples run of other docs."""
    from emobench.data import load_docs
    from emobench.scoring.metrics import docs_digest

    proc = emobench(
        *["--tasks", "sev_emotion", "--samples", '{"sev_emotion": [7, 3]}', "--device", "cpu"],
        *["--model_args", f"pretrained={tiny_llama_dir},measure_fluency=false"],
        *["--classifier", "minilm", "--log_samples", "--output_path", str(tmp_path / "out")],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = (tmp_path / "out").rglob("results_*.json")
    (samples_file,) = (tmp_path / "out").rglob("samples_sev_emotion_*.jsonl")
    read = [json.loads(line)["doc"]["key"] for line in samples_file.read_text().splitlines()]
    docs = load_docs("test")
    assert sorted(read) == sorted(docs[i]["key"] for i in (3, 7))
    sampled = json.loads(results_file.read_text())
    assert sampled["results"]["sev_emotion"]["docs_sha256,classify"] == docs_digest(read)

    # The same run as if it had read the first two docs (--limit 2) and two others, by hash.
    first = copy.deepcopy(sampled)
    first["results"]["sev_emotion"]["docs_sha256,classify"] = docs_digest(
        d["key"] for d in docs[:2]
    )
    first_docs = first["results"]["sev_emotion"]["docs_sha256,classify"][:12]
    again = copy.deepcopy(sampled)
    again["config"]["emobench"]["controller"]["name"] = "other"
    # An older --limit 2 run, from before the task reported its docs: it read the first two, so
    # the newer run of those docs supersedes it.
    older = copy.deepcopy(first)
    del older["results"]["sev_emotion"]["docs_sha256,classify"]
    older["config"]["limit"] = 2
    older["date"] = first["date"] - 60
    rows = collect([write(tmp_path / "runs", [sampled, first, again, older])])
    assert [r["file"].endswith("-01.json") for r in rows if r["docs"] == first_docs] == [True]
    assert all(r["partial"] and r["n"] == 2 for r in rows)
    by_docs: dict[str, set[str]] = {}
    for row in rows:
        by_docs.setdefault(row["ranking"], set()).add(row["controller"])
    assert sorted(map(sorted, by_docs.values())) == [["none"], ["none", "other"]]
    assert all("partial runs of 2 docs (docs " in name for name in by_docs)
