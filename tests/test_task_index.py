"""A run whose tasks are all found in the include paths indexes only those paths: lm-eval's
14,000-odd built-in task configs take seconds to index on every run, a sweep row included."""

from __future__ import annotations

from pathlib import Path

import pytest
from lm_eval import tasks as lm_tasks

from emobench.lm_eval_glue import _index_of
from emobench.run import with_own_tasks

OWN = {"sev_emotion", "sev_emotion_train", "goemotions_inference", "emobench"}


def _index(include_path: list[str], tasks: str) -> list[str] | None:
    """The task names lm-eval's run would index, or None where it keeps the built-ins."""
    with _index_of(include_path, tasks):
        if lm_tasks.TaskManager.__name__ == "TaskManager":
            return None
        return lm_tasks.TaskManager(include_path=include_path).all_tasks


def test_own_tasks_are_indexed_without_the_builtins(tmp_path: Path) -> None:
    paths = with_own_tasks(None)
    indexed = _index(paths, "sev_emotion,goemotions_inference")
    assert indexed is not None and set(indexed) >= OWN and "hellaswag" not in indexed
    # A user's own task beside emobench's is found the same way.
    (tmp_path / "mine.yaml").write_text(
        f"task: my_emotion_task\ninclude: {Path(paths[0]) / 'sev_emotion' / 'sev_emotion.yaml'}\n"
    )
    mine = _index(with_own_tasks(str(tmp_path)), "sev_emotion,my_emotion_task")
    assert mine is not None and "my_emotion_task" in mine and "hellaswag" not in mine
    assert lm_tasks.TaskManager.__name__ == "TaskManager"  # put back after the run


@pytest.mark.parametrize(
    "tasks",
    ["sev_emotion,hellaswag", "sev_*", "no_such_task", "tasks/sev_emotion/sev_emotion.yaml"],
)
def test_a_name_that_may_be_builtin_keeps_the_full_index(tasks: str) -> None:
    assert _index(with_own_tasks(None), tasks) is None
