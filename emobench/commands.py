"""The emobench subcommands other than a run: each takes the parsed arguments of its parser
(emobench.cli builds them) and prints or writes its result."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from pathlib import Path
from typing import Any

from emobench import atomic
from emobench.errors import EmoBenchError


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options among `names` given on the command line (parsed with default None): the
    function called keeps its own default for the others."""
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def tasks_path(args: argparse.Namespace) -> None:

    from emobench.run import task_dir

    if args.task is None:
        print(task_dir())
        return
    found = sorted(Path(task_dir()).rglob(f"{args.task}.yaml"))
    if not found:
        names = sorted(p.stem for p in Path(task_dir()).rglob("*.yaml"))
        raise EmoBenchError(f"no emobench task {args.task!r}; emobench's tasks: {', '.join(names)}")
    print(found[0])


def list_plugins(args: argparse.Namespace) -> None:
    from tabulate import tabulate

    from emobench.registry import CLASSIFIERS, CONTROLLERS, installed

    group = {"controllers": CONTROLLERS, "classifiers": CLASSIFIERS}[args.what]
    rows = [[p.name, p.target, p.distribution] for p in installed(group).values()]
    print(tabulate(rows, headers=[args.what[:-1], "entry point", "package"]))


def train_classifier(args: argparse.Namespace) -> None:
    from emobench.classify.minilm import head_path

    given = {
        f"--base {args.base}": args.base is not None,
        "--asides": args.asides,
        "--oof-only": args.oof_only,
        f"--seed {args.seed}": args.seed is not None,
    }
    given = [flag for flag, on in given.items() if on]
    if args.head == "pair" and given:
        raise EmoBenchError(
            f"--head pair takes no {' '.join(given)}: ft-pair trains nothing; it combines the "
            "packaged mpnet-ft and minilm-ft heads"
        )
    if args.head in ("emo7", "sev6"):
        ft_only = [f for f in given if not f.startswith(("--seed", "--base minilm"))]
        if ft_only:
            raise EmoBenchError(
                f"{' '.join(ft_only)} needs --head ft: the {args.head} head is a logistic head "
                "on the frozen MiniLM encoder"
            )
    if args.oof_only:
        redo = [f for f in given if f.startswith(("--asides", "--seed", "--base"))]
        if redo and args.out is not None:
            raise EmoBenchError(
                f"--oof-only with --out takes no {' '.join(redo)}: the cross-validation runs "
                "again as the head's card says (its base, seed and asides)"
            )
        redo = [f for f in redo if not f.startswith("--base")]
        if redo:
            raise EmoBenchError(
                f"--oof-only takes no {' '.join(redo)}: the cross-validation runs again as the "
                "head's card says (its seed, and asides if it had them)"
            )
    base = args.base or "minilm"
    seed = 0 if args.seed is None else args.seed
    if args.head == "pair":
        from emobench.classify.pair import default_card
        from emobench.classify.tuning.pair import build_pair

        out = Path(args.out) if args.out else default_card()
        if out.suffix != ".json":
            raise EmoBenchError(f"--out {out}: ft-pair's card is JSON; give a path ending in .json")
        card = build_pair(out)
        print(f"wrote {out}")
        print(json.dumps({k: card[k] for k in ("members", "match", "heldout")}, indent=2))
        return
    if args.head == "ft":
        from emobench.classify.tuning.bases import get
        from emobench.classify.tuning.head import build_head
        from emobench.classify.tuning.oof import oof_path

        out = Path(args.out) if args.out else head_path(get(base).head_name)
        if args.oof_only:
            from emobench.classify.tuning.oof import recompute

            print(json.dumps(recompute(out), indent=2))
            return
        meta = build_head(out, seed=seed, base_key=base, with_asides=args.asides)
        beside = [out.with_suffix(".json").name, out.with_suffix(".md").name]
        print(f"wrote {out}, {', '.join(beside)} and {oof_path(out).name}")
        print(json.dumps({k: meta[k] for k in ("hyperparameters", "heldout")}, indent=2))
        return
    from emobench.classify.train import train

    out = Path(args.out) if args.out else head_path(f"minilm_{args.head}")
    meta = train(out, head=args.head, seed=seed)
    print(f"wrote {out} and {out.with_suffix('.json').name}")
    print(json.dumps({k: meta[k] for k in ("selection", "heldout", "goemotions")}, indent=2))


