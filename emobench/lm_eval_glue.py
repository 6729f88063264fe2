"""Every use of lm-eval's private API, in one place, each failing loudly if lm-eval changed.

emobench's own seams to lm-eval are public: a registered model (`emobench`), its model-info
hook, task YAML with `!function` filters and aggregations. Only the command line reaches
further: it extends `lm_eval`'s own parser (so that every flag of `lm_eval run` works unchanged)
and runs `lm_eval run`'s own code path, and it needs the results dict for its end-of-run table.
pyproject.toml pins lm-eval to the versions these were tested with.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from emobench.errors import EmoBenchError

TESTED = "lm-eval 0.4.13"


def _changed(what: str, exc: BaseException | None = None) -> EmoBenchError:
    detail = f" ({type(exc).__name__}: {exc})" if exc else ""
    return EmoBenchError(
        f"lm-eval {version('lm_eval')} changed {what}{detail}; emobench was tested with "
        f"{TESTED}: install that (`pip install 'lm-eval==0.4.13'`)"
    )


def harness_parser() -> tuple[argparse.ArgumentParser, Any]:
    """lm-eval's own parser and its subparsers (`run`, `ls`, `validate`)."""
    try:
        from lm_eval._cli import HarnessCLI

        cli = HarnessCLI()
        return cli._parser, cli._subparsers
    except (ImportError, AttributeError) as exc:
        raise _changed("its command-line parser (lm_eval._cli.HarnessCLI)", exc) from exc


def merge_dict_action() -> type[argparse.Action]:
    """lm-eval's key=value / JSON argument action, so emobench's flags parse like its own."""
    try:
        from lm_eval._cli.utils import MergeDictAction
    except ImportError as exc:
        raise _changed("lm_eval._cli.utils.MergeDictAction", exc) from exc
    return MergeDictAction


@contextlib.contextmanager
def _results_of_run(store: dict[str, Any]) -> Iterator[None]:
    """Keep the results dict that `lm_eval run` computes, for the end-of-run table.

    `lm_eval run` looks `lm_eval.simple_evaluate` up when it runs, so wrapping that attribute
    for the duration of the call sees its return value; nothing in it is changed.
    """
    import lm_eval

    original = lm_eval.simple_evaluate

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        store["called"] = True
        store["results"] = original(*args, **kwargs)
        return store["results"]

    lm_eval.simple_evaluate = wrapped
    try:
        yield
    finally:
        lm_eval.simple_evaluate = original


@contextlib.contextmanager
def _scalar_table() -> Iterator[None]:
    """lm-eval's printed table without the metrics that are no number (the confusion matrix,
    a dict, which pytablewriter prints whole on one line some 300 characters wide, and the
    classifier head's hash): emobench's own table below shows them. The results file keeps
    everything.

    `lm_eval run` imports `make_table` from `lm_eval.utils` when it prints, so wrapping that
    attribute for the duration of the call changes only what is printed.
    """
    import lm_eval.utils

    original = lm_eval.utils.make_table

    def shown(key: str, value: Any) -> bool:
        if isinstance(value, (dict, list)):
            return False
        # A metric's text (the classifier head's hash) is no number; "N/A" stderrs and the
        # task's alias are what the table expects.
        metric, comma, _ = key.partition(",")
        return not (comma and isinstance(value, str) and not metric.endswith("_stderr"))

    def scalars_only(result_dict: dict[str, Any], column: str = "results", **kwargs: Any) -> str:
        copy = dict(result_dict)
        copy[column] = {
            task: {k: v for k, v in metrics.items() if shown(k, v)}
            for task, metrics in (result_dict.get(column) or {}).items()
        }
        return original(copy, column, **kwargs)

    lm_eval.utils.make_table = scalars_only
    try:
        yield
    finally:
        lm_eval.utils.make_table = original


def _defined_in(index: dict[str, Any], names: list[Any]) -> bool:
    """Whether every name, and every member of every group reached from them, is defined in
    `index`: a group of the user's may list lm-eval's built-in tasks, which lm-eval would then
    take for inline tasks with no dataset."""
    todo, seen = list(names), set()
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            if "group" in item and item["group"] not in index:
                todo += _members(item)  # a group written inline
                continue
            item = item.get("group", item.get("task"))
        if not isinstance(item, str) or item not in index:
            return False
        if item not in seen:
            seen.add(item)
            todo += _members(index[item].cfg or {})
    return True


def _members(cfg: dict[str, Any]) -> list[Any]:
    if "group" not in cfg:
        return []
    members = cfg.get("task") or []
    return list(members) if isinstance(members, list) else [members]


@contextlib.contextmanager
def _index_of(include_path: Any, tasks: Any) -> Iterator[None]:
    """Leave lm-eval's built-in tasks out of the run's task index when every task named, and
    every member of a group named, is found in the include paths alone (emobench's own tasks,
    and the user's).

    Indexing the 14,683 built-in tasks, groups and tags takes lm-eval about 11 s on this CPU,
    on every run: more than a `--limit` run of a small model, once per row of a sweep. A name
    that might mean a built-in task (a glob, a YAML file, a directory, a name the include paths
    do not define) keeps the full index; the include paths override built-ins in either case,
    so the tasks built are the same. `lm_eval run` imports `TaskManager` from `lm_eval.tasks`
    when it builds the index, and the stand-in is a subclass of it that passes lm-eval's own
    public `include_defaults=False`.
    """
    from lm_eval import tasks as lm_tasks

    from emobench.run import task_names

    original = lm_tasks.TaskManager
    names = [n for n in task_names(tasks) if n] if tasks else []
    plain = names and not any(
        set(n) & set("*?[") or n.endswith(".yaml") or Path(n).exists() for n in names
    )
    if not plain or not _defined_in(
        original(include_path=include_path, include_defaults=False).task_index, names
    ):
        yield
        return

    class WithoutBuiltins(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["include_defaults"] = False
            super().__init__(*args, **kwargs)

    lm_tasks.TaskManager = WithoutBuiltins
    try:
        yield
    finally:
        lm_tasks.TaskManager = original


class _NoChatTemplateAdvice(logging.Filter):
    """lm-eval advises `--apply_chat_template` for instruct models; the emobench model applies
    the model's chat template itself (emobench.chat), so the advice would only mislead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "chat template is not applied" not in record.getMessage()


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    """`lm_eval run` with these parsed arguments; its results dict (None on ranks > 0)."""
    try:
        from lm_eval._cli.run import Run
    except ImportError as exc:
        raise _changed("lm_eval._cli.run.Run", exc) from exc
    store: dict[str, Any] = {}
    evaluator_log = logging.getLogger("lm_eval.evaluator")
    advice = _NoChatTemplateAdvice()
    if args.model == "emobench":
        evaluator_log.addFilter(advice)
    try:
        with (
            _results_of_run(store),
            _scalar_table(),
            _index_of(getattr(args, "include_path", None), getattr(args, "tasks", None)),
        ):
            Run._execute(args)
    finally:
        evaluator_log.removeFilter(advice)
    if not store.get("called"):
        # The run happened, but its results never passed here: say so rather than print
        # nothing and exit 0 as if all were well.
        raise _changed("how `lm_eval run` calls simple_evaluate (emobench saw no results)")
    return store.get("results")
