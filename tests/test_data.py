import json
from pathlib import Path

import pytest

from emobench import EMOTIONS, VALENCES
from emobench.data import expand, load_docs, load_skeletons, resolve_split
from emobench.errors import DataError

GOOD = {
    "theme": "Work/Job",
    "scenario": "I filed the report",
    "event": {
        "positive": "It was praised.",
        "neutral": "It was filed.",
        "negative": "It was lost.",
    },
    "skeleton_id": "work_00",
}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_real_test_split_expands_to_2880_docs_in_stable_order(test_docs):
    assert len(test_docs) == 2880
    assert len({d["key"] for d in test_docs}) == 2880
    first = test_docs[:6]
    assert [d["target_emotion"] for d in first] == list(EMOTIONS)
    assert {d["valence"] for d in first} == {"positive"}
    assert {d["skeleton_id"] for d in first} == {first[0]["skeleton_id"]}
    assert set(test_docs[0]) == {
        "key",
        "skeleton_id",
        "theme",
        "valence",
        "target_emotion",
        "scenario",
        "event",
    }
    assert test_docs[0]["key"] == f"{first[0]['skeleton_id']}__positive__anger"
    assert load_docs("test") == test_docs  # deterministic


def test_train_split_is_distinct_from_test(test_docs):
    train = load_docs("train")
    assert len(train) == 2880
    assert {d["scenario"] for d in train}.isdisjoint({d["scenario"] for d in test_docs})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: "{not json", "not valid JSON"),
        (lambda r: json.dumps([1, 2]), "expected a JSON object"),
        (
            lambda r: json.dumps({k: v for k, v in r.items() if k != "scenario"}),
            "missing field(s) scenario",
        ),
        (lambda r: json.dumps({**r, "theme": "  "}), "'theme' must be a non-empty string"),
        (
            lambda r: json.dumps({**r, "event": {"positive": "a", "negative": "b"}}),
            "expected exactly",
        ),
        (lambda r: json.dumps({**r, "event": {**r["event"], "neutral": ""}}), "event['neutral']"),
        (lambda r: json.dumps({**r, "skeleton_id": "work_00"}), "duplicate skeleton_id 'work_00'"),
    ],
)
def test_bad_lines_fail_with_file_and_line(tmp_path, mutate, message):
    path = write_lines(tmp_path / "test.jsonl", [json.dumps(GOOD), "", mutate(GOOD)])
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert f"{path}:3:" in str(err.value)
    assert message in str(err.value)


def test_empty_file_is_an_error(tmp_path):
    path = write_lines(tmp_path / "test.jsonl", [""])
    with pytest.raises(DataError, match="empty"):
        load_skeletons(path)


def test_expand_covers_every_valence_and_emotion(tmp_path):
    docs = list(expand(load_skeletons(write_lines(tmp_path / "t.jsonl", [json.dumps(GOOD)]))))
    assert len(docs) == len(VALENCES) * len(EMOTIONS)
    assert docs[6]["valence"] == "neutral" and docs[6]["event"] == "It was filed."


def test_env_dir_without_the_split_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOBENCH_SEV_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"has no test\.jsonl"):
        resolve_split("test")


def test_unknown_split(monkeypatch):
    with pytest.raises(DataError, match="unknown SEV split 'dev'"):
        resolve_split("dev")


def test_download_validates_then_caches(tmp_path, monkeypatch, sev_dir):
    """The upstream path, exercised against a file:// mirror of the real files."""
    import emobench.data as data

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "test_set.jsonl").write_bytes((sev_dir / "test.jsonl").read_bytes())
    (mirror / "sev.jsonl").write_text("{broken\n")
    monkeypatch.delenv("EMOBENCH_SEV_DIR")
    monkeypatch.setenv("EMOBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "UPSTREAM_BASE", mirror.as_uri() + "/")

    path = resolve_split("test")
    assert path == tmp_path / "cache" / "sev" / "test.jsonl"
    assert len(load_docs("test")) == 2880

    with pytest.raises(DataError, match="not valid JSON") as err:
        resolve_split("train")
    assert str(err.value).startswith(f"the download of {mirror.as_uri()}/sev.jsonl is not the SEV")
    assert list((tmp_path / "cache" / "sev").iterdir()) == [path]  # nothing of it is left


def test_unreachable_upstream_says_to_set_the_env(tmp_path, monkeypatch):
    import emobench.data as data

    monkeypatch.delenv("EMOBENCH_SEV_DIR")
    monkeypatch.setenv("EMOBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "UPSTREAM_BASE", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(DataError, match="set EMOBENCH_SEV_DIR"):
        resolve_split("test")


def test_a_file_cut_off_mid_line_says_it_looks_truncated(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "skeleton_id": "w1"})[:40])
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert str(err.value) == (
        f"{path}:2: not valid JSON (Unterminated string starting at column 35); "
        "the file ends in the middle of this line, so it looks truncated: copy it again"
    )


