"""`emobench run` (and `emobench --tasks ...`): `lm_eval run` with a controller, then a table.

The emobench model takes `controller`, `controller_args` and `classifier` in `--model_args`, so
the same run works with stock `lm_eval run --model emobench`; this command adds the spellings
`--controller`, `--controller_args` and `--classifier`, the embedded default model, emobench's
tasks on the include path, a journal for `--use_cache`, and an accuracy table at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from emobench import lm_eval_glue
from emobench.errors import EmoBenchError

log = logging.getLogger("emobench")

# On a CPU a decode step of a small model for 32 rows costs about three times one for a single
# row, and finished replies leave the batch (emobench.decode), so a large batch pays off: float32
# gains up to batch 64 and holds at 128, where prompted replies (a quarter of the cap on average)
# keep enough rows alive. Accelerators start lower, for large models' KV caches.
CPU_BATCH_SIZE, DEFAULT_BATCH_SIZE = "128", "16"
# emobench's tasks and the SEV split each reads.
OWN_TASKS = {"sev_emotion": "test", "sev_emotion_train": "train"}
# emobench's log-likelihood tasks over GoEmotions (tasks/goemotions_inference) and their tag;
# the GoEmotions split they read is `--metadata split=` (default dev).
INFERENCE_TASKS = ("goemotions_inference", "goemotions_inference_ekman", "emobench_inference")


def task_dir() -> str:
    from emobench.tasks import task_dir

    return str(task_dir())


def with_own_tasks(include_path: Any) -> list[str]:
    paths = [task_dir()]
    if isinstance(include_path, str) and include_path:
        paths += [p for p in include_path.split(":") if p]
    elif isinstance(include_path, list):
        paths += include_path
    return paths


def _once(flag: str, flag_value: Any, key: str, model_args: dict[str, Any]) -> Any:
    """The value given by `flag` or by `--model_args key=`; both only if they agree."""
    in_args = model_args.get(key)
    if flag_value is not None and in_args is not None and flag_value != in_args:
        raise EmoBenchError(
            f"{flag} {flag_value!r} and --model_args {key}={in_args!r} disagree; give it once"
        )
    return flag_value if flag_value is not None else in_args


def _emobench_model_args(args: argparse.Namespace) -> dict[str, Any]:
    """--model_args for the emobench model, with emobench's own flags folded in and checked."""
    from emobench import embedded
    from emobench.classify import get_classifier
    from emobench.controller import create_controller
    from emobench.model_args import parse_controller_args

    model_args = dict(args.model_args or {})
    controller = _once("--controller", args.controller, "controller", model_args) or "none"
    flag_args = dict(args.controller_args) if args.controller_args else None
    given = model_args.get("controller_args")
    controller_args = _once(
        "--controller_args",
        flag_args,
        "controller_args",
        {"controller_args": parse_controller_args(given)} if given else {},
    )
    classifier = _once("--classifier", args.classifier, "classifier", model_args)
    # Built now, so that a bad name or argument fails before the model loads, and a controller
    # that needs a target emotion fails before other tasks generate for half an hour.
    built = create_controller(controller, **(controller_args or {}))
    untargeted = [n for n in task_names(args.tasks) if n in INFERENCE_TASKS]
    if untargeted:
        built.refuse_untargeted(", ".join(untargeted))
    if classifier:
        get_classifier(classifier)
        model_args["classifier"] = classifier
    model_args["controller"] = controller
    if controller_args:
        model_args["controller_args"] = json.dumps(controller_args, sort_keys=True)
    model_args.setdefault("pretrained", embedded.DEFAULT_PRETRAINED)
    if args.use_cache:
        # lm-eval's cache keys replies on the request text, which is the same for all six
        # target emotions of a situation; the emobench journal keys on the doc and controller.
        model_args["journal"] = f"{args.use_cache}.emobench-journal.jsonl"
        args.use_cache = None
    return model_args


