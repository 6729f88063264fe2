"""`emobench`: lm-eval's command line plus emobench's own flags and subcommands.

This module is the parser and the dispatch; `emobench.run` runs an evaluation, and each
subcommand's work lives in the module it names.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from emobench import commands, lm_eval_glue
from emobench.errors import EmoBenchError

log = logging.getLogger("emobench")


def _plain_value(text: str) -> Any:
    """A command-line value as the type it spells: JSON numbers, booleans, null, lists, objects;
    anything else stays the string it is (so `template=Sound {emotion}.` keeps its braces)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class KeyValueArgs(argparse.Action):
    """`key=value ...` (each value kept whole, braces and commas included) or one JSON object."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        current = dict(getattr(namespace, self.dest, None) or {})
        for item in values or []:
            if item.lstrip().startswith("{"):
                try:
                    parsed = json.loads(item)
                except json.JSONDecodeError as exc:
                    parser.error(f"argument {option_string}: {item!r} is not a JSON object ({exc})")
                if not isinstance(parsed, dict):
                    parser.error(f"argument {option_string}: {item!r} is not a JSON object")
                current.update(parsed)
                continue
            key, eq, value = item.partition("=")
            if not eq or not key:
                parser.error(
                    f"argument {option_string}: expected key=value, got {item!r} "
                    "(for example alpha=1 layers=12-21)"
                )
            current[key] = _plain_value(value)
        setattr(namespace, self.dest, current)


def _log_like_lm_eval() -> None:
    """emobench's progress lines (groups, journal reuse) in the same format as lm-eval's."""
    logger = logging.getLogger("emobench")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-8s [emobench] %(message)s", "%Y-%m-%d:%H:%M:%S"
            )
        )
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _module_doc(name: str) -> str:
    """A module's docstring for a subcommand's --help, read without importing the module (the
    parser is built on every call, and these modules import torch)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return ""
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    """--model_args for the subcommands that load a model themselves (discover, calibrate-gate)."""
    parser.add_argument(
        "--model_args",
        nargs="+",
        action=lm_eval_glue.merge_dict_action(),
        default=None,
        metavar="<arg>",
        help="pretrained=<HF id or dir> (default: embedded), dtype=...",
    )


