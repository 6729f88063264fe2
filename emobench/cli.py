"""`emobench`: lm-eval's command line plus emobench's own flags and subcommands.

This module is the parser and the dispatch; `emobench.run` runs an evaluation, and each
subcommand's work lives in the module it names.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from emobench import commands, lm_eval_glue
from emobench.classify.tuning.bases import BASES
from emobench.cli_study import add_study_commands
from emobench.errors import EmoBenchError
from emobench.model_args import plain_value

log = logging.getLogger("emobench")


# ",name=" inside a value: a second argument joined to the first (attribute=valence,top=100),
# never a value of its own (neurons=12:345,20:7 and templates with commas have no "=" after one).
_JOINED = re.compile(r",\s*(?=[A-Za-z_]\w*=)")


class KeyValueArgs(argparse.Action):
    """`key=value ...` (each value kept whole, braces and commas included) or one JSON object."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[override]
        current = dict(getattr(namespace, self.dest, None) or {})

        def put(key: str, value: Any) -> None:
            # A key given twice with two values is a slip; silently keeping the last hides it.
            if key in current and current[key] != value:
                parser.error(
                    f"argument {option_string}: {key} given twice ({current[key]!r} and "
                    f"{value!r}); keep one"
                )
            current[key] = value

        for item in values or []:
            if item.lstrip().startswith("{"):
                try:
                    parsed = json.loads(item)
                except json.JSONDecodeError as exc:
                    parser.error(f"argument {option_string}: {item!r} is not a JSON object ({exc})")
                if not isinstance(parsed, dict):
                    parser.error(f"argument {option_string}: {item!r} is not a JSON object")
                for key, value in parsed.items():
                    put(key, value)
                continue
            key, eq, value = item.partition("=")
            if eq and _JOINED.search(value):
                parser.error(
                    f"argument {option_string}: {item!r} holds several key=value pairs joined "
                    f"by commas; give each as its own word: {' '.join(_JOINED.split(item))} "
                    "(a value that does hold ',name=' goes in a JSON object)"
                )
            if not eq or not key:
                parser.error(
                    f"argument {option_string}: expected key=value, got {item!r} "
                    "(for example alpha=1 layers=12-21)"
                )
            put(key, plain_value(value))
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


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from emobench.classify import DEFAULT_CLASSIFIER
    from emobench.run import run as run_evaluation

    parser, subparsers = lm_eval_glue.harness_parser()
    parser.prog = "emobench"
    parser.description = "emobench: emotion-control benchmark (an lm-eval superset)"
    # lm-eval's own quick start names lm-eval commands; these are the ones a user types here.
    parser.epilog = """quick start:
  emobench --tasks sev_emotion --controller prompt --limit 12  # 'run' is implied
  emobench bench --output_path runs/sev_emotion  # every controller, then the leaderboard
  emobench leaderboard runs/sev_emotion          # md, csv, json, html
  emobench list controllers

every flag of `lm-eval run` works with `emobench run`; see README.md for the rest."""
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
        help="emotion classifier plugin that scores the generations (default "
        f"{DEFAULT_CLASSIFIER}; the same as --model_args classifier=<name>, or --metadata "
        "classifier=<name> for other models)",
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

    tc = subparsers.add_parser("train-classifier", help="retrain a shipped classifier head")
    tc.add_argument(
        "--head",
        choices=["ft", "emo7", "sev6", "pair"],
        default="ft",
        help="ft: a fine-tuned encoder (minilm-ft or mpnet-ft, by --base; default); emo7: the "
        "frozen encoder's logistic head (minilm); sev6: SEV replies only (minilm-sev6); pair: "
        "ft-pair's card (thresholds for the mean of mpnet-ft and minilm-ft, from their "
        "out-of-fold files; --out is then a .json)",
    )
    tc.add_argument(
        "--base",
        choices=list(BASES),
        default=None,
        help="with --head ft: the encoder to fine-tune; minilm (all-MiniLM-L6-v2, minilm-ft; "
        "default, about 36 min here) or mpnet (all-mpnet-base-v2, mpnet-ft, the default "
        "classifier; about 83 min)",
    )
    tc.add_argument(
        "--asides",
        action="store_true",
        help="with --head ft: also train on aside copies (a sentence naming another emotion "
        "beside a written reply); measured, in no shipped head "
        '(docs/classifier-experiments.md, "Asides")',
    )
    tc.add_argument(
        "--oof-only",
        action="store_true",
        help="with --head ft: run the cross-validation of the head at --out (default: the "
        "packaged one) again and write its out-of-fold probabilities beside it, refused unless "
        "the report equals its card's (what a classifier of several heads chooses thresholds on)",
    )
    tc.add_argument("--seed", type=int, default=None, help="default 0")
    tc.add_argument(
        "--out",
        default=None,
        help="output .safetensors (default: the packaged head); with --head pair, a .json",
    )
    tc.set_defaults(func=commands.train_classifier)

    cl = subparsers.add_parser(
        "classify",
        help="classify the `text` of each line of a JSONL file: each line is printed back with "
        "`label` and `probs` added",
    )
    cl.add_argument("file", help="JSONL file, one object with a `text` field per line")
    cl.add_argument(
        "--classifier",
        default=DEFAULT_CLASSIFIER,
        help=f"classifier plugin (default {DEFAULT_CLASSIFIER})",
    )
    cl.add_argument("--field", default="text", help="the field holding the text (default text)")
    cl.add_argument(
        "--target_field",
        default=None,
        metavar="FIELD",
        help="the field naming each line's target emotion: adds a boolean `match` (does the text "
        "express it? the classifier's judge-compatible rule) beside `label` and `probs`",
    )
    cl.set_defaults(func=commands.classify)

    sc = subparsers.add_parser(
        "score", help="re-score a finished run's samples log, no regeneration"
    )
    sc.add_argument(
        "samples", help="an lm-eval samples_sev_emotion_*.jsonl file (or a published .jsonl.gz)"
    )
    sc.add_argument(
        "--classifier",
        default=DEFAULT_CLASSIFIER,
        help=f"classifier plugin (default {DEFAULT_CLASSIFIER})",
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

    add_study_commands(subparsers)

    lb = subparsers.add_parser("leaderboard", help="render a leaderboard from results directories")
    lb.add_argument("paths", nargs="+", help="--output_path directories (or results JSON files)")
    lb.add_argument("--out", default=None, help="directory for leaderboard.{md,csv,json,html}")
    lb.add_argument(
        "--format",
        default="table",
        choices=["table", "markdown", "csv", "json", "html"],
        help="what to print (or write with -o); default table",
    )
    lb.add_argument("-o", "--output", default=None, metavar="FILE", help="write --format here")
    lb.add_argument(
        "--sweeps",
        nargs="+",
        default=[],
        metavar="DIR",
        help="`emobench sweep --out` directories (or sweep.json files): the HTML report draws "
        "their accuracy-vs-quality frontier",
    )
    lb.set_defaults(func=commands.leaderboard)

    pub = subparsers.add_parser(
        "publish",
        help="copy runs' results with their whole samples logs (gzipped) to a published folder",
        description="Each sev_emotion run's results_<stamp>.json is copied into --to, and its "
        "samples log (every reply, from --log_samples) is written beside it as "
        "samples_sev_emotion_<stamp>.jsonl.gz, so that `emobench score` can re-score a published "
        "run with a rebuilt classifier without generating again. The SEV situation text (the "
        "docs' scenario and event, the prompts, what a reply copies of them) is left out and read "
        "from $EMOBENCH_SEV_DIR again when re-scoring. Publishing again is a no-op; a file of "
        "the same name with other content is refused.",
    )
    pub.add_argument("paths", nargs="+", help="--output_path directories (or results JSON files)")
    pub.add_argument("--to", required=True, metavar="DIR", help="the published folder")
    pub.set_defaults(func=commands.publish)
    for name, sub in subparsers.choices.items():
        sub.prog = f"emobench {name}"  # lm-eval named its subparsers after itself
    return parser, dict(subparsers.choices)


def _bad_json(message: str, argv: list[str]) -> str:
    """lm-eval's "Invalid JSON: VALUE. Hint: ..." as one line naming the option that held it."""
    if not message.startswith("Invalid JSON: "):
        return message
    value = message.removeprefix("Invalid JSON: ").rpartition(". Hint:")[0] or message
    at = next((i for i, a in enumerate(argv) if a == value or a.endswith("=" + value)), None)
    before = argv[:at] if at is not None else []
    option = next((a for a in reversed(before) if a.startswith("--")), "an option")
    if value.lstrip().startswith("{"):
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            return f"{option} {value}: not valid JSON ({exc})"
    hint = (
        " (or the controller's with --controller_args alpha=5)" if option == "--model_args" else ""
    )
    return (
        f"{option} {value}: lm-eval reads no JSON inside key=value pairs; give all of {option} "
        f"as one JSON object{hint}"
    )


def main(argv: list[str] | None = None) -> int:
    from lm_eval.utils import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    # As lm_eval does: flags with no subcommand mean `run`.
    if argv and argv[0] not in commands and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")
    try:
        args = parser.parse_args(argv)
    except ValueError as exc:
        # lm-eval's key=value/JSON options raise instead of calling parser.error.
        print(f"emobench: error: {_bad_json(str(exc), argv)}", file=sys.stderr)
        return 2
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
    if args.command == "bench":
        return (
            "rerun the same command to resume: each controller's finished replies are kept in "
            f"its journal, {Path(args.output_path) / '<controller>-cache.emobench-journal.jsonl'}"
        )
    return "nothing was saved"


if __name__ == "__main__":
    sys.exit(main())
