"""Train a fine-tuned head: `emobench train-classifier --head ft [--base mpnet]`.

1. The frozen bottom layers run once over every training example (tuning.model.bottom_states).
2. 5-fold cross-validation (tuning.data's folds) trains the top layers and the head for up to
   HYPER["max_epochs"] epochs and keeps each epoch's out-of-fold probabilities. The number of
   epochs is the one with the best GoEmotions 7-label accuracy out of fold (single-label
   comments).
3. The match thresholds come from the same out-of-fold probabilities (SEV train replies and
   single-label GoEmotions comments), as for the frozen head; never from a test set.
4. The final head trains on every example; judged/test_accepted.jsonl and its degraded copies are
   scored with the saved artifact (float16 weights, what users load) and reported only.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from emobench import EMOTIONS
from emobench.classify import softmax
from emobench.classify.tuning.data import FOLDS, LABELS, Examples

log = logging.getLogger(__name__)

HYPER = {
    "tuned_layers": 4,
    "max_epochs": 3,
    "batch_size": 32,
    "lr_layers": 1e-4,
    "lr_head": 1e-3,
    "weight_decay": 0.01,
    "warmup_share": 0.06,
    "dropout": 0.1,
}


def _batches(rows: np.ndarray, lengths: np.ndarray, size: int, rng: random.Random) -> list:
    """Shuffled batches of similar-length rows (little padding, order still random)."""
    rows = list(rows)
    rng.shuffle(rows)
    out = []
    for start in range(0, len(rows), size * 50):
        chunk = sorted(rows[start : start + size * 50], key=lambda i: lengths[i])
        out += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def _pad(states: list[torch.Tensor], rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([states[i].shape[0] for i in rows])
    hidden = torch.zeros(len(rows), int(lengths.max()), states[rows[0]].shape[1])
    for j, i in enumerate(rows):
        hidden[j, : lengths[j]] = states[i]
    return hidden, lengths


@torch.inference_mode()
def predict(model: Any, states: list[torch.Tensor], rows: np.ndarray) -> np.ndarray:
    model.eval()
    lengths = np.array([states[i].shape[0] for i in rows])
    order = [int(rows[j]) for j in np.argsort(lengths)]
    probs = {}
    for start in range(0, len(order), 128):
        batch = order[start : start + 128]
        hidden, lens = _pad(states, batch)
        p = torch.softmax(model(hidden, lens), dim=-1).numpy()
        probs.update(zip(batch, p, strict=True))
    return np.stack([probs[int(i)] for i in rows])


def fit(
    base: Any,
    states: list[torch.Tensor],
    ex: Examples,
    rows: np.ndarray,
    seed: int,
    epochs: int,
    watch: np.ndarray | None = None,
    desc: str = "",
) -> tuple[Any, list[np.ndarray]]:
    """Train on `rows`; returns the model and, after each epoch, the probabilities of `watch`."""
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from emobench.classify.tuning.model import TunedEncoder

    torch.manual_seed(seed)
    model = TunedEncoder(copy.deepcopy(base), HYPER["tuned_layers"], LABELS, HYPER["dropout"])
    opt = torch.optim.AdamW(
        [
            {"params": model.top.parameters(), "lr": HYPER["lr_layers"]},
            {"params": model.head.parameters(), "lr": HYPER["lr_head"]},
        ],
        weight_decay=HYPER["weight_decay"],
    )
    steps = epochs * math.ceil(len(rows) / HYPER["batch_size"])
    sched = get_linear_schedule_with_warmup(opt, int(HYPER["warmup_share"] * steps), steps)
    lengths = np.array([s.shape[0] for s in states])
    targets = torch.from_numpy(ex.targets)
    rng = random.Random(seed)
    watched = []
    bar = tqdm(total=steps, desc=f"Training {desc}".strip(), unit="step")
    for _ in range(epochs):
        model.train()
        for batch in _batches(rows, lengths, HYPER["batch_size"], rng):
            hidden, lens = _pad(states, batch)
            logp = torch.log_softmax(model(hidden, lens), dim=-1)
            loss = -(targets[batch] * logp).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if watch is not None:
            watched.append(predict(model, states, watch))
    bar.close()
    # The last step's gradients would otherwise live as long as the model.
    model.zero_grad(set_to_none=True)
    return model.eval(), watched


def soup(models: Sequence[Any]) -> Any:
    """One model whose trained weights are the mean of `models`' (one recipe trained with other
    seeds): a model soup, at one model's cost at inference where an ensemble of k costs k.
    Whether it reads like the ensemble is what benchmarks/head_seeds.py --soup measures: the
    expectation is that fine-tuning moves the top layers little from their shared start, and the
    head is linear, so that the mean head on near-equal features averages the logits."""
    if not models:
        raise ValueError("a soup needs at least one model")
    states = [m.state_dict() for m in models]
    first = states[0]

    def same(m: Any, s: dict[str, torch.Tensor]) -> bool:
        return (
            (m.first, m.labels) == (models[0].first, models[0].labels)
            and s.keys() == first.keys()
            and all(s[k].shape == v.shape for k, v in first.items())
        )

    if bad := [i for i, (m, s) in enumerate(zip(models, states, strict=True)) if not same(m, s)]:
        raise ValueError(
            f"model {bad[0]} has other tuned layers, labels or weight shapes than model 0: "
            "not one recipe"
        )
    mean = {}
    for key, tensor in first.items():
        stack = torch.stack([s[key] for s in states])
        if tensor.is_floating_point():
            mean[key] = stack.mean(0)
        elif not bool((stack == tensor).all()):
            raise ValueError(f"{key}: differs between models and cannot be averaged")
        else:
            mean[key] = tensor
    out = copy.deepcopy(models[0])
    out.load_state_dict(mean)
    return out.eval()


def cross_validate(
    base: Any, states: list[torch.Tensor], ex: Examples, seed: int, max_epochs: int | None = None
) -> tuple[int, np.ndarray, dict[str, Any]]:
    """(chosen epochs, out-of-fold probabilities at that epoch for every row, the CV report)."""
    max_epochs = max_epochs or HYPER["max_epochs"]
    oof = np.zeros((max_epochs, len(ex.texts), len(LABELS)), dtype=np.float32)
    for k in range(FOLDS):
        train_rows = np.flatnonzero(ex.fold != k)
        held = np.flatnonzero(ex.fold == k)
        _, per_epoch = fit(
            base, states, ex, train_rows, seed, max_epochs, held, f"fold {k + 1}/{FOLDS}"
        )
        for e, probs in enumerate(per_epoch):
            oof[e, held] = probs
    report: dict[str, Any] = {"per_epoch": []}
    for e in range(max_epochs):
        report["per_epoch"].append({"epochs": e + 1, **oof_measures(oof[e], ex)})
    best = max(report["per_epoch"], key=lambda r: r["goemotions_7_label"])
    return best["epochs"], oof[best["epochs"] - 1], report


def oof_measures(probs: np.ndarray, ex: Examples) -> dict[str, float]:
    """Out-of-fold accuracies: GoEmotions single-label (7 labels), GoEmotions multi-label (the
    predicted label is one of the comment's), SEV replies and their unnamed copies (forced choice
    among the six emotions)."""
    pred = np.array(LABELS)[probs.argmax(1)]
    six = [LABELS.index(e) for e in EMOTIONS]
    forced = np.array(EMOTIONS)[probs[:, six].argmax(1)]
    src = np.array(ex.source)
    label = np.array([lab or "" for lab in ex.label])
    single = (src == "goemotions") & (label != "")
    multi = (src == "goemotions") & (label == "")
    multi_hit = [ex.targets[i, LABELS.index(pred[i])] > 0 for i in np.flatnonzero(multi)]

    def acc(sel: np.ndarray, guess: np.ndarray) -> float:
        return round(float((guess[sel] == label[sel]).mean()), 4)

    # A measure whose rows are absent is left out (the rows thresholds are chosen on have no
    # multi-label comments and no copies), not reported as NaN.
    out: dict[str, float] = {}
    if single.any():
        out["goemotions_7_label"] = acc(single, pred)
    if multi.any():
        out["goemotions_multi_label_hit"] = round(float(np.mean(multi_hit)), 4)
    for key, source in (
        ("sev_train_forced_choice", "sev"),
        ("sev_train_unnamed_forced_choice", "unnamed"),
    ):
        if (src == source).any():
            out[key] = acc(src == source, forced)
    return out


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 1)


def heldout_report(path: Any, seed: int) -> dict[str, Any]:
    """The saved artifact on judged/test_accepted.jsonl, its degraded copies and the rejected
    replies; plus the cost per reply on this machine."""
    from emobench.classify.augment import AUGMENTATIONS
    from emobench.classify.train import (
        _forced_choice,
        _match_rate,
        expected_calibration_error,
        judged_dir,
        load_judged,
    )
    from emobench.classify.tuning.model import TunedHead
    from emobench.data import file_sha256

    clf = TunedHead(path)
    src = judged_dir()
    t_text, t_y, _ = load_judged(src / "test_accepted.jsonl")
    truth = np.array(t_y)
    (logits, seconds) = timed(clf.logits, t_text, progress=True)
    probs = softmax(logits)
    fc_probs, fc_pred = _forced_choice(probs, LABELS)
    thresholds = clf.meta["match"]["thresholds"]

    rng = random.Random(seed + 1)
    degraded = {}
    for fn in AUGMENTATIONS:
        texts = [fn(t, rng) for t in t_text]
        p = softmax(clf.logits(texts))
        degraded[fn.__name__] = round(float((_forced_choice(p, LABELS)[1] == truth).mean()), 4)
    r_text, r_y, _ = load_judged(src / "test_rejected.jsonl")
    r_probs = softmax(clf.logits(r_text))
    return {
        "file": "judged/test_accepted.jsonl",
        "n": len(t_text),
        "sha256": file_sha256(src / "test_accepted.jsonl"),
        "forced_choice_accuracy": round(float((fc_pred == truth).mean()), 4),
        "accuracy": round(float((np.array(LABELS)[probs.argmax(1)] == truth).mean()), 4),
        "forced_choice_ece": round(expected_calibration_error(fc_probs, fc_pred == truth), 4),
        "match_rate": _match_rate(probs, LABELS, t_y, thresholds),
        "degraded_forced_choice_accuracy": degraded,
        "rejected": {
            "file": "judged/test_rejected.jsonl",
            "n": len(r_text),
            "read_as_target": round(float((np.array(LABELS)[r_probs.argmax(1)] == r_y).mean()), 4),
            "match_rate": _match_rate(r_probs, LABELS, r_y, thresholds),
        },
        "cost": {
            "ms_per_reply": round(1000 * seconds / len(t_text), 2),
            "measured_on": f"{len(t_text)} replies, batch 64, {torch.get_num_threads()} CPU "
            "threads, float32",
        },
    }