def check_output_path(path: str | None) -> None:
    """Fail before the model loads if results could not be saved: lm-eval would generate the
    whole run, then only log a warning and exit 0."""
    if not path:
        return
    target = Path(path)
    folder = target if not target.suffix else target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".emobench-write-probe-"):
            pass
    except OSError as exc:
        raise EmoBenchError(
            f"--output_path {path}: cannot write there ({exc.strerror or exc}); "
            "pass a writable directory"
        ) from exc


def task_names(tasks: str | list[str]) -> list[str]:
    """The task names of --tasks (one comma-separated string, or lm-eval's list of them)."""
    names = tasks.split(",") if isinstance(tasks, str) else [t for n in tasks for t in n.split(",")]
    return [n.strip() for n in names]


def check_data(tasks: str | list[str], metadata: dict[str, Any] | None = None) -> None:
    """Read and validate the SEV splits the tasks need before the model loads: a bad line or a
    missing data directory is then the first thing a user sees, not something after a load.
    For the GoEmotions tasks, the split's file must exist (lm-eval reads it after the load)."""
    from emobench.data import load_docs

    names = task_names(tasks)
    for split in sorted({OWN_TASKS[n] for n in names if n in OWN_TASKS}):
        load_docs(split)
    if any(n in INFERENCE_TASKS for n in names):
        from emobench.classify.goemotions import DEFAULT_SPLIT, require_split

        require_split(str((metadata or {}).get("split") or DEFAULT_SPLIT))


def run(args: argparse.Namespace) -> None:
    from emobench import loading
    from emobench.classify import get_classifier
    from emobench.report import run_table

    if not args.tasks:
        raise EmoBenchError("no task given; try: emobench --tasks sev_emotion --controller prompt")
    args.model = args.model or "emobench"
    args.include_path = with_own_tasks(args.include_path)
    check_output_path(args.output_path)
    # lm-eval merges --metadata over --model_args before it builds the tasks.
    check_data(args.tasks, {**(args.model_args or {}), **(args.metadata or {})})
    if args.model == "emobench":
        # The import registers the model with lm-eval, which builds it before it imports the
        # tasks (whose utils import it too).
        import emobench.model  # noqa: F401

        args.model_args = _emobench_model_args(args)
        loading.check_pretrained(args.model_args.get("pretrained"))
        # lm-eval passes --device to the model as well: one spelling, or a clear conflict.
        args.device = _once("--device", args.device, "device", args.model_args)
        args.model_args.pop("device", None)
        if args.device is None:
            args.device = loading.default_device()
        if not hasattr(args, "batch_size"):
            cpu = str(args.device).startswith("cpu")
            args.batch_size = CPU_BATCH_SIZE if cpu else DEFAULT_BATCH_SIZE
    else:
        if args.controller is not None or args.controller_args:
            raise EmoBenchError(
                f"--controller needs --model emobench (got --model {args.model}); "
                "drop --model or use --model emobench --model_args pretrained=<HF id or local dir>"
            )
        if args.classifier:
            # Another model cannot take it as a model argument: the task reads it from metadata.
            get_classifier(args.classifier)
            args.metadata = {**(args.metadata or {}), "classifier": args.classifier}
    for own in ("controller", "controller_args", "classifier"):
        delattr(args, own)  # lm-eval's config rejects flags it does not know
    try:
        results = lm_eval_glue.run(args)
    except ValueError as exc:
        if str(exc).startswith("Tasks not found"):
            missing = str(exc).partition(":")[2].strip()
            raise EmoBenchError(
                f"unknown task(s) {missing}; emobench's tasks: "
                f"{', '.join([*OWN_TASKS, *INFERENCE_TASKS[:2]])} "
                "(`emobench ls tasks` lists every lm-eval task; "
                "add your own with --include_path DIR)"
            ) from exc
        raise
    for task in OWN_TASKS:
        if results is not None and task in results.get("results", {}):
            print()
            print(run_table(results, task))
