"""`emobench bench`, the main job: every installed controller that runs unattended, sweeps where
a controller has no recommended setting, resumable runs, and the leaderboard at the end."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from emobench.errors import EmoBenchError
from emobench.mainjob import main_job_controllers, needs_sweep, time_left
from tests.helpers import (
    emobench,
    journal_lines,
    last_line,
    start_interruptible,
    wait_for_journal,
)

KNOB = "tests.plugins_for_tests:KnobController"


def test_the_main_job_runs_every_unattended_controller() -> None:
    names = main_job_controllers()
    assert names[:4] == ["none", "prompt", "steer", "circuit"]
    assert "ablate" not in names  # it needs a neuron set
    # The shipped artifacts carry a recommended setting: no sweep for the embedded model.
    assert needs_sweep("steer") is None and needs_sweep("circuit") is None
    assert needs_sweep(KNOB) == {"gain": ["0", "2"]}


def test_a_same_shape_model_with_other_weights_gets_artifacts_of_its_own(
    tmp_path: Path, embedded_dir: Path
) -> None:
    """The shipped artifacts fit the embedded model under any name, and not a model of the same
    shape with other weights (a fine-tune), which the run itself would refuse."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from emobench.mainjob import unfit_artifacts

    assert unfit_artifacts(["steer", "circuit"], {"pretrained": str(embedded_dir)}) == []
    tuned = AutoModelForCausalLM.from_pretrained(embedded_dir, dtype=torch.bfloat16)
    with torch.no_grad():
        tuned.model.norm.weight.mul_(2)
    tuned.save_pretrained(tmp_path / "tuned")
    AutoTokenizer.from_pretrained(embedded_dir).save_pretrained(tmp_path / "tuned")
    assert unfit_artifacts(
        ["none", "steer", "circuit"], {"pretrained": str(tmp_path / "tuned")}
    ) == [
        "steer",
        "circuit",
    ]
    # An adapter would be left out of the weights compared, and of a discovery: refused.
    with pytest.raises(EmoBenchError, match="peft=adapter: this command loads the model without"):
        unfit_artifacts(["steer"], {"pretrained": str(tmp_path / "tuned"), "peft": "adapter"})


