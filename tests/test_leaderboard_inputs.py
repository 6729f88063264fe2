"""`emobench leaderboard` on what a results folder may really hold: damaged or foreign JSON,
NaN measures, paths that are missing or of the wrong type. Through the functions and through the
real command."""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from emobench.leaderboard.render import collect, write_all

from emobench.errors import EmoBenchError
from tests.helpers import ROOT, emobench, last_line, strict_json

PUBLISHED = ROOT / "leaderboard" / "published" / "sev_emotion"
# The none run as re-scored in the earlier results layout (a top-level `emobench` record), which
# the leaderboard still reads.
GOOD = ROOT / "tests" / "data" / "legacy" / "results_2026-11-22T00-13-31.384005_minilm.json"
OUTPUTS = ("leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.html")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    logger = logging.getLogger("emobench")
    handler = Records()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def warnings_printed(stderr: str) -> list[str]:
    return [line.split("[emobench] ", 1)[1] for line in stderr.splitlines() if " WARNING " in line]


@pytest.fixture
def mixed(tmp_path) -> Path:
    """A results folder with one good run among files that hold none."""
    runs = tmp_path / "runs"
    (runs / "model").mkdir(parents=True)
    shutil.copy(GOOD, runs / "model" / GOOD.name)
    (runs / "model" / "results_corrupt.json").write_text('{"results": {"sev_emotion": ')
    (runs / "model" / "results_foreign.json").write_text(json.dumps({"rows": [1, 2]}))
    (runs / "model" / "results_hellaswag.json").write_text(
        json.dumps({"results": {"hellaswag": {"acc,none": 0.3}}})
    )
    (runs / "model" / "results_list.json").write_text("[1, 2]")
    return runs


def skipped(runs: Path) -> list[str]:
    folder = runs / "model"
    return [
        f"{folder / 'results_corrupt.json'}: skipped: not valid JSON "
        "(Expecting value at line 1 column 29)",
        f"{folder / 'results_foreign.json'}: skipped: not an lm-eval results file "
        "(no 'results' object)",
        f"{folder / 'results_hellaswag.json'}: skipped: lm-eval results without sev_emotion",
        f"{folder / 'results_list.json'}: skipped: not an lm-eval results file "
        "(no 'results' object)",
    ]


def test_files_without_results_are_skipped_with_a_warning_each(mixed, warnings_logged):
    rows = collect([mixed])
    assert [(r["controller"], r["file"]) for r in rows] == [
        ("none", str(mixed / "model" / GOOD.name))
    ]
    assert warnings_logged == skipped(mixed)


def test_a_samples_log_named_by_mistake_points_at_its_results_file(tmp_path, warnings_logged):
    """A samples log passed where a results file goes names its run's results file."""
    run = tmp_path / "run"
    run.mkdir()
    results = run / "results_2026-12-07T14-00-00.000001.json"
    shutil.copy(GOOD, results)
    log = run / "samples_sev_emotion_2026-12-07T14-00-00.000001.jsonl"
    log.write_text('{"doc_id": 0}\n{"doc_id": 1}\n')
    orphan = tmp_path / "samples_sev_emotion_2026-12-01T09-00-00.000001.jsonl.gz"
    orphan.write_bytes(b"")
    assert collect([log, orphan]) == []
    assert warnings_logged == [
        f"{log}: skipped: a samples log, not a results file; pass its run's {results}",
        f"{orphan}: skipped: a samples log, not a results file; pass its run's results_*.json",
    ]


def test_a_stock_lm_eval_run_of_another_model_ranks_as_unsteered(tmp_path, warnings_logged):
    results = json.loads(GOOD.read_text())
    del results["emobench"]
    results["config"] = {"model": "hf", "model_args": "pretrained=org/some-model,dtype=float32"}
    results["configs"] = {"sev_emotion": {"metadata": {"classifier": "nrclex"}}}
    path = tmp_path / "results_lm_eval.json"
    path.write_text(json.dumps(results))
    (row,) = collect([path])
    assert (row["model"], row["controller"], row["classifier"]) == (
        "org/some-model",
        "none (hf model)",
        "nrclex",
    )
    assert warnings_logged == []


def with_nan(tmp_path: Path) -> Path:
    results = json.loads(GOOD.read_text())
    results["results"]["sev_emotion"]["acc_fear,classify"] = math.nan
    results["results"]["sev_emotion"]["ppl,classify"] = math.inf
    results["emobench"]["sev_emotion"]["quality_adjusted"] = {"acc_qa": math.nan}
    results["emobench"]["sev_emotion"]["macro_f1"] = math.nan
    path = tmp_path / "measures" / "results_nan.json"
    path.parent.mkdir()
    path.write_text(json.dumps(results))  # Python writes bare NaN, as lm-eval does
    return path


