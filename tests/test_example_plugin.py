"""A third-party controller that joins emobench only through its entry point.

examples/emobench-random-direction is installed by pip into a folder of its own (not into the
venv), and emobench, run with that folder on PYTHONPATH, lists it, runs it on the tiny model and
ranks it on the leaderboard. Its random directions are checked directly: the norms of steer's
directions, one vector per emotion and block, reproducible per seed, and steer's rule.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from emobench import EMOTIONS, artifacts
from emobench.errors import EmoBenchError
from emobench.hooks import hook_count
from tests.helpers import ROOT, emobench

EXAMPLE = ROOT / "examples" / "emobench-random-direction"
SOURCE = EXAMPLE / "emobench_random_direction" / "__init__.py"


def _load_example():
    """The example's module from its source file, without putting it on this process's path
    (the entry point must be found only where pip installed it)."""
    spec = importlib.util.spec_from_file_location("_example_random_direction", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rd = _load_example()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example installed (no deps, no build isolation: offline) into a --target folder. It is
    built from a copy, so no build/ or egg-info is left in the repository."""
    src = tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__py*"))
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            *[sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"],
            *["--no-index", "--disable-pip-version-check", "--target", str(target), str(src)],
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return target


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}


def test_installed_plugin_is_listed_run_and_ranked(site, tiny_llama_dir, tiny_artifacts, tmp_path):
    listed = emobench("list", "controllers", env=_env(site))
    assert listed.returncode == 0, listed.stderr[-2000:]
    (row,) = [line.split() for line in listed.stdout.splitlines() if "random-direction" in line]
    assert row[:2] == ["random-direction", "emobench_random_direction:RandomDirectionController"]
    assert "steer" in listed.stdout  # the built-ins are still there

    out = tmp_path / "out"
    run = emobench(
        *["--tasks", "sev_emotion", "--controller", "random-direction", "--controller_args"],
        *["seed=1", "alpha=4", "layers=0-1", f"artifact={tiny_artifacts['steer']}"],
        *["--model_args", f"pretrained={tiny_llama_dir},measure_fluency=false"],
        *["--limit", "6", "--batch_size", "6", "--device", "cpu", "--output_path", str(out)],
        env=_env(site),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    record = json.loads(results_file.read_text())["config"]["emobench"]["controller"]
    assert record["name"] == "random-direction"
    assert record["class"] == "emobench_random_direction:RandomDirectionController"
    assert record["args"] == {
        "seed": 1,
        "alpha": 4,
        "layers": "0-1",
        "artifact": tiny_artifacts["steer"],
    }
    assert record["effective"] == {"alpha": 4.0, "layers": "0-1", "seed": 1}
    assert record["generation_kwargs"]["repetition_penalty"] == 1.05  # steer's settings
    assert len(record["artifact"]["sha256"]) == 64

    board = tmp_path / "board"
    ranked = emobench("leaderboard", str(out), "--out", str(board), env=_env(site))
    assert ranked.returncode == 0, ranked.stderr[-2000:]
    with (board / "leaderboard.csv").open(newline="") as handle:
        (row,) = [r for r in csv.DictReader(handle) if r["controller"] == "random-direction"]
    args = {"alpha": 4.0, "layers": "0-1", "seed": 1, "artifact": tiny_artifacts["steer"]}
    assert json.loads(row["controller_args"]) == args
    assert row["n"] == "6"
    assert 0.0 <= float(row["acc"]) <= 1.0


def _rescaled(artifact: str, out: Path) -> Path:
    """The artifact with every direction scaled by its own factor (0.25 to 3.1), so that matching
    steer's norms is more than making unit vectors."""
    tensors, meta = artifacts.load(artifact)
    n_emotions, n_layers, _ = tensors["post_block"].shape
    factors = torch.linspace(0.25, 3.1, n_emotions * n_layers).view(n_emotions, n_layers, 1)
    tensors = {k: (v * factors if k == "post_block" else v) for k, v in tensors.items()}
    return artifacts.save(out, tensors, meta)


def _vectors(controller, model) -> torch.Tensor:
    tensors, meta = controller.load_artifact(model)
    layers = range(tensors["post_block"].shape[1])
    return torch.stack(
        [torch.stack([controller.direction(tensors, meta, e, i) for i in layers]) for e in EMOTIONS]
    )


@pytest.fixture(scope="module")
def tiny_model(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()


def test_random_vectors_match_steer_norms_and_differ_by_emotion_and_seed(
    tiny_model, tiny_artifacts, tmp_path
):
    from emobench.controllers.steer import SteerController

    art = str(_rescaled(tiny_artifacts["steer"], tmp_path / "art"))
    steer = _vectors(SteerController(artifact=art), tiny_model)
    seed0 = _vectors(rd.RandomDirectionController(seed=0, artifact=art), tiny_model)
    again = _vectors(rd.RandomDirectionController(seed=0, artifact=art), tiny_model)
    seed1 = _vectors(rd.RandomDirectionController(seed=1, artifact=art), tiny_model)

    assert steer.norm(dim=-1).unique().numel() == steer.shape[0] * steer.shape[1]
    for random in (seed0, seed1):
        assert random.shape == steer.shape and random.dtype == steer.dtype
        torch.testing.assert_close(random.norm(dim=-1), steer.norm(dim=-1))
        unit = random / random.norm(dim=-1, keepdim=True)
        # Another vector for every emotion at every block, and none of them steer's.
        cos = torch.einsum("eld,fld->lef", unit, unit)
        off_diagonal = ~torch.eye(len(EMOTIONS), dtype=torch.bool)
        assert cos[:, off_diagonal].abs().max() < 0.9
        steer_unit = steer / steer.norm(dim=-1, keepdim=True)
        assert (unit * steer_unit).sum(-1).abs().max() < 0.9
    assert torch.equal(seed0, again)  # the same seed, the same vectors
    assert ((seed0 * seed1).sum(-1) / (seed0.norm(dim=-1) * seed1.norm(dim=-1))).abs().max() < 0.9


def test_vectors_are_the_same_in_another_process(site):
    """Reproducible across runs: a new interpreter (another hash seed) draws the same vector."""
    probe = (
        "from emobench_random_direction import random_unit\n"
        "print(random_unit(1, 'fear', 3, 64).tolist())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, **_env(site), "PYTHONHASHSEED": "12345"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.equal(torch.tensor(json.loads(proc.stdout)), rd.random_unit(1, "fear", 3, 64))


def test_it_steers_by_steers_rule_along_its_own_vectors(tiny_model, tiny_artifacts, tmp_path):
    """random-direction on an artifact == steer on an artifact that holds its random vectors."""
    from emobench.controllers.steer import SteerController

    art = tiny_artifacts["steer"]
    random = rd.RandomDirectionController(seed=7, alpha=4.0, layers="0-1", artifact=art)
    tensors, meta = artifacts.load(art)
    swapped = artifacts.save(
        tmp_path / "swapped", {**tensors, "post_block": _vectors(random, tiny_model)}, meta
    )
    steer = SteerController(alpha=4.0, layers="0-1", artifact=str(swapped))
    ids = torch.randint(0, tiny_model.config.vocab_size, (2, 9), generator=torch.Generator())
    with torch.no_grad():
        plain = tiny_model(ids).logits
        with random.scope(tiny_model, "disgust"):
            randomly = tiny_model(ids).logits
        with steer.scope(tiny_model, "disgust"):
            steered = tiny_model(ids).logits
    assert hook_count(tiny_model) == 0
    torch.testing.assert_close(randomly, steered, rtol=0, atol=0)
    assert not torch.allclose(randomly, plain)
    assert random.generation_kwargs() == steer.generation_kwargs()
    assert random.spec()["effective"] == {"alpha": 4.0, "layers": "0-1", "seed": 7}


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True, "one"])
def test_a_bad_seed_is_named(seed):
    with pytest.raises(EmoBenchError, match=r"random-direction: seed must be a whole number"):
        rd.RandomDirectionController(seed=seed)