def test_bench_sweeps_runs_resumes_and_ranks(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """On a model of its own: steer, whose shipped directions are the embedded model's, gets
    directions discovered for this model, then a sweep on train (the path of any controller with
    no recommended setting); the model's quality gate, which a sweep chooses by, is calibrated
    first. After each controller, the generation time left for the others. A rerun takes every
    reply from the journals and sweeps nothing again."""
    from emobench.mainjob import unfit_artifacts

    assert unfit_artifacts(["none", "steer", "circuit"], {"pretrained": str(tiny_llama_dir)}) == [
        "steer",
        "circuit",
    ]
    assert unfit_artifacts(["none", "steer", "circuit"], {}) == []  # the embedded model's own
    out = tmp_path / "job"
    args = [
        *["bench", "--controllers", "none,steer", "--limit", "2", "--sweep_items", "1"],
        *["--output_path", str(out), "--model_args", f"pretrained={tiny_llama_dir}"],
    ]
    env = {"EMOBENCH_CACHE": str(tmp_path / "cache")}
    first = emobench(*args, env=env, timeout=1200)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "no quality gate for " in first.stdout and list((tmp_path / "cache/gates").iterdir())
    artifact = out / "artifacts" / "steer"
    assert "steer: its shipped artifact is another model's; discovering directions" in first.stdout
    assert (artifact / "meta.json").is_file()
    swept = out / "sweeps" / "steer"
    sweep = json.loads((swept / "sweep.json").read_text())
    assert [r["controller"] for r in sweep["rows"]] == ["none", "prompt", *["steer"] * 4]
    assert sweep["knob"] == "alpha" and sweep["task"] == "sev_emotion_train"
    assert all(0.0 <= r["acc"] <= 1.0 for r in sweep["rows"])
    recommended = json.loads((swept / "recommended.json").read_text())
    chosen = recommended["alpha"]
    assert chosen in (0.5, 1, 2, 4) and recommended["artifact"] == str(artifact)
    assert 0.0 <= recommended["acc_qa"] <= 1.0 and "chosen_by" in recommended
    assert (swept / "sweep.png").stat().st_size > 10_000
    assert len(list((swept / "runs").glob("*.json"))) == 6
    (best_line,) = [x for x in first.stdout.splitlines() if x.startswith("Best quality-adjusted")]
    assert f'"alpha": {chosen}' in best_line  # as the run read it, not "4"
    beats_none = recommended["acc_qa"] > sweep["rows"][0]["acc_qa"]
    assert ("It is no better than none" in best_line) is not beats_none
    assert re.search(r"; none [\d.]+ %, prompt [\d.]+ %\); 6 replies", best_line), best_line
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    assert sorted(r["controller"] for r in board) == ["none", "steer"]
    steered = json.loads({r["controller"]: r for r in board}["steer"]["controller_args"])
    assert float(steered["alpha"]) == float(chosen) and steered["artifact"] == str(artifact)
    assert all(r["partial"] and r["n"] == 2 for r in board)
    (left,) = [line for line in first.stdout.splitlines() if line.startswith("[1/2] none done")]
    assert re.fullmatch(
        r"\[1/2\] none done in [\d.]+ min; about \d+ (min|s) left for steer \(2 replies to "
        r"generate at [\d.]+ s a reply so far; loading and scoring not counted; sweeps of steer "
        r"not counted\)",
        left,
    ), left
    # Run again: every reply comes from the journals, no sweep runs again, the same leaderboard.
    again = emobench(*args, env=env, timeout=1200)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 replies taken from the journal" in again.stderr
    assert "sweeping" in first.stdout and "sweeping" not in again.stdout
    assert f"steer: swept before, {out / 'sweeps' / 'steer' / 'recommended.json'}" in again.stdout
    assert "discovering" not in again.stdout
    assert "left for" not in again.stdout  # nothing generated: no pace to go by
    journal = out / "none-cache.emobench-journal.jsonl"
    assert f"the first 2 docs of sev_emotion (journal {journal})" in first.stdout
    assert journal.is_file()
    assert first.stdout.strip().splitlines()[-1] == (
        f"leaderboard: {out / 'leaderboard'} (leaderboard.md, .csv, .json, .html)"
    )
    board2 = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    assert [r["acc"] for r in board2] == [r["acc"] for r in board]
    # The rerun's wall time covers no generation: the row says its replies came from a journal.
    assert [r["replies_from_journal"] for r in board] == [0, 0]
    assert [r["replies_from_journal"] for r in board2] == [2, 2]
    table = (out / "leaderboard" / "leaderboard.md").read_text()
    assert "(2/2 from journal)" in table


def test_bench_refuses_an_unknown_controller(tmp_path: Path) -> None:
    proc = emobench("bench", "--controllers", "nope", "--output_path", str(tmp_path))
    assert proc.returncode != 0
    assert "--controllers: nope not installed" in proc.stderr


def test_an_interrupted_bench_says_how_to_resume(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Ctrl-C reaches the job and its running controller (one process group, as in a terminal):
    the last line a user reads points at the journals, which hold the replies made so far."""
    out = tmp_path / "job"
    journal = out / "none-cache.emobench-journal.jsonl"
    command = [sys.executable, "-m", "emobench.cli", "bench", "--controllers", "none"]
    command += ["--limit", "12", "--batch_size", "1", "--output_path", str(out)]
    command += ["--model_args", f"pretrained={tiny_llama_dir}", "measure_fluency=false"]
    proc = start_interruptible(command, own_group=True)
    wait_for_journal(proc, journal, 2)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == (
        "emobench: interrupted; rerun the same command to resume: each controller's finished "
        f"replies are kept in its journal, {out / '<controller>-cache.emobench-journal.jsonl'}"
    )
    assert journal_lines(journal) >= 2


def test_the_time_left_counts_only_the_replies_no_journal_holds(tmp_path: Path) -> None:
    """At the pace of the replies generated so far; a later controller's journal already holds
    some of its replies, and a controller to sweep first has its sweep left out of the sum."""
    (tmp_path / "prompt-cache.emobench-journal.jsonl").write_text('{"key": 1}\n{"key": 2}\n')
    assert time_left(10.0, 4, ["prompt"], 4, tmp_path) == (
        "about 5 s left for prompt (2 replies to generate at 2.50 s a reply so far; "
        "loading and scoring not counted)"
    )
    assert time_left(60.0, 2, ["prompt", "steer"], 4, tmp_path, own={"steer"}) == (
        "about 3 min left for prompt, steer (6 replies to generate at 30.00 s a reply so far; "
        "loading and scoring not counted; sweeps of steer not counted)"
    )
    assert time_left(5.0, 0, ["prompt"], 4, tmp_path) is None  # nothing generated yet
    assert time_left(5.0, 2, [], 4, tmp_path) is None  # nothing left


def test_a_broken_plugin_stops_bench_with_the_way_around_it(tmp_path: Path) -> None:
    """An installed controller that fails to import: bench names it and the --controllers that
    would run the others, before any run starts."""
    site = tmp_path / "site"
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[emobench.controllers]\nbroken = no_such_module_for_emobench:Broken\n"
    )
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    proc = emobench("bench", "--output_path", str(tmp_path / "job"), env={"PYTHONPATH": path})
    assert proc.returncode == 2, proc.stderr[-3000:]
    message = last_line(proc)
    assert message.startswith(
        "emobench: error: controller 'broken' (from broken-plugin, "
        "no_such_module_for_emobench:Broken) failed to load: ModuleNotFoundError"
    )
    working = ",".join(main_job_controllers())
    assert message.endswith(f"or name the ones to run, e.g. --controllers {working}"), message
    assert not (tmp_path / "job").exists()


def test_a_controller_that_fails_to_construct_stops_bench_before_any_run(tmp_path: Path) -> None:
    """Its turn would come after the others' runs, hours in: it is found before the first."""
    broken = "tests.plugins_for_tests:BrokenInitController"
    out = tmp_path / "job"
    proc = emobench("bench", "--controllers", f"none,{broken}", "--output_path", str(out))
    assert proc.returncode == 2, proc.stderr[-3000:]
    message = last_line(proc)
    assert f"controller '{broken}': invalid literal for int()" in message
    assert "(raised at " + str(Path(__file__).with_name("plugins_for_tests.py")) + ":" in message
    assert message.endswith(
        "no run started: mend that controller, or leave it out (--controllers none)"
    )
    assert not out.exists() or not any(out.iterdir())