def test_nan_measures_are_written_as_null(tmp_path):
    rows = collect([with_nan(tmp_path)])
    write_all(rows, tmp_path / "board")
    (row,) = strict_json((tmp_path / "board" / "leaderboard.json").read_text())
    assert row["acc_fear"] is None and row["ppl"] is None
    assert row["acc_qa"] is None and row["macro_f1"] is None
    assert row["acc"] == pytest.approx(0.1371527777777778)
    with (tmp_path / "board" / "leaderboard.csv").open(newline="") as handle:
        (cells,) = csv.DictReader(handle)
    assert cells["acc_fear"] == cells["ppl"] == cells["acc_qa"] == cells["macro_f1"] == ""


def test_a_path_that_does_not_exist_is_an_error(tmp_path):
    missing = tmp_path / "runs" / "sev_emotoin"
    with pytest.raises(EmoBenchError) as err:
        collect([PUBLISHED, missing])
    assert str(err.value) == (
        f"{missing} does not exist; pass an --output_path directory of an emobench run "
        "or a results_*.json file"
    )


def test_an_out_that_is_a_file_is_an_error(tmp_path):
    out = tmp_path / "board.md"
    out.write_text("mine\n")
    with pytest.raises(EmoBenchError) as err:
        write_all(collect([GOOD]), out)
    assert str(err.value) == (
        f"--out {out} is a file; pass a directory (leaderboard.{{md,csv,json,html}} are "
        "written into it)"
    )
    assert out.read_text() == "mine\n"


