"""`emobench sweep`: grid parsing, the choice of the recommended point, the refusal of an
ungated model (a whole sweep runs in the main job's test)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from emobench.errors import EmoBenchError
from emobench.sweep import (
    _folder_part,
    best,
    controller_argv,
    newest_results,
    parse_grid,
    slice_indices,
)
from tests.helpers import emobench, last_line


def test_grid_and_slice():
    assert parse_grid(["lam=0.5,1", "positions=all,last"]) == {
        "lam": ["0.5", "1"],
        "positions": ["all", "last"],
    }
    with pytest.raises(EmoBenchError, match=r"expected name=v1,v2"):
        parse_grid(["lam"])
    assert slice_indices(2, 37) == [0, 1, 2, 3, 4, 5, 222, 223, 224, 225, 226, 227]


def test_the_best_point_is_quality_adjusted_and_ties_go_to_the_weaker_setting():
    rows = [
        {"controller": "none", "args": {}, "acc_qa": 0.9},  # a reference never wins
        {"controller": "steer", "args": {"alpha": "4"}, "acc_qa": 0.3, "acc": 0.6},
        {"controller": "steer", "args": {"alpha": "1"}, "acc_qa": 0.3, "acc": 0.2},
        {"controller": "steer", "args": {"alpha": "8"}, "acc_qa": None, "acc": 0.9},
    ]
    assert best(rows, "steer", "alpha")["args"] == {"alpha": "1"}


def test_a_model_without_a_quality_gate_is_refused_after_the_first_reference(
    tmp_path, tiny_llama_dir
):
    """Raw accuracy alone would choose for it, so nothing is chosen. (A whole sweep on a tiny
    model, its files and its choice, is checked in the main job's test, which sweeps.)"""
    command = [
        *["sweep", "--controller", "tests.plugins_for_tests:KnobController"],
        *["--grid", "gain=0,2", "--items", "1"],
        *["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")],
        *["--model_args", f"pretrained={tiny_llama_dir}", "device=cpu"],
    ]
    ungated = emobench(*command, env={"EMOBENCH_CACHE": str(tmp_path / "empty")}, timeout=900)
    assert ungated.returncode == 2, ungated.stderr[-3000:]
    assert "no quality-adjusted accuracy" in last_line(ungated)
    assert "emobench calibrate-gate --model_args pretrained=" in last_line(ungated)
    assert not (tmp_path / "out" / "recommended.json").exists()
    assert (tmp_path / "work" / "none").is_dir()
    assert not (tmp_path / "work" / "prompt").exists()  # stopped after the first reference


def test_a_bad_grid_point_or_slice_is_refused_before_any_run(tmp_path):
    for grid, items, message in (
        ("alpah=1,2", "1", "steer does not take argument(s) alpah"),
        ("alpha=1,abc", "1", "alpha"),
        ("alpha=1", "14", "inside the train split's 480 items (--items at most 13 at --stride 37)"),
    ):
        proc = emobench(
            *["sweep", "--controller", "steer", "--grid", grid, "--items", items],
            *["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")],
        )
        assert proc.returncode == 2 and message in last_line(proc), proc.stderr[-2000:]
        assert not (tmp_path / "work").exists()  # no reference run was started


def test_two_artifacts_with_one_folder_name_get_work_folders_of_their_own():
    a, b = _folder_part("runs/a/directions"), _folder_part("runs/b/directions")
    assert a.startswith("directions-") and b.startswith("directions-") and a != b
    assert _folder_part("0.5") == "0.5" and _folder_part("12-21") == "12-21"


def test_a_point_reads_the_results_its_own_run_wrote(tmp_path: Path) -> None:
    """lm-eval files results under a folder named for the model: another model's older run in
    the same work folder sorts after this one's by name, and must not be read as it."""
    old = tmp_path / "embedded__smollm2-135m-instruct" / "results_2026-01-01T00-00-00.json"
    new = tmp_path / "HuggingFaceTB__SmolLM2-360M-Instruct" / "results_2026-12-07T10-00-00.json"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    started = time.time()
    past = started - 3600
    os.utime(old, (past, past))
    assert sorted(tmp_path.rglob("results_*.json"))[-1] == old  # what a name sort would read
    assert newest_results(tmp_path, started - 1) == new
    assert newest_results(tmp_path, started + 3600) is None


def test_a_chosen_setting_reaches_the_controller_as_chosen():
    """bench passes a sweep's choice on a command line: two arguments stay two, and a value
    with a comma stays whole."""
    from emobench.cli import build_parser

    _, subparsers = build_parser()
    argv = ["--tasks", "sev_emotion", *controller_argv({"alpha": 1, "layers": "12,13"})]
    args = subparsers["run"].parse_args(argv)
    assert args.controller_args == {"alpha": 1, "layers": "12,13"}
    assert controller_argv({}) == []
