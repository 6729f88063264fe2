"""`emobench discover directions`: context-agnostic emotion directions (METHOD.md).

Runs the prompting prompts of the SEV *train* split (never the test split), reads two residual
points of every block at the last prompt token (after attention, after the block), and per
layer computes: c_{g,e} = h_{g,e} - mean_e' h_{g,e'} within each (skeleton, valence) group,
mu_e = mean_g c_{g,e}, v_e = normalize(mu_e - mean_e' mu_e').

By default every group is used. With `accepted_only` (CLI `--accepted_only`) discovery first
follows the reference's filter: it generates the prompting controller's reply for every train doc
(greedy, at most 100 new tokens, as the sev_emotion task does), classifies the replies with the
shared classifier, and keeps only the complete groups, those whose six replies are all classified
as their target emotion (448 of 480 upstream, with gpt-4o-mini as the judge). The directions are
then computed on those groups only, so they contrast prompts the model demonstrably follows. A
weak model (such as the embedded SmolLM2-135M) may pass few groups or none; with none, discovery
stops with an error rather than write an empty artifact.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from emobench import EMOTIONS, artifacts
from emobench.chat import base_messages, render
from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.controller import create_controller
from emobench.data import file_sha256, load_docs, resolve_split
from emobench.discovery.activations import POINTS, capture_last_token, encode, prepare
from emobench.errors import EmoBenchError
from emobench.hooks import hook_points

log = logging.getLogger(__name__)

# The sev_emotion task's generation settings (tasks/sev_emotion/sev_emotion.yaml): greedy, at
# most 100 new tokens, stopping at the end of the turn.
MAX_NEW_TOKENS = 100


def directions(acts: torch.Tensor) -> torch.Tensor:
    """(groups*6, L, d) activations, six emotions per group in EMOTIONS order -> (6, L, d)."""
    n, layers, hidden = acts.shape
    grouped = acts.view(n // len(EMOTIONS), len(EMOTIONS), layers, hidden)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    mu = centred.mean(dim=0)
    v = mu - mu.mean(dim=0, keepdim=True)
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def prompted_replies(
    model: torch.nn.Module,
    tokenizer: Any,
    docs: list[dict[str, Any]],
    batch_size: int,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> list[str]:
    """The prompting controller's greedy reply to each doc, as `emobench run --controller prompt`
    would generate it (same chat, stop at the end of the turn or a plain-format stop string)."""
    prompter = create_controller("prompt")
    rendered = [render(tokenizer, prompter.messages(d, base_messages(d))) for d in docs]
    prompts = [text for text, _ in rendered]
    stops = sorted({s for _, extra in rendered for s in extra})
    prepare(tokenizer)
    eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        eos |= set(configured if isinstance(configured, list) else [configured])
    settings: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": sorted(eos) or None,
        **prompter.generation_kwargs(),
    }
    if stops:
        settings.update(stop_strings=stops, tokenizer=tokenizer)
    # Longest prompts first, as lm-eval batches them: less padding, and an out-of-memory shows up
    # in the first batch rather than the last.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    replies: list[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in tqdm(
            range(0, len(order), batch_size), desc="Generating prompted replies", unit="batch"
        ):
            idx = order[start : start + batch_size]
            enc = encode(tokenizer, [prompts[i] for i in idx]).to(device)
            out = model.generate(**enc, **settings)
            for i, row in zip(idx, out[:, enc["input_ids"].shape[1] :], strict=True):
                text = tokenizer.decode(row, skip_special_tokens=True)
                for stop in stops:
                    text = text.split(stop)[0]
                replies[i] = text
    return replies


def accepted_groups(
    model: torch.nn.Module,
    tokenizer: Any,
    docs: list[dict[str, Any]],
    classifier: str = DEFAULT_CLASSIFIER,
    batch_size: int = 16,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The docs of the complete groups (all six prompted replies classified as their target),
    and a JSON-safe record of the selection. `docs` hold whole groups, in EMOTIONS order."""
    clf = get_classifier(classifier)
    clf.require_labels(EMOTIONS)
    replies = prompted_replies(model, tokenizer, docs, batch_size)
    # One call with every reply, as the task's scoring filter classifies a whole run.
    verdicts = clf.classify(replies)
    hits = [v["label"] == d["target_emotion"] for d, v in zip(docs, verdicts, strict=True)]
    size = len(EMOTIONS)
    kept: list[dict[str, Any]] = []
    kept_groups: list[str] = []
    for start in range(0, len(docs), size):
        group = docs[start : start + size]
        if all(hits[start : start + size]):
            kept.extend(group)
            kept_groups.append(f"{group[0]['skeleton_id']}__{group[0]['valence']}")
    per_emotion = {
        e: sum(h for d, h in zip(docs, hits, strict=True) if d["target_emotion"] == e)
        for e in EMOTIONS
    }
    record = {
        "accepted_only": True,
        "classifier": clf.spec(),
        "generation": {"controller": "prompt", "greedy": True, "max_new_tokens": MAX_NEW_TOKENS},
        "groups_total": len(docs) // size,
        "groups_kept": len(kept_groups),
        "replies_accepted": sum(hits),
        "replies_accepted_per_emotion": per_emotion,
        "kept": kept_groups,
    }
    log.info(
        "accepted_only: %d of %d groups kept (%d of %d replies classified as their target)",
        len(kept_groups),
        len(docs) // size,
        sum(hits),
        len(docs),
    )
    if not kept:
        raise EmoBenchError(
            f"--accepted_only: none of the {len(docs) // size} (skeleton, valence) groups had all "
            f"six prompted replies classified as their target by {clf.spec()['name']!r} "
            f"(replies accepted per emotion: {per_emotion}); a weak model may pass no group: "
            "drop --accepted_only, or use a stronger model"
        )
    return kept, record