def _documented(subparsers: Any, name: str, help: str, module: str) -> argparse.ArgumentParser:
    """A subcommand whose --help shows the docstring of the module that does the work."""
    return subparsers.add_parser(
        name,
        help=help,
        description=_module_doc(module),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from emobench.classify import DEFAULT_CLASSIFIER
    from emobench.run import run as run_evaluation

    parser, subparsers = lm_eval_glue.harness_parser()
    parser.prog = "emobench"
    parser.description = "emobench: emotion-control benchmark (an lm-eval superset)"
    run = subparsers.choices["run"]
    run.prog = "emobench run"
    group = run.add_argument_group("emobench")
    group.add_argument(
        "--controller",
        default=None,
        metavar="<name>",
        help="controller plugin (emobench list controllers), or package.module:Class; default "
        "none (the same as --model_args controller=<name>)",
    )
    group.add_argument(
        "--controller_args",
        default=None,
        nargs="+",
        action=KeyValueArgs,
        metavar="<arg>",
        help="controller arguments as key=val (recorded in the results)",
    )
    group.add_argument(
        "--classifier",
        default=None,
        metavar="<name>",
        help="emotion classifier plugin that scores the generations (default minilm; the same "
        "as --model_args classifier=<name>, or --metadata classifier=<name> for other models)",
    )
    run.set_defaults(func=run_evaluation)

    tp = subparsers.add_parser(
        "tasks-path",
        help="where emobench's task YAML is, for stock lm_eval",
        description="Without TASK: the directory for `lm_eval --include_path DIR --tasks "
        "sev_emotion` (any lm-eval model). With TASK: that task's YAML file, for `lm_eval run "
        "--model emobench --tasks FILE`: lm-eval imports a YAML file's functions before it builds "
        "the model, and that import registers the model `emobench` (a task found through "
        "--include_path is imported only after the model is built).",
    )
    tp.add_argument("task", nargs="?", default=None, help="a task name, e.g. sev_emotion")
    tp.set_defaults(func=commands.tasks_path)

    lst = subparsers.add_parser("list", help="list installed emobench plugins")
    lst.add_argument("what", choices=["controllers", "classifiers"])
    lst.set_defaults(func=commands.list_plugins)

    tc = subparsers.add_parser("train-classifier", help="retrain the minilm classifier head")
    tc.add_argument("--head", choices=["emo7", "sev6"], default="emo7", help="default emo7")
    tc.add_argument("--out", default=None, help="output .safetensors (default: the packaged head)")
    tc.set_defaults(func=commands.train_classifier)

    cl = subparsers.add_parser("classify", help="classify the `text` of each line of a JSONL file")
    cl.add_argument("file", help="JSONL file, one object with a `text` field per line")
    cl.add_argument(
        "--classifier", default=DEFAULT_CLASSIFIER, help="classifier plugin (default minilm)"
    )
    cl.add_argument("--field", default="text", help="the field holding the text (default text)")
    cl.set_defaults(func=commands.classify)

    sc = subparsers.add_parser(
        "score", help="re-score a finished run's samples log, no regeneration"
    )
    sc.add_argument("samples", help="an lm-eval samples_sev_emotion_*.jsonl file")
    sc.add_argument(
        "--classifier", default=DEFAULT_CLASSIFIER, help="classifier plugin (default minilm)"
    )
    sc.add_argument("--out", default=None, help="also write the metrics as JSON here")
    sc.add_argument(
        "--results",
        default=None,
        help="also write a results_*.json file that `emobench leaderboard` ranks",
    )
    sc.add_argument(
        "--fluency",
        action="store_true",
        help="measure each reply's perplexity under the unsteered model again (loads the run's "
        "model and rebuilds its controller's prompts; for runs saved without it)",
    )
    sc.add_argument(
        "--gate",
        default=None,
        help="quality gate JSON for the quality-adjusted accuracy (default: the one calibrated "
        "for the run's model)",
    )
    sc.set_defaults(func=commands.score)

    cg = _documented(
        subparsers,
        "calibrate-gate",
        "calibrate the quality gate of quality-adjusted accuracy for a model",
        "emobench.scoring.gate",
    )
    _add_model_args(cg)
    cg.add_argument("--n", type=int, default=600, help="reference replies to measure (600)")
    cg.add_argument("--batch_size", type=int, default=16)
    cg.add_argument("--out", default=None, help="gate JSON (default: the user cache)")
    cg.set_defaults(func=commands.calibrate_gate)

    dc = subparsers.add_parser(
        "discover", help="build artifacts (emotion directions, circuits) from SEV train"
    )
    dc.add_argument("what", choices=["directions", "circuit"])
    _add_model_args(dc)
    dc.add_argument("--out", required=True, help="output directory of the artifact")
    dc.add_argument("--batch_size", type=int, default=16)
    dc.add_argument(
        "--limit_groups",
        type=int,
        default=None,
        help="only the first N (skeleton, valence) groups (for quick checks)",
    )
    dc.add_argument(
        "--accepted_only",
        action="store_true",
        help="keep only the complete groups, as the reference did: generate the prompt "
        "controller's reply to every train doc (greedy, 100 new tokens), classify the replies, "
        "and compute the directions only on the (skeleton, valence) groups whose six replies are "
        "all classified as their target emotion; the metadata records how many groups were kept. "
        "A weak model (the embedded SmolLM2) may pass few or none: with none it stops with an "
        "error. Costs one generation per doc (2,880 for the whole train split)",
    )
    dc.add_argument(
        "--classifier",
        default=None,
        metavar="<name>",
        help="classifier plugin that judges the replies for --accepted_only (default minilm)",
    )
    dc.add_argument(
        "--probe_situations",
        type=int,
        default=24,
        help="circuit: neutral situations for the sublayer-importance probe (default 24)",
    )
    dc.set_defaults(func=commands.discover)

    sw = _documented(
        subparsers,
        "sweep",
        "a controller's settings on a slice of SEV train: accuracy beside quality",
        "emobench.sweep",
    )
    sw.add_argument("--controller", required=True, help="the controller to sweep")
    sw.add_argument(
        "--grid",
        action="append",
        metavar="name=v1,v2",
        help="controller argument values to try (repeat for a product grid)",
    )
    sw.add_argument("--out", required=True, help="sweep.md/json/png, recommended.json, runs/")
    sw.add_argument("--work", default=None, help="samples logs and journals (runs/sweep/NAME)")
    sw.add_argument("--items", type=int, default=12, help="train situations (x 6 emotions)")
    sw.add_argument("--stride", type=int, default=37, help="take every Nth situation (37)")
    sw.add_argument("--batch_size", type=int, default=None)
    sw.add_argument(
        "--model_args",
        dest="model_args_raw",
        nargs="+",
        default=None,
        metavar="<arg>",
        help="passed to every run, e.g. pretrained=<HF id or dir>",
    )
    sw.set_defaults(func=commands.sweep)

    an = _documented(
        subparsers,
        "analyze",
        "causal validation of a circuit artifact: ablation, enhancement, plots",
        "emobench.analysis.circuit",
    )
    an.add_argument("what", choices=["circuit"])
    an.add_argument("artifact", help="a circuit artifact directory (emobench discover circuit)")
    an.add_argument("--out", required=True, help="directory for analysis.json, summary.md, PNGs")
    _add_model_args(an)
    an.add_argument("--groups", type=int, default=8, help="train situations per emotion (8)")
    an.add_argument("--seeds", type=int, default=5, help="random controls per setting (5)")
    an.add_argument(
        "--generate",
        type=int,
        default=0,
        help="also generate prompted replies for N situations per condition and classify them",
    )
    an.add_argument("--batch_size", type=int, default=16)
    an.set_defaults(func=commands.analyze)

    lb = subparsers.add_parser("leaderboard", help="render a leaderboard from results directories")
    lb.add_argument("paths", nargs="+", help="--output_path directories (or results JSON files)")
    lb.add_argument("--out", default=None, help="directory for leaderboard.{md,csv,json,html}")
    lb.set_defaults(func=commands.leaderboard)
    for name, sub in subparsers.choices.items():
        sub.prog = f"emobench {name}"  # lm-eval named its subparsers after itself
    return parser, dict(subparsers.choices)


def main(argv: list[str] | None = None) -> int:
    from lm_eval.utils import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    # As lm_eval does: flags with no subcommand mean `run`.
    if argv and argv[0] not in commands and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")
    args = parser.parse_args(argv)
    setup_logging()
    _log_like_lm_eval()
    if args.command in ("ls", "validate"):
        from emobench.run import with_own_tasks

        args.include_path = with_own_tasks(getattr(args, "include_path", None))
    try:
        args.func(args)
    except EmoBenchError as exc:
        print(f"emobench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        from tqdm import tqdm

        # Close the open progress bars now: closed at exit, they would redraw below the hint.
        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
        print(f"\nemobench: interrupted; {_resume_hint(args)}", file=sys.stderr)
        return 130
    return 0


def _resume_hint(args: argparse.Namespace) -> str:
    journal = (getattr(args, "model_args", None) or {}).get("journal")
    if journal:
        return f"rerun the same command to resume: finished replies are kept in {journal}"
    if args.command == "run":
        return "add --use_cache PATH to make a run resumable (a rerun then generates only the rest)"
    return "nothing was saved"


if __name__ == "__main__":
    sys.exit(main())
