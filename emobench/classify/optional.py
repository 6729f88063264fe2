"""Optional dependencies of classifier plugins: a missing one names the install that fixes it."""

from __future__ import annotations

import importlib
from types import ModuleType

from emobench.errors import PluginLoadError

# The `classifiers` extra of pyproject.toml installs all of these at once.
EXTRA = "emobench[classifiers]"


def require(module: str, classifier: str, pip_name: str) -> ModuleType:
    """Import `module` for `classifier`, or say which `pip install` brings it in."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PluginLoadError(
            f"classifier {classifier!r} needs the package {pip_name!r}, which is not installed "
            f"({exc}); install it with `pip install {pip_name}` "
            f"(or `pip install '{EXTRA}'` for every optional classifier)"
        ) from exc
