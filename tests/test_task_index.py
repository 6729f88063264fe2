"""A run whose tasks are all found in the include paths indexes only those paths: lm-eval's
14,683 built-in tasks, groups and tags take seconds to index on every run, a sweep row included."""

from __future__ import annotations

from pathlib import Path

import pytest
from lm_eval import tasks as lm_tasks
from lm_eval.config.evaluate_config import EvaluatorConfig

from emobench.lm_eval_glue import _index_of
from emobench.run import with_own_tasks

OWN = {"sev_emotion", "sev_emotion_train", "goemotions_inference", "emobench"}


def _index(include_path: list[str], tasks: str) -> list[str] | None:
    """The task names `lm_eval run` indexes (built the way it builds them), or None where that
    index holds lm-eval's built-in tasks."""
    with _index_of(include_path, tasks):
        indexed = EvaluatorConfig(tasks=tasks, include_path=include_path).process_tasks()
    return None if "hellaswag" in indexed.all_tasks else indexed.all_tasks


def _user_tasks(folder: Path) -> list[str]:
    sev = Path(with_own_tasks(None)[0]) / "sev_emotion" / "sev_emotion.yaml"
    (folder / "mine.yaml").write_text(f"task: my_emotion_task\ninclude: {sev}\n")
    (folder / "own_group.yaml").write_text(
        "group: my_own_suite\ntask:\n  - sev_emotion\n  - task: my_emotion_task\n"
    )
    # A group that lists a built-in task needs the built-ins in the index.
    (folder / "mixed_group.yaml").write_text(
        "group: my_mixed_suite\ntask: [sev_emotion, hellaswag]\n"
    )
    return with_own_tasks(str(folder))


def test_own_tasks_are_indexed_without_the_builtins(tmp_path: Path) -> None:
    indexed = _index(with_own_tasks(None), "sev_emotion,goemotions_inference")
    assert indexed is not None and set(indexed) >= OWN
    # A user's own task and group beside emobench's are found the same way.
    mine = _index(_user_tasks(tmp_path), "sev_emotion,my_emotion_task,my_own_suite")
    assert mine is not None and {"my_emotion_task", "my_own_suite"} <= set(mine)


@pytest.mark.parametrize(
    "tasks",
    [
        "sev_emotion,hellaswag",
        "sev_*",
        "no_such_task",
        "tasks/sev_emotion/sev_emotion.yaml",
        "my_mixed_suite",
    ],
)
def test_a_name_that_may_need_a_builtin_keeps_the_full_index(tasks: str, tmp_path: Path) -> None:
    """lm-eval's own TaskManager stays in place (building its full index here would take 11 s
    a case): the run is lm-eval's, unchanged."""
    original = lm_tasks.TaskManager
    with _index_of(_user_tasks(tmp_path), tasks):
        assert lm_tasks.TaskManager is original