def test_an_out_under_a_file_is_an_error(tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "board"
    with pytest.raises(EmoBenchError) as err:
        write_all(collect([GOOD]), out)
    assert str(err.value) == (
        f"--out {out}: cannot create the directory (Not a directory); pass a writable directory"
    )


def test_rewriting_a_leaderboard_replaces_whole_files_and_leaves_no_temp_files(tmp_path):
    out = tmp_path / "board"
    write_all(collect([GOOD]), out)
    write_all(collect([PUBLISHED]), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    rows = strict_json((out / "leaderboard.json").read_text())
    # The second write replaced the first: exactly the published runs' rows.
    assert len(rows) == len(collect([PUBLISHED])) > 1


def test_an_output_name_taken_by_a_directory_is_an_error(tmp_path):
    out = tmp_path / "board"
    (out / "leaderboard.json").mkdir(parents=True)
    with pytest.raises(EmoBenchError) as err:
        write_all(collect([GOOD]), out)
    assert str(err.value) == (
        f"cannot write {out / 'leaderboard.json'} (Is a directory); "
        "pass a writable directory to --out"
    )
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp file left


# The real command


def test_command_warns_per_skipped_file_and_writes_strict_json(mixed, tmp_path):
    shutil.copy(with_nan(tmp_path), mixed / "model" / "results_nan.json")
    board = tmp_path / "board"
    proc = emobench("leaderboard", str(mixed), "--out", str(board))
    assert proc.returncode == 0, proc.stderr
    assert warnings_printed(proc.stderr) == skipped(mixed)
    assert "Traceback" not in proc.stderr
    assert "none" in proc.stdout
    (row,) = strict_json((board / "leaderboard.json").read_text())  # one run, twice: one row
    assert row["file"] == str(mixed / "model" / "results_nan.json")  # same date: the later file
    assert row["acc_qa"] is None and row["macro_f1"] is None
    assert sorted(p.name for p in board.iterdir()) == sorted(OUTPUTS)


def test_command_with_a_missing_path_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nowhere"
    proc = emobench("leaderboard", str(PUBLISHED), str(missing))
    assert proc.returncode == 2
    assert last_line(proc) == (
        f"emobench: error: {missing} does not exist; pass an --output_path directory of an "
        "emobench run or a results_*.json file"
    )
    assert "Traceback" not in proc.stderr


def test_command_with_out_naming_a_file_is_a_one_line_error(tmp_path):
    out = tmp_path / "board.html"
    out.write_text("<p>mine</p>")
    proc = emobench("leaderboard", str(GOOD), "--out", str(out))
    assert proc.returncode == 2
    assert last_line(proc) == (
        f"emobench: error: --out {out} is a file; pass a directory "
        "(leaderboard.{md,csv,json,html} are written into it)"
    )
    assert "Traceback" not in proc.stderr
    assert out.read_text() == "<p>mine</p>"


def test_command_with_only_foreign_files_names_them_then_fails(mixed):
    (mixed / "model" / GOOD.name).unlink()
    proc = emobench("leaderboard", str(mixed))
    assert proc.returncode == 2
    assert warnings_printed(proc.stderr) == skipped(mixed)
    assert last_line(proc).startswith(f"emobench: error: no emobench results under {mixed}")
    # A results file saved under another name (a re-scored run, say) is pointed at.
    renamed = mixed / "rescored_kw.json"
    shutil.copy(GOOD, renamed)
    proc = emobench("leaderboard", str(mixed))
    assert last_line(proc).endswith(
        f"{renamed} holds results but is not named results_*.json, the only files a folder is "
        "searched for: rename it, or name it on the command line"
    )


def test_a_rescored_run_keeps_its_task_and_its_size(tmp_path, warnings_logged):
    """`emobench score --results` on a sweep's train-split log makes no row among test runs,
    and a re-scored --limit run stays partial."""
    from emobench.scoring.rescore import as_results

    stamp = "2026-12-07T10-00-00.000001"
    verdicts = {"classifier": {"name": "minilm"}, "n": 6, "acc": 0.5}
    cases = (("sev_emotion_train", {"original": 2880, "effective": 6}), ("sev_emotion", None))
    for task, size in cases:
        folder = tmp_path / task
        folder.mkdir()
        samples = folder / f"samples_{task}_{stamp}.jsonl"
        samples.write_text("")
        if size:
            own = {"results": {task: {"acc,classify": 0.1}}, "n-samples": {task: size}}
            (folder / f"results_{stamp}.json").write_text(json.dumps(own))
        rescored = as_results(verdicts, samples)
        assert list(rescored["results"]) == [task]
        expected = size or {"original": 6, "effective": 6}  # nothing beside it to say otherwise
        assert rescored["n-samples"] == {task: expected}
        (folder / f"results_{stamp}_minilm.json").write_text(json.dumps(rescored))
    assert collect([tmp_path / "sev_emotion_train"]) == []
    # A --limit run of the test split, re-scored, ranks among partial runs.
    limited = tmp_path / "limited"
    limited.mkdir()
    samples = limited / f"samples_sev_emotion_{stamp}.jsonl.gz"
    samples.write_bytes(b"")
    own = json.loads(min(PUBLISHED.glob("results_*[0-9].json")).read_text())
    own["n-samples"] = {"sev_emotion": {"original": 2880, "effective": 6}}
    (limited / f"results_{stamp}.json").write_text(json.dumps(own))
    (limited / f"results_{stamp}_minilm.json").write_text(json.dumps(as_results(verdicts, samples)))
    rows = collect([limited / f"results_{stamp}_minilm.json"])
    assert [(r["n"], r["partial"]) for r in rows] == [(6, True)]


def test_runs_of_one_model_with_other_reply_settings_are_rows_of_their_own(tmp_path):
    """Another precision or revision gives other replies: its run is not the plain model's
    run, newer or not, and the model column says what differs."""
    base = json.loads(min(PUBLISHED.glob("results_*[0-9].json")).read_text())
    variants = {
        "plain": ({}, "torch.float32"),
        # Where and how it ran, and a revision given at its default: the plain model's run.
        "same": ({"device_map": "auto", "revision": "main", "base_url": "http://h"}, "float32"),
        "bf16": ({}, "torch.bfloat16"),
        "revision": ({"revision": "abc123", "batch_size": "8"}, "torch.float32"),
    }
    for i, (name, (extra, dtype)) in enumerate(variants.items()):
        results = json.loads(json.dumps(base))
        results["config"]["model_args"] = {**results["config"]["model_args"], **extra}
        results["config"]["model_dtype"] = dtype
        results["date"] = base["date"] + i
        (tmp_path / f"results_{name}.json").write_text(json.dumps(results))
    model = base["config"]["emobench"]["model"]
    assert sorted(r["model"] for r in collect([tmp_path])) == sorted(
        [model, f"{model} (dtype=bfloat16)", f"{model} (revision=abc123)"]
    )


def test_a_default_given_by_hand_is_the_same_row(tmp_path):
    """`template=<the default>` ran what no argument runs: one row, the newer run's."""
    base = json.loads(min(PUBLISHED.glob("results_*[0-9].json")).read_text())
    spec = base["config"]["emobench"]["controller"]
    by_hand = json.loads(json.dumps(base))
    by_hand["config"]["emobench"]["controller"] |= {"given": spec["args"], "changed": {}}
    by_hand["date"] = base["date"] + 1
    changed = json.loads(json.dumps(base))
    changed["config"]["emobench"]["controller"] |= {
        "given": {"template": "Be {emotion}."},
        "changed": {"template": "Be {emotion}."},
    }
    for name, results in (("plain", base), ("by_hand", by_hand), ("changed", changed)):
        (tmp_path / f"results_{name}.json").write_text(json.dumps(results))
    rows = collect([tmp_path])
    assert sorted(r["controller_args"] for r in rows) == ['{"template": "Be {emotion}."}', "{}"]
    assert [r["date"] for r in rows if r["controller_args"] == "{}"] == [by_hand["date"]]
