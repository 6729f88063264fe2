"""Build `ft-pair`'s card: `emobench train-classifier --head pair` (classify.pair).

Nothing is trained. The match thresholds are chosen by the single heads' rule (Youden's J per
target, classify.thresholds) on the mean of the members' out-of-fold probabilities (tuning.oof),
with the judge-rejected training replies, as scored by the members' final heads, as negatives for
their target. Before that, each member's own thresholds are chosen again from its file and must
equal its card's: that proves the file holds the probabilities the shipped head was tuned on.
The held-out judged replies are scored and reported only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from emobench import EMOTIONS, __version__
from emobench.classify import get_classifier
from emobench.classify.pair import MEMBERS, REBUILD, decision_sha256, member_hashes
from emobench.classify.thresholds import choose_thresholds
from emobench.classify.tuning import oof
from emobench.errors import DataError


def member_oof(clf: Any, path: Path | None = None) -> tuple[oof.OutOfFold, Path]:
    """A member's out-of-fold file (by default the one beside its packaged head), checked to be
    its head's."""
    from emobench.classify.tuned import default_head

    path = path or oof.oof_path(default_head(clf.base_key))
    rebuild = f"`emobench train-classifier --head ft --base {clf.base_key} --oof-only`"
    try:
        got = oof.load(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path} not found; recompute it with {rebuild}") from exc
    if got.meta["head_sha256"] != clf.meta["sha256"]:
        raise DataError(
            f"{path}: out-of-fold probabilities of head {got.meta['head_sha256'][:8]}, but "
            f"{clf.name}'s head is {clf.meta['sha256'][:8]}; recompute them with {rebuild}"
        )
    if tuple(got.labels) != tuple(clf.labels):
        raise DataError(
            f"{path}: labels {got.labels}, {clf.name} has {list(clf.labels)}; recompute it "
            f"with {rebuild}"
        )
    return got, path


def heldout(members: list[Any], thresholds: dict[str, float]) -> dict[str, Any]:
    from emobench.classify.train import (
        _forced_choice,
        _match_rate,
        expected_calibration_error,
        judged_dir,
        load_judged,
    )
    from emobench.data import file_sha256

    labels = tuple(members[0].labels)
    texts, targets, _ = load_judged(judged_dir() / "test_accepted.jsonl")
    started = time.perf_counter()
    probs = np.mean([m.predict_proba(texts) for m in members], axis=0)
    seconds = time.perf_counter() - started
    truth = np.array(targets)
    fc_probs, fc_pred = _forced_choice(probs, labels)
    r_text, r_y, _ = load_judged(judged_dir() / "test_rejected.jsonl")
    r_probs = np.mean([m.predict_proba(r_text) for m in members], axis=0)
    return {
        "file": "judged/test_accepted.jsonl",
        "n": len(texts),
        "sha256": file_sha256(judged_dir() / "test_accepted.jsonl"),
        "forced_choice_accuracy": round(float((fc_pred == truth).mean()), 4),
        "accuracy": round(float((np.array(labels)[probs.argmax(1)] == truth).mean()), 4),
        "forced_choice_ece": round(expected_calibration_error(fc_probs, fc_pred == truth), 4),
        "match_rate": _match_rate(probs, labels, targets, thresholds),
        "rejected": {
            "file": "judged/test_rejected.jsonl",
            "n": len(r_text),
            "read_as_target": round(float((np.array(labels)[r_probs.argmax(1)] == r_y).mean()), 4),
            "match_rate": _match_rate(r_probs, labels, r_y, thresholds),
        },
        "cost": {"ms_per_reply": round(1000 * seconds / len(texts), 2)},
    }


def out_of_fold_accuracy(probs: np.ndarray, got: oof.OutOfFold, seed: int) -> dict[str, Any]:
    """The mean's accuracy on the rows of the members' out-of-fold files, measured as a single
    head's card measures its CV (tuning.train.oof_measures). The rows' sources come from this
    emobench's training data, which must hold the very rows of the files."""
    from emobench.classify.tuning import data, train

    ex, _ = data.build(seed)
    rows = oof.scored_rows(ex)
    if oof.rows_sha256(ex, rows) != got.rows_sha256:
        raise DataError(
            f"{', '.join(MEMBERS)}: their out-of-fold files hold other rows than this "
            f"emobench's training data (seed {seed}); recompute them with `emobench "
            "train-classifier --head ft --base mpnet --oof-only` and `--base minilm`"
        )
    scored = ex.select(np.array(rows))
    source = np.array(scored.source)
    return {
        "folds": data.FOLDS,
        **train.oof_measures(probs, scored),
        "n": {
            "goemotions": int((source == "goemotions").sum()),
            "sev": int((source == "sev").sum()),
        },
    }


