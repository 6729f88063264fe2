"""A real `emobench` process, interrupted by a real signal mid-generation, then rerun: only the
missing replies are generated, and the samples equal an uninterrupted run's."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, journal_lines, start_interruptible, wait_for_journal


def _command(tiny_llama_dir: Path, out: Path, cache: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "emobench.cli", "--tasks", "sev_emotion", "--limit", "12"]
    cmd += ["--batch_size", "1", "--device", "cpu", "--output_path", str(out), "--log_samples"]
    cmd += ["--model_args", f"pretrained={tiny_llama_dir},measure_fluency=false"]
    return cmd + (["--use_cache", str(cache)] if cache else [])


def _samples(out: Path) -> list[tuple[str, str]]:
    (path,) = out.rglob("samples_sev_emotion_*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["doc"]["key"], r["filtered_resps"][0]) for r in rows]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def uninterrupted(tiny_llama_dir, tmp_path_factory) -> list[tuple[str, str]]:
    out = tmp_path_factory.mktemp("clean")
    _run(_command(tiny_llama_dir, out, None))
    return _samples(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_signalled_run_resumes_and_equals_an_uninterrupted_one(
    tmp_path, tiny_llama_dir, uninterrupted, sig
):
    cache = tmp_path / "cache"
    journal = Path(f"{cache}.emobench-journal.jsonl")
    proc = start_interruptible(_command(tiny_llama_dir, tmp_path / "first", cache))
    wait_for_journal(proc, journal, 2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    done = journal_lines(journal)
    assert 2 <= done < 12
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert stderr.strip().splitlines()[-1] == (
            "emobench: interrupted; rerun the same command to resume: finished replies are "
            f"kept in {journal}"
        )
        assert "Traceback" not in stderr
    else:
        assert proc.returncode == -signal.SIGKILL

    again = _run(_command(tiny_llama_dir, tmp_path / "second", cache))
    reused = re.findall(r": (\d+) of \d+ replies taken from the journal", again.stderr)
    assert sum(map(int, reused)) == done  # every journaled reply was reused, none made again
    assert journal_lines(journal) == 12  # only the missing replies were added

    assert sorted(_samples(tmp_path / "second")) == sorted(uninterrupted)
