"""A built wheel, installed (not editable), finds its tasks, controllers, head and templates."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

from emobench import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, importlib.metadata as md
import emobench, emobench.tasks, emobench.controllers.prompt
from emobench.classify.minilm import default_head
from emobench.registry import CONTROLLERS, load_class
from lm_eval.tasks import TaskManager
from importlib.resources import files
from pathlib import Path
from emobench.hf_metric import metric_path
from emobench.controllers.steer import SteerController
from emobench.controllers.circuit import CircuitController
import emobench.analysis.circuit, emobench.discovery.circuit, emobench.discovery.attributes
from emobench.classify import get_classifier
from emobench.classify.tuning.written import compose

dist = md.distribution("emobench")
eps = {ep.name: ep.value for ep in dist.entry_points if ep.group == CONTROLLERS}
task_dir = emobench.tasks.task_dir()
print(json.dumps({
    "emobench": emobench.__file__,
    "dist": str(dist.locate_file("")),
    "controllers": eps,
    "prompt_module": load_class(CONTROLLERS, "prompt").__module__,
    "prompt_file": emobench.controllers.prompt.__file__,
    "task_dir": str(task_dir),
    "yaml": (task_dir / "sev_emotion" / "sev_emotion.yaml").is_file(),
    "found": TaskManager(include_path=str(task_dir)).match_tasks(["sev_emotion"]),
    "head": default_head().is_file(),
    "template": (files("emobench.leaderboard") / "templates" / "leaderboard.html.j2").is_file(),
    "metric": (Path(metric_path()) / "emotion_accuracy.py").is_file(),
    "steer_artifact": (SteerController().artifact_path() / "tensors.safetensors").is_file(),
    "circuit_artifact": (CircuitController().artifact_path() / "tensors.safetensors").is_file(),
    "circuit_code": emobench.discovery.circuit.__file__,
    "default_classifier": get_classifier().classify(["My hands shake."])[0]["label"],
    "written_replies": len(compose()),
}))
"""


def source_copy(dest: Path) -> Path:
    """The checkout's files as a clean clone would have them (tracked and new, not ignored).
    Built in place, setuptools would reuse a stale build/ folder, and a package missing from
    pyproject could still reach the wheel from it."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def test_installed_wheel_finds_its_parts(tmp_path):
    dist = tmp_path / "dist"
    src = source_copy(tmp_path / "src")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("emobench-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["emobench"].startswith(str(site)), info  # the installed copy, not the checkout
    assert info["prompt_file"].startswith(str(site))
    assert info["dist"].startswith(str(site))
    assert info["controllers"]["none"] == "emobench.controllers.none:NoneController"
    assert info["controllers"]["prompt"] == "emobench.controllers.prompt:PromptController"
    assert info["prompt_module"] == "emobench.controllers.prompt"
    assert info["task_dir"].startswith(str(site))
    assert info["yaml"] and info["head"] and info["template"] and info["metric"]
    assert info["steer_artifact"] and info["circuit_artifact"]
    assert info["circuit_code"].startswith(str(site))
    assert info["controllers"]["circuit"] == "emobench.controllers.circuit:CircuitController"
    assert info["controllers"]["steer"] == "emobench.controllers.steer:SteerController"
    assert info["found"] == ["sev_emotion"]
    assert info["default_classifier"] in (*EMOTIONS, "neutral")
    assert info["written_replies"] > 0
    # Every package of the checkout is in the wheel, so no sub-package is left out by hand:
    # pyproject's package-dir says where each top-level folder installs.
    in_wheel = {
        str(Path(n).parent).replace("/", ".")
        for n in zipfile.ZipFile(wheel).namelist()
        if n.endswith("__init__.py")
    }
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    installs_as = {folder: name for name, folder in package_dir["package-dir"].items()}
    in_checkout = {
        ".".join([name, *init.parent.relative_to(ROOT / folder).parts])
        for folder, name in installs_as.items()
        for init in (ROOT / folder).glob("**/__init__.py")
    }
    assert in_checkout - in_wheel == set()