def test_an_invalid_line_in_the_middle_says_what_each_line_must_be(tmp_path):
    path = write_lines(tmp_path / "test.jsonl", [json.dumps(GOOD), "{not json", json.dumps(GOOD)])
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert str(err.value) == (
        f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes at "
        "column 2); each line must be one complete JSON object"
    )


def test_blank_lines_are_skipped_and_later_lines_keep_their_numbers(tmp_path):
    second = {**GOOD, "skeleton_id": "work_01"}
    path = write_lines(tmp_path / "t.jsonl", ["", json.dumps(GOOD), "   ", "", json.dumps(second)])
    assert [s.skeleton_id for s in load_skeletons(path)] == ["work_00", "work_01"]
    path.write_text(path.read_text() + json.dumps(GOOD) + "\n")
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert str(err.value) == (
        f"{path}:6: duplicate skeleton_id 'work_00' (first seen at {path}:2); "
        "every skeleton_id must be unique"
    )


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (
            {"positive": "a", "joyful": "b", "negative": "c"},
            "unknown valence(s) 'joyful' and no 'neutral'",
        ),
        ({**GOOD["event"], "mixed": "d"}, "unknown valence(s) 'mixed'"),
        ({"positive": "a", "negative": "c"}, "no 'neutral'"),
    ],
)
def test_event_valences_other_than_the_three_are_named(tmp_path, event, problem):
    path = write_lines(tmp_path / "test.jsonl", [json.dumps({**GOOD, "event": event})])
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert str(err.value) == (
        f"{path}:1: 'event' has {problem}; expected exactly the keys positive, neutral, negative"
    )


def test_a_missing_field_names_every_field_a_line_needs(tmp_path):
    record = {k: v for k, v in GOOD.items() if k not in ("theme", "event")}
    path = write_lines(tmp_path / "test.jsonl", [json.dumps(record)])
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert str(err.value) == (
        f"{path}:1: missing field(s) theme, event; every line needs theme, scenario, event, "
        "skeleton_id"
    )


def test_an_empty_file_is_named(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_bytes(b"")
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert str(err.value) == f"{path}: the file is empty; expected one JSON object per line"


def test_bytes_that_are_not_utf8_are_reported_with_their_line(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_bytes(
        json.dumps(GOOD).encode() + b"\n" + json.dumps(GOOD).encode("latin-1")[:5] + b"\xe9\n"
    )
    with pytest.raises(DataError) as err:
        load_skeletons(path)
    assert str(err.value) == (
        f"{path}:2: not UTF-8 text (byte 6 of the line); save the file as UTF-8"
    )


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(GOOD) + "\n", encoding="utf-8-sig")
    assert [s.skeleton_id for s in load_skeletons(path)] == ["work_00"]


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_sev_dir_that_is_not_a_directory_is_named_with_the_variable(tmp_path, monkeypatch, kind):
    target = tmp_path / "sev"
    if kind == "file":
        target.write_text("")
    monkeypatch.setenv("EMOBENCH_SEV_DIR", str(target))
    with pytest.raises(DataError) as err:
        resolve_split("test")
    problem = "no such directory" if kind == "missing" else "not a directory"
    assert str(err.value) == (
        f"EMOBENCH_SEV_DIR={target}: {problem}; point it at a directory holding train.jsonl "
        "and test.jsonl (for example ../shared/sev)"
    )


def test_a_missing_sev_dir_is_a_one_line_error_from_the_command(tmp_path):
    """Checked before the model loads: the first thing the user sees."""
    from tests.helpers import emobench, last_line

    missing = tmp_path / "sev"
    proc = emobench(
        "--tasks", "sev_emotion", "--limit", "1", env={"EMOBENCH_SEV_DIR": str(missing)}
    )
    assert proc.returncode == 2
    assert last_line(proc) == (
        f"emobench: error: EMOBENCH_SEV_DIR={missing}: no such directory; point it at a "
        "directory holding train.jsonl and test.jsonl (for example ../shared/sev)"
    )
    assert "Traceback" not in proc.stderr
    assert "[models.huggingface" not in proc.stderr  # no model was loaded first
