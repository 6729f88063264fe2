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

from emobench import lm_eval_glue
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


def _tasks_path(args: argparse.Namespace) -> None:

    from emobench.run import task_dir

    if args.task is None:
        print(task_dir())
        return
    found = sorted(Path(task_dir()).rglob(f"{args.task}.yaml"))
    if not found:
        names = sorted(p.stem for p in Path(task_dir()).rglob("*.yaml"))
        raise EmoBenchError(f"no emobench task {args.task!r}; emobench's tasks: {', '.join(names)}")
    print(found[0])


def _list(args: argparse.Namespace) -> None:
    from tabulate import tabulate

    from emobench.registry import CLASSIFIERS, CONTROLLERS, installed

    group = {"controllers": CONTROLLERS, "classifiers": CLASSIFIERS}[args.what]
    rows = [[p.name, p.target, p.distribution] for p in installed(group).values()]
    print(tabulate(rows, headers=[args.what[:-1], "entry point", "package"]))


def _train_classifier(args: argparse.Namespace) -> None:

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
    from emobench.loading import load_model

    if args.classifier is not None and not args.accepted_only:
        raise EmoBenchError("--classifier only applies with --accepted_only")
    if args.what == "circuit" and args.accepted_only:
        raise EmoBenchError("--accepted_only applies to `discover directions` only")
    model, tokenizer, name = load_model(dict(args.model_args or {}))
    if args.what == "circuit":
        from emobench.discovery.circuit import discover_circuit

        out = discover_circuit(
            model,
            tokenizer,
            name,
            args.out,
            batch_size=args.batch_size,
            limit_groups=args.limit_groups,
            probe_situations=args.probe_situations,
        )
    else:
        from emobench.discovery.directions import discover_directions

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


def _sweep(args: argparse.Namespace) -> None:
    from emobench.sweep import parse_grid, sweep

    extra = ["--model_args", *args.model_args_raw] if args.model_args_raw else []
    if args.batch_size:
        extra += ["--batch_size", str(args.batch_size)]
    sweep(
        args.controller,
        parse_grid(args.grid or []),
        args.out,
        args.work or f"runs/sweep/{args.controller}",
        items=args.items,
        stride=args.stride,
        extra=extra,
    )


def _analyze(args: argparse.Namespace) -> None:
    from emobench import artifacts
    from emobench.analysis.circuit import analyze_circuit
    from emobench.loading import load_model

    meta = artifacts.read_meta(args.artifact, "emotion-circuit")
    model_args = {"pretrained": meta["model"]["name"], **(args.model_args or {})}
    model, tokenizer, _ = load_model(model_args)
    analyze_circuit(
        model,
        tokenizer,
        args.artifact,
        args.out,
        groups=args.groups,
        seeds=args.seeds,
        generate=args.generate,
        batch_size=args.batch_size,
    )
    print((Path(args.out) / "summary.md").read_text())


def _write_json(path: str, obj: Any) -> None:

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


def _module_doc(name: str) -> str:
    """A module's docstring for a subcommand's --help, read without importing the module (the
    parser is built on every call, and these modules import torch)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return ""
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""


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
    tp.set_defaults(func=_tasks_path)

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
    cg.set_defaults(func=_calibrate_gate)

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
    dc.set_defaults(func=_discover)

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
    sw.set_defaults(func=_sweep)

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
    an.set_defaults(func=_analyze)

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
