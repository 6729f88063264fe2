"""Data-parallel runs on CPU: two processes under torchrun split the docs and give the results of
one process, through emobench and through stock lm_eval, sharing one journal."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, emobench

TORCHRUN = str(Path(sys.executable).parent / "torchrun")
# A controller with hooks, so every rank opens per-emotion scopes of its own.
CONTROLLER = "tests.plugins_for_tests:ScrambleController"


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [TORCHRUN, "--standalone", "--nproc_per_node", "2", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=900,
    )


def _run(out: Path) -> tuple[dict, dict[str, dict]]:
    (results_file,) = out.rglob("results_*.json")
    (samples_file,) = out.rglob("samples_sev_emotion_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    return json.loads(results_file.read_text()), {s["doc"]["key"]: s for s in samples}


def _same(a: object, b: object) -> bool:
    """Equal, with NaN equal to NaN and floats to summation order (the ranks' samples are
    gathered in another order before the means)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)
    return a == b


def test_two_cpu_processes_give_the_results_of_one(tmp_path, tiny_llama_dir):
    common = ["--limit", "12", "--batch_size", "4", "--device", "cpu", "--log_samples"]
    one = emobench(
        *["--model_args", f"pretrained={tiny_llama_dir}", "--controller", CONTROLLER],
        *["--tasks", "sev_emotion", "--output_path", str(tmp_path / "one"), *common],
    )
    assert one.returncode == 0, one.stderr[-3000:]
    journal = tmp_path / "shared"
    two = _torchrun(
        *["-m", "emobench", "--model_args", f"pretrained={tiny_llama_dir}"],
        *["--controller", CONTROLLER, "--use_cache", str(journal)],
        *["--tasks", "sev_emotion", "--output_path", str(tmp_path / "two"), *common],
    )
    assert two.returncode == 0, two.stderr[-3000:]
    # The ranks split the docs: twelve requests generated in all, not twelve on each rank.
    assert sum(int(n) for n in re.findall(r"\((\d+) requests\)", two.stderr)) == 12
    task_file = emobench("tasks-path", "sev_emotion").stdout.strip()
    model_args = json.dumps({"pretrained": str(tiny_llama_dir), "controller": CONTROLLER})
    stock = _torchrun(
        *["-m", "lm_eval", "run", "--model", "emobench", "--model_args", model_args],
        *["--tasks", task_file, "--output_path", str(tmp_path / "stock"), *common],
    )
    assert stock.returncode == 0, stock.stderr[-3000:]

    base_results, base_samples = _run(tmp_path / "one")
    assert len(base_samples) == 12
    # The record counts every rank's replies (compared below), not rank 0's share.
    assert base_results["config"]["emobench"]["replies"] == {"generated": 12, "from_journal": 0}
    for name in ("two", "stock"):
        results, samples = _run(tmp_path / name)
        assert samples.keys() == base_samples.keys(), name
        for key, sample in samples.items():
            assert sample["filtered_resps"] == base_samples[key]["filtered_resps"], (name, key)
        metrics = results["results"]["sev_emotion"]
        base = base_results["results"]["sev_emotion"]
        assert metrics.keys() == base.keys()
        assert [k for k, v in metrics.items() if not _same(v, base[k])] == [], name
        assert results["config"]["emobench"] == base_results["config"]["emobench"]
        assert results["config"]["emobench_generation_seconds"] > 0, name  # the slowest rank's

    # Both ranks appended to one journal: twelve whole lines, one per doc.
    lines = (tmp_path / "shared.emobench-journal.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(base_samples)
