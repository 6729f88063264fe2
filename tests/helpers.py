"""Helpers shared by the tests: the real commands as subprocesses, lm-eval requests for docs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GEN_KWARGS = {"until": [], "max_gen_toks": 6, "do_sample": False, "temperature": 0.0}


def emobench(
    *args: str, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "emobench.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


def calibrated_cache(cache: Path, pretrained: Path) -> dict[str, str]:
    """Calibrate a quality gate for a model into a cache of its own, as a user would with
    `emobench calibrate-gate`; the environment that makes runs find it."""
    env = {"EMOBENCH_CACHE": str(cache)}
    proc = emobench(
        *["calibrate-gate", "--model_args", f"pretrained={pretrained}", "--n", "50"], env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((cache / "gates").glob("*.json")), proc.stdout
    return env


def strict_json(text: str) -> Any:
    """Parse JSON as JavaScript and jq do: a bare NaN or Infinity is an error."""

    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[-1]


def journal_lines(journal: Path) -> int:
    return len(journal.read_text().splitlines()) if journal.is_file() else 0


def start_interruptible(command: list[str], *, own_group: bool = False) -> subprocess.Popen:
    """Start a command as a terminal would, to be signalled: a background job inherits SIGINT
    ignored (and Python then keeps ignoring it), so the child gets the default back; with
    `own_group`, it and its children form one process group, which a Ctrl-C reaches whole."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
        start_new_session=own_group,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_journal(proc: subprocess.Popen, journal: Path, lines: int) -> None:
    """Until the running command has journaled `lines` replies (five minutes at most)."""
    deadline = time.monotonic() + 300
    while journal_lines(journal) < lines and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"


def _find_lm_eval() -> str | None:
    """The lm_eval script of this interpreter's environment (the venv need not be activated)."""
    here = Path(sys.executable).parent
    for name in ("lm_eval", "lm-eval"):
        if (here / name).exists():
            return str(here / name)
    return shutil.which("lm_eval") or shutil.which("lm-eval")


LM_EVAL = _find_lm_eval()


def lm_eval(*args: str) -> subprocess.CompletedProcess:
    assert LM_EVAL, "lm_eval is not on PATH"
    return subprocess.run(
        [LM_EVAL, *args], capture_output=True, text=True, cwd=ROOT, env=os.environ, timeout=900
    )


def make_requests(docs: list[dict[str, Any]], gen_kwargs: dict[str, Any] | None = None) -> list:
    from lm_eval.api.instance import Instance

    from emobench.data import user_message

    kwargs = dict(gen_kwargs or GEN_KWARGS)
    return [
        Instance(
            request_type="generate_until",
            doc=doc,
            arguments=(user_message(doc["scenario"], doc["event"]), dict(kwargs)),
            idx=0,
            metadata=("sev_emotion", i, 1),
        )
        for i, doc in enumerate(docs)
    ]
