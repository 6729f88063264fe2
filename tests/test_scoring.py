"""Scoring apart from generation: metrics, `emobench classify` and `emobench score`."""

import json
import math

import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from emobench.errors import DataError
from emobench.jsonl import read_jsonl
from emobench.scoring.metrics import cohen_kappa, confusion, macro_f1
from emobench.scoring.rescore import MAX_CHARS, read_samples, texts_of
from tests.helpers import emobench, last_line

LABELS = ["anger", "sadness", "happiness", "neutral"]
TARGETS = ["anger", "anger", "sadness", "happiness", "sadness", "anger"]
PREDICTED = ["anger", "neutral", "sadness", "anger", "happiness", "anger"]


def test_metrics_match_scikit_learn():
    assert macro_f1(TARGETS, PREDICTED, LABELS) == pytest.approx(_sk_macro(TARGETS, PREDICTED))
    assert cohen_kappa(TARGETS, PREDICTED) == pytest.approx(cohen_kappa_score(TARGETS, PREDICTED))
    assert confusion(TARGETS, PREDICTED, LABELS) == [
        [2, 0, 0, 1],
        [0, 1, 1, 0],
        [1, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    assert math.isnan(cohen_kappa([], []))


def _sk_macro(t, p):
    # scikit-learn averages over the labels present in either list, as macro_f1 does.
    present = sorted(set(t) | set(p))
    return f1_score(t, p, labels=present, average="macro", zero_division=0)


def test_reading_texts_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=rf"{bad}:2: not valid JSON"):
        texts_of(read_jsonl(bad), "text")
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"txt": "fine"}\n')
    with pytest.raises(DataError, match=rf"{missing}:1: no string field 'text'"):
        texts_of(read_jsonl(missing), "text")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        texts_of(read_jsonl(empty), "text")


def test_huge_text_is_truncated_with_a_warning(tmp_path, caplog):
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"text": "furious " * 12_500}) + "\n")  # 100,000 characters
    (text,) = texts_of(read_jsonl(big), "text")
    assert len(text) == MAX_CHARS
    assert "truncated" in caplog.text and f"{big}:1" in caplog.text


def test_classify_command_writes_one_line_per_input(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join(json.dumps({"text": t}) for t in ["I hate this.", "", "x" * 100_000]) + "\n"
    )
    proc = emobench("classify", str(src))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 3
    assert all(
        set(line) == {"text", "label", "probs"} and line["label"] in line["probs"] for line in lines
    )
    assert lines[2]["text"] == "x" * 100_000  # the input line, whole, with the verdict added
    assert "truncated" in proc.stderr


def test_classify_command_rejects_bad_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = emobench("classify", str(empty))
    assert proc.returncode == 2
    assert (
        last_line(proc)
        == f"emobench: error: {empty}: the file is empty; expected one JSON object per line"
    )
    nonjson = tmp_path / "nonjson.jsonl"
    nonjson.write_text("hello\n")
    proc = emobench("classify", str(nonjson))
    assert proc.returncode == 2
    assert f"{nonjson}:1: not valid JSON" in last_line(proc)


def test_read_samples_rejects_foreign_lines(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"doc": {"question": "2+2"}, "resps": [["4"]]}) + "\n")
    with pytest.raises(DataError, match="not an lm-eval samples line of sev_emotion"):
        read_samples(path)