@dataclass
class Chosen:
    per_target: dict[str, dict[str, float]]
    mean_oof: np.ndarray
    first: oof.OutOfFold  # the first member's file: its rows and labels are the mean's
    files: list[dict[str, str]]
    n_rejected: int


def choose(members: list[Any], paths: list[Path | None] | None = None) -> Chosen:
    """The pair's thresholds from its members' out-of-fold files (`paths`, one per member, None
    for the one beside its packaged head), after checking that the files share their rows and
    that each gives its own head's thresholds back."""
    from emobench.classify.train import judged_dir, load_judged
    from emobench.data import file_sha256

    if paths is not None and len(paths) != len(members):
        raise ValueError(f"{len(paths)} out-of-fold files for {len(members)} members")

    r_text, r_y, _ = load_judged(judged_dir() / "train_rejected.jsonl")
    files: list[dict[str, str]] = []
    oofs: list[oof.OutOfFold] = []
    rejected: list[np.ndarray] = []
    for clf, given in zip(members, paths or [None] * len(members), strict=True):
        got, path = member_oof(clf, given)
        # The card names a packaged file by its place in the package, any other by its path.
        name = str(path) if given else f"heads/{path.name}"
        if oofs and got.rows_sha256 != oofs[0].rows_sha256:
            raise DataError(
                f"{name}: other rows or folds than {files[0]['file']}; the members must be "
                "cross-validated on one fold draw (the same data and seed)"
            )
        r_probs = clf.predict_proba(r_text)
        again = choose_thresholds(
            got.probs,
            clf.labels,
            got.truth,
            EMOTIONS,
            rejected=list(zip(r_probs, r_y, strict=True)),
        )
        again = {e: v["threshold"] for e, v in again.items()}
        if again != clf.meta["match"]["thresholds"]:
            raise DataError(
                f"{path}: the thresholds it gives ({again}) are not {clf.name}'s card's "
                f"({clf.meta['match']['thresholds']}); recompute it with `emobench "
                f"train-classifier --head ft --base {clf.base_key} --oof-only`"
            )
        oofs.append(got)
        rejected.append(r_probs)
        files.append({"file": name, "sha256": file_sha256(path)})
    mean_oof = np.mean([o.probs for o in oofs], axis=0)
    per_target = choose_thresholds(
        mean_oof,
        members[0].labels,
        oofs[0].truth,
        EMOTIONS,
        rejected=list(zip(np.mean(rejected, axis=0), r_y, strict=True)),
    )
    return Chosen(per_target, mean_oof, oofs[0], files, len(r_text))


def build_pair(out: Path) -> dict[str, Any]:
    members = [get_classifier(n) for n in MEMBERS]
    c = choose(members)
    chosen, truth = c.per_target, c.first.truth
    thresholds = {e: v["threshold"] for e, v in chosen.items()}
    card: dict[str, Any] = {
        "classifier": "ft-pair",
        "labels": list(members[0].labels),
        "rule": "the mean of the members' probabilities",
        "members": [
            {"name": m.name, "sha256": member_hashes([m])[m.name], "out_of_fold": f}
            for m, f in zip(members, c.files, strict=True)
        ],
        "match": {
            "rule": "the target's probability reaches the target's threshold",
            "thresholds": thresholds,
            "chosen_on": f"the mean of the members' out-of-fold probabilities ({len(truth)} "
            "judged/train_accepted.jsonl replies and single-label goemotions/dev.csv comments, "
            f"one fold draw), with judged/train_rejected.jsonl ({c.n_rejected} replies, the "
            "members' final heads) as negatives for their target",
            "by": "Youden's J (true-positive rate - false-positive rate) per target",
            "per_target": chosen,
            "members_reproduced": "each member's thresholds, chosen again from its file, equal "
            "its card's",
        },
        "cross_validation": out_of_fold_accuracy(c.mean_oof, c.first, members[0].meta["seed"]),
        "emobench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"EMOBENCH_SEV_DIR=../shared/sev {REBUILD}",
    }
    card["sha256"] = decision_sha256(card)
    card["sha256_of"] = "the members (names, head hashes, out-of-fold files), rule and thresholds"
    card["heldout"] = heldout(members, thresholds)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(card, indent=2) + "\n")
    return card