def check_groups(docs: list[dict[str, Any]]) -> None:
    """directions() reads docs as whole groups of six in EMOTIONS order: fail loudly if not."""
    size = len(EMOTIONS)
    for start in range(0, len(docs), size):
        group = docs[start : start + size]
        if [d["target_emotion"] for d in group] != list(EMOTIONS) or len(
            {(d["skeleton_id"], d["valence"]) for d in group}
        ) != 1:
            raise EmoBenchError(f"docs {start}-{start + size - 1} are not one complete group")


def discover_directions(
    model: torch.nn.Module,
    tokenizer: Any,
    model_name: str,
    out: str | Path,
    batch_size: int = 16,
    limit_groups: int | None = None,
    accepted_only: bool = False,
    classifier: str = DEFAULT_CLASSIFIER,
) -> Path:
    """Build the directions artifact in `out`; see the module docstring for `accepted_only`."""
    docs = load_docs("train")
    if limit_groups is not None:
        if limit_groups < 1:
            raise EmoBenchError(f"--limit_groups {limit_groups}: give 1 or more")
        docs = docs[: limit_groups * len(EMOTIONS)]
    check_groups(docs)
    total_groups = len(docs) // len(EMOTIONS)
    selection: dict[str, Any] = {"accepted_only": False, "groups_total": total_groups}
    if accepted_only:
        docs, selection = accepted_groups(model, tokenizer, docs, classifier, batch_size)
    prompter = create_controller("prompt")
    prompts = [render(tokenizer, prompter.messages(d, base_messages(d)))[0] for d in docs]
    points = hook_points(model)
    acts = capture_last_token(model, tokenizer, prompts, points, batch_size)
    tensors = {point: directions(acts[point]) for point in POINTS}
    command = "emobench discover directions --out DIR"
    if accepted_only:
        command += f" --accepted_only --classifier {classifier}"
    meta = {
        "kind": "emotion-directions",
        "model": {"name": model_name, **artifacts.model_fingerprint(model)},
        "emotions": list(EMOTIONS),
        "tensors": {p: "(emotion, layer, hidden), unit norm" for p in POINTS},
        "hook_points": {
            "post_attn": [p.pre_mlp_norm + " (input)" for p in points],
            "post_block": [p.block + " (output)" for p in points],
        },
        "recipe": {
            "prompts": "prompt controller (METHOD.md controller 1), model chat template",
            "position": "last prompt token",
            "groups": len(docs) // len(EMOTIONS),
            "centring": "within (skeleton, valence) group, then grand mean removed, normalised",
            "filter": (
                "accepted_only: complete groups whose six prompted replies the classifier "
                "labels as their targets"
                if accepted_only
                else "none (every group kept)"
            ),
            "selection": selection,
        },
        "data": {
            "split": "train",
            "sha256": file_sha256(resolve_split("train")),
            "docs": len(docs),
        },
        "command": command,
    }
    return artifacts.save(out, tensors, meta)
