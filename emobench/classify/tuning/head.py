"""Build the shipped fine-tuned head and its training card (JSON + Markdown beside the weights)."""

from __future__ import annotations

import json
import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emobench import EMOTIONS, __version__
from emobench.classify.tuning import bases, data, model, oof, train
from emobench.classify.tuning.written import written_sha256

log = logging.getLogger(__name__)

COMMAND = "EMOBENCH_SEV_DIR=../shared/sev emobench train-classifier --head ft"

# A third CV epoch on the 12-layer mpnet would cost about half an hour more on a 2-core CPU; two
# were its best in the seed study (benchmarks/head_seeds.py) and MiniLM's CV chose two of three.
MAX_EPOCHS = {"mpnet": 2}


def build_head(
    out: Path, seed: int = 0, base_key: str = "minilm", with_asides: bool = False
) -> dict[str, Any]:
    from emobench.classify.goemotions import default_path
    from emobench.classify.thresholds import choose_thresholds
    from emobench.classify.train import judged_dir, load_judged
    from emobench.data import file_sha256

    torch.manual_seed(seed)
    started = time.perf_counter()
    spec = bases.get(base_key)
    max_epochs = MAX_EPOCHS.get(spec.key, train.HYPER["max_epochs"])
    ex, counts = data.build(seed, with_asides=with_asides)
    tokenizer, base = model.load_base(spec.key)
    first = len(base.encoder.layer) - train.HYPER["tuned_layers"]
    states, t_states = train.timed(model.bottom_states, tokenizer, base, first, ex.texts)
    (epochs, oof_probs, cv), t_cv = train.timed(
        train.cross_validate, base, states, ex, seed, max_epochs
    )
    log.info("cross-validation chose %d epochs: %s", epochs, cv["per_epoch"][epochs - 1])

    # Thresholds: out-of-fold SEV replies and single-label comments; the rejected training
    # replies (never trained on) are negatives for their own target.
    scored = oof.scored_rows(ex)
    (final, _), t_final = train.timed(
        train.fit, base, states, ex, np.arange(len(ex.texts)), seed, epochs, None, "final"
    )
    r_text, r_y, _ = load_judged(judged_dir() / "train_rejected.jsonl")
    r_states = model.bottom_states(tokenizer, base, first, r_text)
    r_probs = train.predict(final, r_states, np.arange(len(r_text)))
    chosen = choose_thresholds(
        oof_probs[scored],
        data.LABELS,
        [ex.label[i] for i in scored],
        EMOTIONS,
        rejected=list(zip(r_probs, r_y, strict=True)),
    )
    train_path, g_path = judged_dir() / "train_accepted.jsonl", default_path()
    card: dict[str, Any] = {
        "classifier": spec.classifier,
        "labels": list(data.LABELS),
        "encoder": f"{spec.hf_id} ({', '.join(spec.packages)}): layers "
        f"0-{first - 1} frozen, layers {first}-{len(base.encoder.layer) - 1} fine-tuned",
        "head": "linear (softmax) on the mean-pooled last layer",
        "base": {
            "name": spec.key,
            "file": "model.safetensors",
            "sha256": file_sha256(spec.path() / "model.safetensors"),
        },
        "weights": "the fine-tuned layers and the head, float16 on disk, float32 in use",
        "seed": seed,
        "hyperparameters": {
            **train.HYPER,
            "max_epochs": max_epochs,
            "epochs": epochs,
            "max_tokens": model.MAX_TOKENS,
        },
        "objective": "cross-entropy against soft targets (a GoEmotions comment with several "
        "labels spreads its target over their Ekman classes)",
        "trained_on": [
            {
                "file": "judged/train_accepted.jsonl",
                "n": counts.get("sev", 0),
                "sha256": file_sha256(train_path),
            },
            {
                "file": "goemotions/dev.csv",
                "n": counts.get("goemotions", 0),
                "sha256": file_sha256(g_path),
                "labels": "27 + neutral mapped to Ekman + neutral",
            },
            {
                "file": "degraded copies of judged/train_accepted.jsonl",
                "n": {
                    k: counts.get(k, 0)
                    for k in ("all_caps", "cut_off", "repeated_words", "hyphen_chain")
                },
                "share": data.DEGRADED_SHARE,
            },
            {
                "file": "unnamed copies of judged/train_accepted.jsonl (the words naming the "
                "emotion removed)",
                "n": counts.get("unnamed", 0),
            },
            {
                "file": "emobench/classify/tuning/written/*.json, composed (hand-written replies "
                "that show an emotion without naming it)",
                "n": counts.get("written", 0),
                "sha256": written_sha256(),
            },
        ],
        "selection": {
            "by": f"{data.FOLDS}-fold CV (SEV grouped by skeleton, GoEmotions stratified, written "
            "replies grouped by situation); the "
            "epoch count with the best GoEmotions 7-label accuracy out of fold",
            **cv,
        },
        "match": {
            "rule": "the target's probability reaches the target's threshold",
            "thresholds": {e: v["threshold"] for e, v in chosen.items()},
            "chosen_on": "out-of-fold probabilities of judged/train_accepted.jsonl and the "
            "single-label goemotions/dev.csv comments (the CV above), with "
            f"judged/train_rejected.jsonl ({len(r_text)} replies) as negatives for their target",
            "by": "Youden's J (true-positive rate - false-positive rate) per target",
            "per_target": chosen,
        },
        "training_seconds": {
            "frozen_layers": t_states,
            "cross_validation": t_cv,
            "final": t_final,
        },
        "machine": f"{platform.machine()}, {torch.get_num_threads()} CPU threads, "
        f"torch {torch.__version__}",
        "emobench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"{COMMAND} --base {spec.key}" + (" --asides" if with_asides else ""),
    }
    if "aside" in counts:
        card["trained_on"].append(
            {
                "file": "aside copies of the written replies (a sentence naming another emotion in "
                "passing, emobench/classify/tuning/written/asides.json, added before or after)",
                "n": counts["aside"],
                "target": f"{1 - data.ASIDE_WEIGHT:g} the reply's emotion, "
                f"{data.ASIDE_WEIGHT:g} the named one",
                "share": data.ASIDE_SHARE,
            }
        )
    digest = model.save(final, out, card)
    oof.save(oof.oof_path(out), oof_probs, ex, digest, {"epochs": epochs, **cv})
    card = json.loads(out.with_suffix(".json").read_text())
    card["heldout"] = train.heldout_report(out, seed)
    card["training_seconds"]["total"] = round(time.perf_counter() - started, 1)
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(card))
    return card


