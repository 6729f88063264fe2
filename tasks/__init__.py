"""lm-eval task configs shipped with emobench (installed as emobench.tasks)."""

from importlib.resources import files
from pathlib import Path


def task_dir() -> Path:
    """The directory to pass to lm-eval as an include path."""
    return Path(str(files(__name__)))
