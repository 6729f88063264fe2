"""`emobench`: lm-eval's command line plus emobench's own flags and subcommands.

Every `lm_eval run` flag works unchanged; emobench adds --controller, --controller_args and
--classifier, defaults --model to `emobench` (the embedded model when no pretrained= is given),
finds its own tasks without --include_path, and prints an expression-accuracy table at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from emobench.errors import EmoBenchError

log = logging.getLogger("emobench")

DEFAULT_BATCH_SIZE = "16"
OWN_TASKS = ("sev_emotion", "sev_emotion_train")


def _task_dir() -> str:
    from emobench.tasks import task_dir

    return str(task_dir())


def _with_own_tasks(include_path: Any) -> list[str]:
    paths = [_task_dir()]
    if isinstance(include_path, str) and include_path:
        paths += [p for p in include_path.split(":") if p]
    elif isinstance(include_path, list):
        paths += include_path
    return paths


@contextlib.contextmanager
def _capture_results(store: dict[str, Any], extra: dict[str, Any]) -> Iterator[None]:
    """Add emobench's record to the results lm-eval saves, and keep them for the final table.

    lm-eval's `run` looks up `lm_eval.simple_evaluate` when it runs, so wrapping that attribute
    for the duration of the call is enough; every flag and output of `run` stays lm-eval's own.
    """
    import lm_eval

    original = lm_eval.simple_evaluate

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        # The confusion matrix and macro-F1 need every sample's verdict: keep the samples in
        # memory, and drop them again if the user did not ask for a samples log.
        wanted = bool(kwargs.get("log_samples"))
        kwargs["log_samples"] = True
        results = original(*args, **kwargs)
        if results is not None:
            summaries = _summaries(results.get("samples", {}), str(extra.get("model", "")))
            results["emobench"] = {**extra, **summaries}
            if not wanted:
                results.pop("samples", None)
            store["results"] = results
        return results

    lm_eval.simple_evaluate = wrapped
    try:
        yield
    finally:
        lm_eval.simple_evaluate = original


def _summaries(samples: dict[str, list[dict[str, Any]]], model: str) -> dict[str, Any]:
    """Per emobench task: macro-F1, the confusion matrix and the quality-adjusted accuracy
    (under the model's calibrated quality gate) from the scored samples."""
    from emobench.scoring.gate import gate_for
    from emobench.scoring.rescore import summarize

    out: dict[str, Any] = {}
    gate = gate_for(model) if model else None
    for task in OWN_TASKS:
        rows = samples.get(task)
        if not rows:
            continue
        verdicts = [json.loads(r["filtered_resps"][0]) for r in rows]
        labels = list(verdicts[0]["probs"])
        qualities = [v.get("quality") for v in verdicts]
        summary = summarize(
            [r["doc"] for r in rows], [v["label"] for v in verdicts], labels, qualities, gate
        )
        out[task] = {
            k: summary[k] for k in ("macro_f1", "confusion", "quality_adjusted") if k in summary
        }
        if gate is None:
            log.warning(
                "no quality gate calibrated for %s: quality-adjusted accuracy is not computed "
                "(see `emobench calibrate-gate --help`)",
                model,
            )
    return out


def _run(args: argparse.Namespace) -> None:
    from lm_eval._cli.run import Run

    from emobench import __version__, embedded, loading
    from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
    from emobench.controller import create_controller
    from emobench.report import run_table

    if not args.tasks:
        raise EmoBenchError("no task given; try: emobench --tasks sev_emotion --controller prompt")
    args.model = args.model or "emobench"
    args.include_path = _with_own_tasks(args.include_path)
    classifier = args.classifier or os.environ.get("EMOBENCH_CLASSIFIER") or DEFAULT_CLASSIFIER
    # Load it now: a bad name or a broken head fails before the model generates for an hour.
    classifier_spec = get_classifier(classifier).spec()
    os.environ["EMOBENCH_CLASSIFIER"] = classifier

    controller_spec: dict[str, Any] = {"name": "none (model is not emobench)", "args": {}}
    if args.model == "emobench":
        import emobench.model  # noqa: F401  (registers the lm-eval model "emobench")

        controller = create_controller(args.controller, **(args.controller_args or {}))
        controller_spec = controller.spec()
        model_args = dict(args.model_args or {})
        model_args.setdefault("pretrained", embedded.DEFAULT_PRETRAINED)
        model_args["controller"] = args.controller
        if args.controller_args:
            model_args["controller_args"] = json.dumps(args.controller_args, sort_keys=True)
        args.model_args = model_args
        if not hasattr(args, "batch_size"):
            args.batch_size = DEFAULT_BATCH_SIZE
        if args.device is None:
            args.device = loading.default_device()
        if args.use_cache:
            # lm-eval's cache keys replies on the request text, which is the same for all six
            # target emotions of a situation; the emobench journal keys on the doc and controller.
            model_args["journal"] = f"{args.use_cache}.emobench-journal.jsonl"
            args.use_cache = None
    elif args.controller != "none" or args.controller_args:
        raise EmoBenchError(
            f"--controller needs --model emobench (got --model {args.model}); "
            "drop --model or use --model emobench --model_args pretrained=<HF id or local dir>"
        )

    extra = {
        "emobench_version": __version__,
        "model": (args.model_args or {}).get("pretrained", args.model),
        "controller": controller_spec,
        "controller_args_given": dict(args.controller_args or {}),
        "classifier": classifier_spec,
    }
    for own in ("controller", "controller_args", "classifier"):
        delattr(args, own)  # lm-eval's config rejects flags it does not know
    store: dict[str, Any] = {}
    try:
        with _capture_results(store, extra):
            Run._execute(args)
    except ValueError as exc:
        if str(exc).startswith("Tasks not found"):
            missing = str(exc).partition(":")[2].strip()
            raise EmoBenchError(
                f"unknown task(s) {missing}; emobench's tasks: {', '.join(OWN_TASKS)} "
                "(`emobench ls tasks` lists every lm-eval task; "
                "add your own with --include_path DIR)"
            ) from exc
        raise
    results = store.get("results")
    for task in OWN_TASKS:
        if results is not None and task in results.get("results", {}):
            print()
            print(run_table(results, task))


def _list(args: argparse.Namespace) -> None:
    from tabulate import tabulate

    from emobench.registry import CLASSIFIERS, CONTROLLERS, installed

    group = {"controllers": CONTROLLERS, "classifiers": CLASSIFIERS}[args.what]
    rows = [[p.name, p.target, p.distribution] for p in installed(group).values()]
    print(tabulate(rows, headers=[args.what[:-1], "entry point", "package"]))


def _train_classifier(args: argparse.Namespace) -> None:
    from pathlib import Path

    from emobench.classify.minilm import head_path
    from emobench.classify.train import train

    out = Path(args.out) if args.out else head_path(f"minilm_{args.head}")
    meta = train(out, head=args.head)
    print(f"wrote {out} and {out.with_suffix('.json').name}")
    print(json.dumps({k: meta[k] for k in ("selection", "heldout", "goemotions")}, indent=2))


def _leaderboard(args: argparse.Namespace) -> None:
    from emobench.leaderboard.render import collect, write_all

    rows = collect(args.paths)
    if not rows:
        raise EmoBenchError(
            f"no emobench results under {', '.join(args.paths)}; run "
            "`emobench --tasks sev_emotion --output_path DIR` first"
        )
    print(write_all(rows, args.out))


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


def _classify(args: argparse.Namespace) -> None:
    from emobench.classify import get_classifier
    from emobench.scoring.rescore import read_texts

    texts = read_texts(args.file, field=args.field)
    clf = get_classifier(args.classifier)
    for scored in clf.classify(texts):
        print(json.dumps(scored, ensure_ascii=False))


def _discover(args: argparse.Namespace) -> None:
    from emobench.classify import DEFAULT_CLASSIFIER
    from emobench.discovery.directions import discover_directions
    from emobench.loading import load_model

    if args.classifier is not None and not args.accepted_only:
        raise EmoBenchError("--classifier only applies with --accepted_only")
    model, tokenizer, name = load_model(dict(args.model_args or {}))
    out = discover_directions(
        model,
        tokenizer,
        name,
        args.out,
        batch_size=args.batch_size,
        limit_groups=args.limit_groups,
        accepted_only=args.accepted_only,
        classifier=args.classifier or DEFAULT_CLASSIFIER,
    )
    print(f"wrote {out / 'tensors.safetensors'} and {out / 'meta.json'}")


def _write_json(path: str, obj: Any) -> None:
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")


def _score(args: argparse.Namespace) -> None:
    from emobench.classify import get_classifier
    from emobench.report import score_table
    from emobench.scoring.gate import load_gate
    from emobench.scoring.rescore import as_results, score_samples

    gate = load_gate(args.gate) if args.gate else None
    result = score_samples(
        args.samples, get_classifier(args.classifier), fluency=args.fluency, gate=gate
    )
    if args.out:
        _write_json(args.out, result)
    if args.results:
        _write_json(args.results, as_results(result, args.samples))
    print(score_table(result, source=args.samples))


def _gate_doc() -> str:
    from emobench.scoring import gate

    return gate.__doc__ or ""


def _calibrate_gate(args: argparse.Namespace) -> None:
    from emobench.loading import load_model
    from emobench.scoring.gate import calibrate_on_reference, write_gate

    model, tokenizer, name = load_model(dict(args.model_args or {}))
    gate = calibrate_on_reference(model, tokenizer, name, n=args.n, batch_size=args.batch_size)
    path = write_gate(gate, args.out)
    print(json.dumps(gate.to_json(), indent=2))
    print(f"wrote {path}")


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    """--model_args for the subcommands that load a model themselves (discover, calibrate-gate)."""
    from lm_eval._cli.utils import MergeDictAction

    parser.add_argument(
        "--model_args",
        nargs="+",
        action=MergeDictAction,
        default=None,
        metavar="<arg>",
        help="pretrained=<HF id or dir> (default: embedded), dtype=...",
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from lm_eval._cli import HarnessCLI
    from lm_eval._cli.utils import MergeDictAction

    from emobench.classify import DEFAULT_CLASSIFIER

    cli = HarnessCLI()
    parser: argparse.ArgumentParser = cli._parser
    parser.prog = "emobench"
    parser.description = "emobench: emotion-control benchmark (an lm-eval superset)"
    subparsers = cli._subparsers
    run = subparsers.choices["run"]
    run.prog = "emobench run"
    group = run.add_argument_group("emobench")
    group.add_argument(
        "--controller",
        default="none",
        metavar="<name>",
        help="controller plugin (emobench list controllers), or package.module:Class; default none",
    )
    group.add_argument(
        "--controller_args",
        default=None,
        nargs="+",
        action=MergeDictAction,
        metavar="<arg>",
        help="controller arguments as key=val (recorded in the results)",
    )
    group.add_argument(
        "--classifier",
        default=None,
        metavar="<name>",
        help="emotion classifier plugin that scores the generations (default minilm)",
    )
    run.set_defaults(func=_run)

    lst = subparsers.add_parser("list", help="list installed emobench plugins")
    lst.add_argument("what", choices=["controllers", "classifiers"])
    lst.set_defaults(func=_list)

    tc = subparsers.add_parser("train-classifier", help="retrain the minilm classifier head")
    tc.add_argument("--head", choices=["emo7", "sev6"], default="emo7", help="default emo7")
    tc.add_argument("--out", default=None, help="output .safetensors (default: the packaged head)")
    tc.set_defaults(func=_train_classifier)

    cl = subparsers.add_parser("classify", help="classify the `text` of each line of a JSONL file")
    cl.add_argument("file", help="JSONL file, one object with a `text` field per line")
    cl.add_argument(
        "--classifier", default=DEFAULT_CLASSIFIER, help="classifier plugin (default minilm)"
    )
    cl.add_argument("--field", default="text", help="the field holding the text (default text)")
    cl.set_defaults(func=_classify)

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
    sc.set_defaults(func=_score)

    cg = subparsers.add_parser(
        "calibrate-gate",
        help="calibrate the quality gate of quality-adjusted accuracy for a model",
        description=_gate_doc(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_model_args(cg)
    cg.add_argument("--n", type=int, default=600, help="reference replies to measure (600)")
    cg.add_argument("--batch_size", type=int, default=16)
    cg.add_argument("--out", default=None, help="gate JSON (default: the user cache)")
    cg.set_defaults(func=_calibrate_gate)

    dc = subparsers.add_parser(
        "discover", help="build artifacts (emotion directions) from SEV train"
    )
    dc.add_argument("what", choices=["directions"])
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
    dc.set_defaults(func=_discover)

    lb = subparsers.add_parser("leaderboard", help="render a leaderboard from results directories")
    lb.add_argument("paths", nargs="+", help="--output_path directories (or results JSON files)")
    lb.add_argument("--out", default=None, help="directory for leaderboard.{md,csv,json,html}")
    lb.set_defaults(func=_leaderboard)
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
        args.include_path = _with_own_tasks(getattr(args, "include_path", None))
    try:
        args.func(args)
    except EmoBenchError as exc:
        print(f"emobench: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
