"""Published runs keep every reply: `emobench publish` and the gzipped samples log it writes
(without the SEV situation text), read back by `emobench score`, the leaderboard and its report,
on a real --limit run."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from emobench.leaderboard.publish import publish

from emobench.classify import DEFAULT_CLASSIFIER
from emobench.errors import DataError, EmoBenchError
from emobench.jsonl import read_jsonl
from emobench.scoring.situations import MIN_SPAN, redact, restore
from tests.helpers import emobench, last_line


@pytest.fixture(scope="module")
def limit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    proc = emobench(
        *["--tasks", "sev_emotion", "--controller", "none", "--limit", "6", "--batch_size", "6"],
        *["--output_path", str(out), "--log_samples", "--model_args", "measure_fluency=false"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _one(root: Path, pattern: str) -> Path:
    (found,) = root.rglob(pattern)
    return found


@pytest.mark.integration
def test_a_published_run_is_rescored_and_reported_from_its_gzipped_log(limit_run, tmp_path):
    pub = tmp_path / "published"
    proc = emobench("publish", str(limit_run), "--to", str(pub))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results, log = _one(limit_run, "results_*.json"), _one(limit_run, "samples_sev_emotion_*.jsonl")
    gz = pub / f"{log.name}.gz"
    assert sorted(p.name for p in pub.iterdir()) == sorted([results.name, gz.name])
    assert (pub / results.name).read_bytes() == results.read_bytes()
    # Every line is kept, without the SEV text (the situation and the prompt built from it).
    own_lines = [json.loads(line) for line in log.read_text().splitlines()]
    public_text = gzip.decompress(gz.read_bytes()).decode()
    kept = [json.loads(line) for line in public_text.splitlines()]
    assert len(kept) == len(own_lines) == 6
    for mine, public in zip(own_lines, kept, strict=True):
        assert "scenario" in mine["doc"] and "arguments" in mine
        assert not {"scenario", "event", "theme"} & set(public["doc"])
        assert "arguments" not in public and mine["doc"]["scenario"] not in public_text
        for key in ("doc_hash", "acc", "ppl"):
            assert public[key] == mine[key], key
        # What a reply copies of its situation is a reference the SEV text restores exactly.
        assert restore(public["resps"][0][0], mine["doc"]) == mine["resps"][0][0]
        scored = json.loads(public["filtered_resps"][0])
        assert restore(scored.pop("text"), mine["doc"]) == mine["resps"][0][0]
        assert scored == {
            k: v for k, v in json.loads(mine["filtered_resps"][0]).items() if k != "text"
        }

    again = emobench("publish", str(limit_run), "--to", str(pub))
    assert again.returncode == 0 and "nothing written" in again.stdout

    rescored = pub / results.name.replace(".json", f"_{DEFAULT_CLASSIFIER}.json")
    score = emobench("score", str(gz), "--results", str(rescored))
    assert score.returncode == 0, score.stderr[-3000:]
    own = json.loads(results.read_text())["results"]["sev_emotion"]
    new = json.loads(rescored.read_text())["results"]["sev_emotion"]
    # Same replies, same classifier: the published log re-scores to the run's own numbers.
    # Relevance needs each reply's situation: re-scoring takes it from the SEV files again.
    for key in ("acc,classify", "acc_match,classify", "macro_f1,classify", "relevance,classify"):
        assert new[key] == pytest.approx(own[key]), key

    report = tmp_path / "report"
    board = emobench("leaderboard", str(pub / results.name), "--out", str(report))
    assert board.returncode == 0, board.stderr[-3000:]
    html = (report / "leaderboard.html").read_text()
    assert 'class="samples"' in html and "No samples log" not in html


@pytest.mark.integration
def test_rescoring_names_a_damaged_results_file_and_a_missing_gate(limit_run, tmp_path):
    """The results file beside a samples log says which model (and gate) made it: a damaged
    one is named, not taken for a missing one; with none, the missing measure is said."""
    log = _one(limit_run, "samples_sev_emotion_*.jsonl")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(log, alone)
    proc = emobench("score", str(alone / log.name), "--classifier", "minilm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "no quality-adjusted accuracy: no emobench results file beside it names the model "
        "whose gate applies; pass --gate FILE"
    ) in proc.stderr
    damaged = alone / _one(limit_run, "results_*.json").name
    damaged.write_text('{"results": ')
    proc = emobench("score", str(alone / log.name), "--classifier", "minilm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{damaged}: not valid JSON (" in proc.stderr and "scored without the run's record" in (
        proc.stderr
    )
    # Re-measuring fluency needs the record: there the damaged file is an error.
    proc = emobench("score", str(alone / log.name), "--classifier", "minilm", "--fluency")
    assert proc.returncode == 2 and last_line(proc).startswith(
        f"emobench: error: {damaged}: not valid JSON"
    )
    # ...and a run of a model setting it would not load again is not re-measured on another.
    results = json.loads(_one(limit_run, "results_*.json").read_text())
    results["config"]["model_args"]["revision"] = "abc123"
    damaged.write_text(json.dumps(results))
    proc = emobench("score", str(alone / log.name), "--classifier", "minilm", "--fluency")
    assert proc.returncode == 2 and "the run's model had {'revision': 'abc123'}" in last_line(proc)


@pytest.mark.integration
def test_a_run_without_its_samples_log_is_refused(limit_run, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(_one(limit_run, "results_*.json"), lone)
    with pytest.raises(EmoBenchError, match=r"results_.*\.json: not published: No samples log"):
        publish([lone], tmp_path / "published")
    assert not (tmp_path / "published").exists()


@pytest.mark.integration
def test_publishing_over_other_content_is_refused(limit_run, tmp_path):
    pub = tmp_path / "published"
    pub.mkdir()
    taken = pub / _one(limit_run, "results_*.json").name
    taken.write_text("{}\n")
    proc = emobench("publish", str(limit_run), "--to", str(pub))
    assert proc.returncode == 2
    assert last_line(proc) == (
        f"emobench: error: {taken} exists with other content; publish to another directory "
        "or remove it first"
    )
    # Every name is checked before anything is written: the samples log was not written either.
    assert sorted(p.name for p in pub.iterdir()) == [taken.name]
    assert taken.read_text() == "{}\n"


def test_a_gzipped_jsonl_reads_like_the_plain_one_and_a_cut_one_is_named(tmp_path):
    lines = [{"text": f"reply {i}", "emotion": "fear"} for i in range(50)]
    plain = tmp_path / "log.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in lines))
    whole = tmp_path / "log.jsonl.gz"
    whole.write_bytes(gzip.compress(plain.read_bytes()))
    assert [r for _, r in read_jsonl(whole)] == [r for _, r in read_jsonl(plain)]
    assert next(iter(read_jsonl(whole)))[0] == f"{whole}:1"

    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[:-20])
    with pytest.raises(DataError, match=rf"^{cut}: not a whole gzip file .*copy it again"):
        list(read_jsonl(cut))
    mislabelled = tmp_path / "plain.jsonl.gz"
    mislabelled.write_bytes(plain.read_bytes())
    with pytest.raises(DataError, match=r"drop the \.gz from its name"):
        list(read_jsonl(mislabelled))


def test_a_doc_without_its_situation_must_be_in_the_sev_data(tmp_path, sev_dir):
    from emobench.scoring.rescore import read_samples

    line = {"doc": {"key": "nowhere_00__positive__anger", "valence": "positive"}, "resps": [["x"]]}
    line["doc"]["target_emotion"] = "anger"
    log = tmp_path / "samples_sev_emotion_2026-01-01T00-00-00.jsonl.gz"
    log.write_bytes(gzip.compress((json.dumps(line) + "\n").encode()))
    with pytest.raises(DataError, match=r"1 docs without their situation text \(e.g. 'nowhere_00"):
        read_samples(log)
    test_key = "work_test_00__positive__anger"
    line["doc"]["key"] = test_key
    log.write_bytes(gzip.compress((json.dumps(line) + "\n").encode()))
    (restored,) = read_samples(log)
    assert restored["doc"]["scenario"] and restored["doc"]["event"]


def test_a_reply_that_copies_its_situation_is_published_with_references(test_docs):
    doc = test_docs[0]
    reply = f"So {doc['event']} And {doc['scenario'][3:40].lower()}, honestly."
    public = redact(reply, doc)
    assert "⟦e:0:" in public and restore(public, doc) == reply
    # No run of MIN_SPAN characters of the situation is left in the published text.
    for source in (doc["event"], doc["scenario"]):
        assert not any(
            source[i : i + MIN_SPAN] in public for i in range(len(source) - MIN_SPAN + 1)
        )
    assert redact("A reply of its own.", doc) == "A reply of its own."
    with pytest.raises(ValueError, match="already holds a reference"):
        redact("odd ⟦e:0:3⟧ text", doc)


def test_a_published_reply_shows_its_references_not_their_markup(tmp_path):
    """The report of the published runs: a reply's repeat of its situation reads as a
    reference in brackets, never as the raw ⟦e:i:j⟧ markup."""
    from emobench.scoring.situations import reference_parts

    assert reference_parts("So ⟦e:3:9⟧, and ⟦s:0:4⟧.") == [
        ("text", "So "),
        ("ref", "event 3-9"),
        ("text", ", and "),
        ("ref", "scenario 0-4"),
        ("text", "."),
    ]
    assert reference_parts("plain") == [("text", "plain")] and reference_parts("") == []
    published = Path(__file__).resolve().parents[1] / "leaderboard" / "published" / "sev_emotion"
    proc = emobench("leaderboard", str(published), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (tmp_path / "leaderboard.html").read_text()
    assert "⟦" not in html and html.count('<span class="ref"') > 10
