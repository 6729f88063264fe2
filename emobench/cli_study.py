"""The parsers of the subcommands that build and study artifacts (calibrate-gate, discover,
sweep, analyze) and of the main job (bench); `emobench.cli` adds them to its own."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emobench import commands, lm_eval_glue
from emobench.errors import EmoBenchError


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


def _at_least(low: int):
    """An argparse type: a whole number of `low` or more (argparse names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: give {low} or more")
        return value

    parse.__name__ = f"whole number >= {low}"
    return parse


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give a rate between 0 and 1, e.g. 0.05")
    return value


# Options of `discover` and `analyze` that one kind of artifact takes and the others do not, with
# the kinds that take them. Parsed with default None, so that an option given for a kind that
# ignores it is refused rather than silently dropped, and one not given leaves the default of the
# function that takes it in force (the help names that default; a test holds the two together).
DISCOVER_SCOPED = {
    "limit_groups": ("directions", "circuit"),
    "probe_situations": ("circuit",),
    "permutations": ("attributes",),
    "fdr": ("attributes",),
}
ANALYZE_SCOPED = {
    "groups": ("circuit",),
    "generate": ("circuit",),
    "task": ("attributes",),
    "limit": ("attributes",),
    "top": ("attributes",),
    "neurons": ("attributes",),
}


def _scoped(command: str, func: Any, table: dict[str, tuple[str, ...]]) -> Any:
    def run(args: argparse.Namespace) -> Any:
        for name, kinds in table.items():
            if getattr(args, name) is not None and args.what not in kinds:
                raise EmoBenchError(
                    f"--{name} applies to `emobench {command} {' / '.join(kinds)}` only, "
                    f"not to {args.what}; leave it out"
                )
        return func(args)

    return run


def add_study_commands(subparsers: Any) -> None:
    from emobench.classify import DEFAULT_CLASSIFIER

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
        "discover",
        help="build artifacts: emotion directions and circuits (from SEV train), attribute "
        "neurons (from the human emotion-concept ratings)",
    )
    dc.add_argument("what", choices=["directions", "circuit", "attributes"])
    _add_model_args(dc)
    dc.add_argument("--out", required=True, help="output directory of the artifact")
    dc.add_argument("--batch_size", type=_at_least(1), default=16)
    dc.add_argument(
        "--limit_groups",
        type=_at_least(1),
        default=None,
        help="directions, circuit: only the first N (skeleton, valence) groups (for quick checks)",
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
        help="classifier plugin that judges the replies for --accepted_only (default "
        f"{DEFAULT_CLASSIFIER})",
    )
    dc.add_argument(
        "--probe_situations",
        type=_at_least(1),
        default=None,
        help="circuit: neutral situations for the sublayer-importance probe (default 24)",
    )
    dc.add_argument(
        "--permutations",
        type=_at_least(1),
        default=None,
        help="attributes: concept-label permutations of the Mantel test (default "
        "10,000; an attribute needs at least neurons / (q (permutations + 1)) "
        "neurons at the p-value floor for any discovery)",
    )
    dc.add_argument(
        "--fdr", type=_rate, default=None, help="attributes: Benjamini-Hochberg q (default 0.05)"
    )
    dc.set_defaults(func=_scoped("discover", commands.discover, DISCOVER_SCOPED))

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
        "causal validation of a circuit or attribute artifact: ablation, controls, plots",
        "emobench.analysis.circuit",
    )
    # One command, two analyses: --help shows both.
    an.description = f"{an.description}\n\n{_module_doc('emobench.analysis.attributes')}"
    an.add_argument("what", choices=["circuit", "attributes"])
    an.add_argument(
        "artifact", help="an artifact directory (emobench discover circuit / attributes)"
    )
    an.add_argument("--out", required=True, help="directory for analysis.json, summary.md, PNGs")
    _add_model_args(an)
    an.add_argument(
        "--groups",
        type=_at_least(1),
        default=None,
        help="circuit: train situations per emotion (default 8)",
    )
    an.add_argument("--seeds", type=_at_least(1), default=5, help="random controls per setting (5)")
    an.add_argument(
        "--generate",
        type=_at_least(0),
        default=None,
        help="circuit: also generate prompted replies for N situations per condition and classify "
        "them (default 0)",
    )
    an.add_argument("--batch_size", type=_at_least(1), default=16)
    an.add_argument(
        "--task",
        default=None,
        help="attributes: the emotion-inference task (default goemotions_inference_ekman)",
    )
    an.add_argument(
        "--limit",
        type=_at_least(1),
        default=None,
        help="attributes: docs of the task (default 140)",
    )
    an.add_argument(
        "--top",
        type=_at_least(1),
        default=None,
        help="attributes: neurons knocked out (default 100)",
    )
    an.add_argument(
        "--neurons",
        choices=["top", "discoveries"],
        default=None,
        help="attributes: knock out each attribute's top --top neurons by rho, discoveries or "
        "not, or exactly its discoveries (permutation test, the artifact's FDR), however many "
        "(default top)",
    )
    an.set_defaults(func=_scoped("analyze", commands.analyze, ANALYZE_SCOPED))

    bn = _documented(
        subparsers,
        "bench",
        "the main job: every installed controller on the full SEV test split, then the leaderboard",
        "emobench.mainjob",
    )
    bn.add_argument(
        "--output_path", default="runs/sev_emotion", help="runs, journals, leaderboard/"
    )
    bn.add_argument(
        "--controllers",
        default=None,
        help="comma-separated (default: every installed controller that runs unattended)",
    )
    bn.add_argument(
        "--model_args",
        dest="model_args_raw",
        nargs="+",
        default=None,
        metavar="<arg>",
        help="passed to every run, e.g. pretrained=<HF id or dir>",
    )
    bn.add_argument("--limit", type=int, default=None, help="docs per run (a partial job)")
    bn.add_argument("--batch_size", default=None)
    bn.add_argument("--sweep_items", type=int, default=12, help="train situations per sweep")
    bn.set_defaults(func=commands.bench)