def leaderboard(args: argparse.Namespace) -> None:
    from emobench.leaderboard.collect import read_row
    from emobench.leaderboard.frontier import load_sweeps
    from emobench.leaderboard.render import collect, render, write_all, write_one

    # Sweeps are read first: a wrong --sweeps path fails before anything is written.
    sweeps = load_sweeps(args.sweeps)
    rows = collect(args.paths)
    if not rows:
        # A re-scored file saved under another name is the usual reason a folder ranks nothing.
        misnamed = [
            p
            for d in map(Path, args.paths)
            if d.is_dir()
            for p in sorted(d.rglob("*.json"))
            if not p.name.startswith("results_") and isinstance(read_row(p), dict)
        ]
        hint = (
            f"; {misnamed[0]} holds results but is not named results_*.json, the only files a "
            "folder is searched for: rename it, or name it on the command line"
            if misnamed
            else "; run `emobench --tasks sev_emotion --output_path DIR` first"
        )
        raise EmoBenchError(f"no emobench results under {', '.join(args.paths)}{hint}")
    table = write_all(rows, args.out, sweeps)
    text = table if args.format == "table" else render(rows, args.format, sweeps)
    if args.output:
        write_one(text, args.output)
        print(f"wrote {args.output} ({args.format})")
    else:
        print(text)


def publish(args: argparse.Namespace) -> None:
    from emobench.leaderboard.publish import publish as publish_runs

    written = publish_runs(args.paths, args.to)
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{args.to}: already holds these runs; nothing written")


def classify(args: argparse.Namespace) -> None:
    from emobench.classify import get_classifier
    from emobench.jsonl import read_jsonl
    from emobench.scoring.rescore import texts_of

    rows = list(read_jsonl(args.file))
    texts = texts_of(rows, args.field)
    targets = texts_of(rows, args.target_field) if args.target_field else None
    # Each output line is its input line with the verdict added, so ids and gold labels travel
    # with it; when a field would be overwritten (a gold `label`), each input line goes whole
    # under "input" instead, for every line of the file alike.
    written = ("label", "probs", "match") if targets is not None else ("label", "probs")
    records = [record for _, record in rows]
    taken = sorted({f for record in records for f in written if f in record})
    if taken:
        print(
            f"note: {args.file} has a field named {', '.join(taken)}, which emobench classify "
            'writes: each output line holds its input line under "input"',
            file=sys.stderr,
        )
    clf = get_classifier(args.classifier)
    if targets is not None:
        unknown = sorted(set(targets) - set(clf.labels))
        if unknown:
            raise EmoBenchError(
                f"{args.file}: --target_field {args.target_field!r} names {', '.join(unknown)}, "
                f"which classifier {args.classifier!r} cannot name (its labels: "
                f"{', '.join(clf.labels)})"
            )
    for record, scored in zip(records, clf.classify(texts, targets), strict=True):
        line = {"input": record, **scored} if taken else record | scored
        print(json.dumps(line, ensure_ascii=False))


def discover(args: argparse.Namespace) -> None:
    from emobench.classify import DEFAULT_CLASSIFIER
    from emobench.loading import load_model

    if args.classifier is not None and not args.accepted_only:
        raise EmoBenchError("--classifier only applies with --accepted_only")
    if args.what != "directions" and args.accepted_only:
        raise EmoBenchError("--accepted_only applies to `discover directions` only")
    model, tokenizer, name = load_model(dict(args.model_args or {}))
    if args.what == "attributes":
        from emobench.discovery.attributes import counts_table, discover_attributes

        out = discover_attributes(
            model,
            tokenizer,
            name,
            args.out,
            batch_size=args.batch_size,
            **_given(args, "permutations", "fdr"),
        )
    elif args.what == "circuit":
        from emobench.discovery.circuit import discover_circuit

        out = discover_circuit(
            model,
            tokenizer,
            name,
            args.out,
            batch_size=args.batch_size,
            **_given(args, "limit_groups", "probe_situations"),
        )
    else:
        from emobench.discovery.directions import discover_directions

        out = discover_directions(
            model,
            tokenizer,
            name,
            args.out,
            batch_size=args.batch_size,
            accepted_only=args.accepted_only,
            **_given(args, "limit_groups"),
            classifier=args.classifier or DEFAULT_CLASSIFIER,
        )
    if args.what == "attributes":
        print(counts_table(out / "meta.json"))
    print(f"wrote {out / 'tensors.safetensors'} and {out / 'meta.json'}")


def bench(args: argparse.Namespace) -> None:
    from emobench.mainjob import run_main_job

    run_main_job(
        args.output_path,
        controllers=[c for c in (args.controllers or "").split(",") if c] or None,
        model_args=args.model_args_raw,
        limit=args.limit,
        batch_size=args.batch_size,
        sweep_items=args.sweep_items,
    )


def sweep(args: argparse.Namespace) -> None:
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


