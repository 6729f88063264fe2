"""Out-of-fold probabilities of a fine-tuned head's cross-validation, kept beside the head.

A head's match thresholds are chosen on them (tuning.head). Kept in a file, they let a classifier
made of several heads (classify.pair) choose its own thresholds by the same rule without training
anything again. Only the rows thresholds are chosen on are kept: the judged SEV training replies
and the single-label GoEmotions comments, each with its label and fold.

`emobench train-classifier --head ft --base B --oof-only` recomputes the file for a packaged head:
the same data and seed give the same folds and the same fold models, and the file is written only
if the cross-validation report equals the one on the head's card (otherwise the head was built
from other data or code, and its out-of-fold probabilities cannot be had without rebuilding it).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from emobench.classify.tuning.data import LABELS, Examples
from emobench.errors import DataError

SUFFIX = ".oof.safetensors"


def oof_path(head: Path) -> Path:
    """heads/mpnet_ft.safetensors -> heads/mpnet_ft.oof.safetensors"""
    return head.with_name(head.name.removesuffix(".safetensors") + SUFFIX)


def scored_rows(ex: Examples) -> list[int]:
    """Rows thresholds are chosen on: SEV replies and single-label GoEmotions comments."""
    return [
        i
        for i, (s, lab) in enumerate(zip(ex.source, ex.label, strict=True))
        if s in ("sev", "goemotions") and lab is not None
    ]


def rows_sha256(ex: Examples, rows: list[int]) -> str:
    """One hash over the rows' texts, labels and folds: two files agree on it only if they hold
    the same rows in the same order under the same fold draw."""
    digest = hashlib.sha256()
    for i in rows:
        digest.update(f"{ex.fold[i]}\t{ex.label[i]}\t{ex.texts[i]}\n".encode())
    return digest.hexdigest()


@dataclass
class OutOfFold:
    probs: np.ndarray  # (n, len(labels)) float32
    truth: list[str]
    labels: list[str]
    rows_sha256: str
    meta: dict[str, Any]


def save(path: Path, probs: np.ndarray, ex: Examples, head_sha256: str, cv: dict) -> Path:
    """Write the scored rows' out-of-fold probabilities (float32: thresholds are chosen on a
    0.01 grid and must come out the same when read back)."""
    rows = scored_rows(ex)
    meta = {
        "labels": json.dumps(list(LABELS)),
        "truth": json.dumps([ex.label[i] for i in rows]),
        "rows_sha256": rows_sha256(ex, rows),
        "head_sha256": head_sha256,
        "selection": json.dumps(cv),
    }
    tensors = {
        "probs": torch.from_numpy(np.ascontiguousarray(probs[rows], dtype=np.float32)),
        "fold": torch.from_numpy(ex.fold[rows].astype(np.int8)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def load(path: Path) -> OutOfFold:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a head's out-of-fold probabilities; recompute them with "
            "`emobench train-classifier --head ft --base <base> --oof-only`"
        )
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        missing = {"labels", "truth", "rows_sha256", "head_sha256"} - set(meta)
        if missing or "probs" not in f.keys():  # noqa: SIM118 (safe_open has no __contains__)
            raise DataError(
                f"{path}: not an out-of-fold file (lacks {', '.join(sorted(missing)) or 'probs'})"
            )
        probs = f.get_tensor("probs").numpy()
    truth, labels = json.loads(meta["truth"]), json.loads(meta["labels"])
    if probs.shape != (len(truth), len(labels)):
        raise DataError(
            f"{path}: probabilities of shape {tuple(probs.shape)}, but {len(truth)} rows of "
            f"{len(labels)} labels; recompute it with `emobench train-classifier --head ft "
            "--base <base> --oof-only`"
        )
    return OutOfFold(
        probs,
        truth,
        labels,
        meta["rows_sha256"],
        meta,
    )


def _refuse_other_inputs(head: Path, card_path: Path, card: dict[str, Any], spec: Any) -> None:
    """Before a cross-validation of up to an hour: the head beside the card, the base weights and
    the data files must be the ones the card names (the written replies are checked by the
    report itself: their hash now also covers the aside sentences, which older cards predate)."""
    from emobench.classify.goemotions import default_path
    from emobench.classify.train import judged_dir
    from emobench.classify.tuning import train
    from emobench.data import file_sha256

    rebuild = f"rebuild it with `{card['command']}`, which writes its out-of-fold file too"
    if not head.is_file():
        raise FileNotFoundError(f"{head} not found: the head of the card {card_path}")
    if file_sha256(head) != card["sha256"]:
        raise DataError(f"{head}: not the head its card {card_path.name} names; {rebuild}")
    trained_on = {t["file"]: t.get("sha256") for t in card.get("trained_on", [])}
    named = {
        spec.path() / "model.safetensors": (card.get("base") or {}).get("sha256"),
        judged_dir() / "train_accepted.jsonl": trained_on.get("judged/train_accepted.jsonl"),
        default_path(): trained_on.get("goemotions/dev.csv"),
    }
    for path, want in named.items():
        if want and file_sha256(path) != want:
            raise DataError(f"{card_path}: trained on another {path} than the one here; {rebuild}")
    hyper = card["hyperparameters"]
    differ = {k: (v, hyper.get(k)) for k, v in train.HYPER.items() if k != "max_epochs"}
    differ = {k: v for k, v in differ.items() if v[0] != v[1]}
    if differ:
        raise DataError(
            f"{card_path}: built with other hyperparameters than this emobench's "
            f"(ours, the card's: {differ}); {rebuild}"
        )


def recompute(head: Path) -> dict[str, Any]:
    """Run a packaged head's cross-validation again (its card's base, seed and epochs) and write
    its out-of-fold file beside it; refuses if the report differs from the card's."""
    from emobench.classify.tuning import bases, data, model, train

    card_path = head.with_suffix(".json")
    if not card_path.is_file():
        raise FileNotFoundError(f"{card_path} not found: the card of the head {head}")
    card = json.loads(card_path.read_text())
    with_asides = "--asides" in card.get("command", "")
    seed = card["seed"]
    # Cards from before there was a choice of base name none: they were all MiniLM.
    spec = bases.get((card.get("base") or {}).get("name", "minilm"))
    _refuse_other_inputs(head, card_path, card, spec)
    hyper = card["hyperparameters"]
    max_epochs = hyper["max_epochs"]
    started = time.perf_counter()
    torch.manual_seed(seed)
    ex, _ = data.build(seed, with_asides=with_asides)
    tokenizer, base = model.load_base(spec.key)
    first = len(base.encoder.layer) - train.HYPER["tuned_layers"]
    states = model.bottom_states(tokenizer, base, first, ex.texts)
    epochs, oof, cv = train.cross_validate(base, states, ex, seed, max_epochs)
    want = card["selection"]["per_epoch"]
    if cv["per_epoch"] != want:
        raise DataError(
            f"{card_path}: cross-validation gave {cv['per_epoch']}, the card says {want}; the "
            f"head was built from other data or code, so rebuild it (`{card['command']}`), "
            "which writes its out-of-fold file too"
        )
    out = save(oof_path(head), oof, ex, card["sha256"], {"epochs": epochs, **cv})
    return {"file": str(out), "epochs": epochs, "seconds": round(time.perf_counter() - started, 1)}