def markdown(card: dict[str, Any]) -> str:
    """The training card as a person reads it."""
    h, cv = card["heldout"], card["selection"]
    chosen = cv["per_epoch"][card["hyperparameters"]["epochs"] - 1]
    lines = [
        f"# Training card: `{card.get('classifier', 'minilm-ft')}`",
        "",
        f"- Encoder: {card['encoder']}; base weights sha256 `{card['base']['sha256'][:16]}`.",
        f"- Head: {card['head']}. Weights: {card['weights']}; sha256 `{card['sha256'][:16]}`.",
        f"- Objective: {card['objective']}.",
        f"- Seed {card['seed']}; hyperparameters: "
        + ", ".join(f"{k} {v}" for k, v in card["hyperparameters"].items())
        + ".",
        f"- Built with `{card['command']}` on {card['created'][:10]} ({card['machine']}).",
        "- CPU time (wall seconds): "
        + ", ".join(f"{k} {v}" for k, v in card["training_seconds"].items())
        + ".",
        "",
        "## Data",
        "",
        *[f"- {t['file']}: n = {t['n']}" for t in card["trained_on"]],
        "",
        "## Cross-validation (out of fold)",
        "",
        f"Chosen by {cv['by']}.",
        "",
        "| epochs | GoEmotions 7-label | GoEmotions multi-label hit | SEV train forced choice "
        "| SEV train unnamed |",
        "|---:|---:|---:|---:|---:|",
        *[
            f"| {r['epochs']} | {100 * r['goemotions_7_label']:.2f} | "
            f"{100 * r['goemotions_multi_label_hit']:.2f} | "
            f"{100 * r['sev_train_forced_choice']:.2f} | "
            f"{100 * r['sev_train_unnamed_forced_choice']:.2f} |"
            for r in cv["per_epoch"]
        ],
        "",
        f"Chosen: {chosen['epochs']} epochs.",
        "",
        "## Held out (judged/test_accepted.jsonl, never trained on)",
        "",
        f"- forced choice {100 * h['forced_choice_accuracy']:.2f} %, 7-label accuracy "
        f"{100 * h['accuracy']:.2f} %, ECE {h['forced_choice_ece']:.4f}, "
        f"match rate {100 * h['match_rate']:.2f} %",
        "- degraded copies, forced choice: "
        + ", ".join(
            f"{k} {100 * v:.2f} %" for k, v in h["degraded_forced_choice_accuracy"].items()
        ),
        f"- rejected replies ({h['rejected']['n']}): read as target "
        f"{100 * h['rejected']['read_as_target']:.1f} %, "
        f"match {100 * h['rejected']['match_rate']:.1f} %",
        f"- cost: {h['cost']['ms_per_reply']} ms per reply ({h['cost']['measured_on']})",
        "",
        "## Match thresholds",
        "",
        "| target | threshold | Youden J |",
        "|---|---:|---:|",
        *[
            f"| {e} | {v['threshold']:.2f} | {v['youden_j']:.3f} |"
            for e, v in card["match"]["per_target"].items()
        ],
        "",
    ]
    return "\n".join(lines)