def analyze(args: argparse.Namespace) -> None:
    from emobench import artifacts
    from emobench.analysis.circuit import analyze_circuit
    from emobench.loading import load_model

    if args.what == "attributes":
        from emobench.analysis.attributes import analyze_attributes

        if args.neurons == "discoveries" and args.top is not None:
            raise EmoBenchError(
                "--top chooses how many of the top neurons; --neurons discoveries knocks out "
                "every discovery, however many: give one of them"
            )
        from emobench.model import EmoBenchLM

        meta = artifacts.read_meta(args.artifact, "emotion-attributes")
        model_args = {"pretrained": meta["model"]["name"], **(args.model_args or {})}
        lm = EmoBenchLM(**model_args, batch_size=args.batch_size, measure_fluency=False)
        analyze_attributes(
            lm,
            args.artifact,
            args.out,
            meta,
            seeds=args.seeds,
            **_given(args, "task", "limit", "top", "neurons"),
        )
        print((Path(args.out) / "summary.md").read_text())
        return

    meta = artifacts.read_meta(args.artifact, "emotion-circuit")
    model_args = {"pretrained": meta["model"]["name"], **(args.model_args or {})}
    model, tokenizer, _ = load_model(model_args)
    analyze_circuit(
        model,
        tokenizer,
        args.artifact,
        args.out,
        seeds=args.seeds,
        batch_size=args.batch_size,
        **_given(args, "groups", "generate"),
    )
    print((Path(args.out) / "summary.md").read_text())


def _write_json(path: str, obj: Any) -> None:
    atomic.write_text(path, json.dumps(obj, indent=2) + "\n")


def _output_file(flag: str, path: str | None, example: str) -> None:
    """Refuse a directory where a file is written, before minutes of scoring: a trailing slash
    would otherwise become a file named like the directory."""
    if path and (path.endswith(("/", os.sep)) or Path(path).is_dir()):
        what = "a directory" if Path(path).is_dir() else "ends in /, a directory's name"
        raise EmoBenchError(
            f"{flag} {path}: {what}; {flag} names the file to write, e.g. {Path(path) / example}"
        )


def _not_a_run(path: str | None, samples: str, classifier: str, flag: str = "--results") -> None:
    """Refuse to overwrite a run's own results file (a re-scored one, or any other file, may be
    replaced): it is the record of what ran and of the verdicts of the run's classifier."""
    from emobench.record import read_record
    from emobench.scoring.rescore import run_stamp

    if not path or not Path(path).is_file():
        return
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return
    is_results = isinstance(data, dict) and isinstance(data.get("results"), dict)
    if is_results and not (read_record(data) or {}).get("rescored_from"):
        kind = "results" if flag == "--results" else "scores"
        example = Path(path).with_name(f"{kind}_{run_stamp(samples)}_{classifier}.json")
        raise EmoBenchError(
            f"{flag} {path}: is a run's own results file, which would be lost; name a new "
            f"file, e.g. {flag} {example}"
        )


def score(args: argparse.Namespace) -> None:
    from emobench.classify import get_classifier
    from emobench.report import score_table
    from emobench.scoring.gate import load_gate
    from emobench.scoring.rescore import as_results, score_samples

    if not Path(args.samples).is_file():
        what = "is a directory" if Path(args.samples).is_dir() else "no such file"
        raise EmoBenchError(
            f"{args.samples}: {what}; pass a run's samples log, "
            "<output_path>/<model>/samples_sev_emotion_<date>.jsonl (written with --log_samples)"
        )
    _output_file("--out", args.out, "scores.json")
    _output_file("--results", args.results, f"results_{args.classifier}.json")
    _not_a_run(args.out, args.samples, args.classifier, flag="--out")
    _not_a_run(args.results, args.samples, args.classifier)
    if args.results and not fnmatch.fnmatch(Path(args.results).name, "results_*.json"):
        print(
            f"note: --results {args.results}: `emobench leaderboard DIR` finds files named "
            "results_*.json; this one is ranked only when named on its command line",
            file=sys.stderr,
        )
    gate = load_gate(args.gate) if args.gate else None
    result = score_samples(
        args.samples, get_classifier(args.classifier), fluency=args.fluency, gate=gate
    )
    if args.out:
        _write_json(args.out, result)
    if args.results:
        _write_json(args.results, as_results(result, args.samples))
    print(score_table(result, source=args.samples))


def calibrate_gate(args: argparse.Namespace) -> None:
    from emobench.loading import load_model
    from emobench.scoring.gate import calibrate_on_reference, write_gate

    model, tokenizer, name = load_model(dict(args.model_args or {}))
    gate = calibrate_on_reference(model, tokenizer, name, n=args.n, batch_size=args.batch_size)
    path = write_gate(gate, args.out)
    print(json.dumps(gate.to_json(), indent=2))
    print(f"wrote {path}")
