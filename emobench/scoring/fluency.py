"""Fluency: the perplexity of a reply under the *unsteered* model, given the prompt that made it.

A steered model can reach a high emotion score with text its own unsteered self finds absurd;
perplexity under the unsteered model (hooks off, same prompt) measures exactly that drift. It is
computed after generation, outside the controller's scope, by `emobench.model.EmoBenchLM`, and
by `emobench score --fluency` for runs that were saved without it.

The model hands each reply's perplexity to the task's scoring filter on the reply itself
(`emobench.reply.Reply`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from emobench.decode import keeps_some_logits


def context_encoder(tokenizer: Any) -> Callable[[str], list[int]]:
    """Prompts encoded as lm-eval encodes them (`emobench.chat.wants_special_tokens`)."""
    from emobench.chat import wants_special_tokens

    def encode(text: str) -> list[int]:
        special = wants_special_tokens(tokenizer, [text])
        return list(tokenizer(text, add_special_tokens=special)["input_ids"])

    return encode


@torch.inference_mode()
def perplexities(
    model: torch.nn.Module,
    tokenizer: Any,
    contexts: Sequence[str],
    replies: Sequence[str],
    batch_size: int = 16,
    max_length: int | None = None,
    progress: bool = True,
    encode_context: Callable[[str], list[int]] | None = None,
) -> list[float | None]:
    """exp(mean negative log-likelihood of the reply's tokens | context), one per pair.

    None for an empty reply (nothing to measure). The model runs as given: call this outside
    any controller scope so no steering hook is active. Contexts are encoded by `encode_context`
    (default `context_encoder(tokenizer)`; EmoBenchLM passes lm-eval's own), replies without
    special tokens, appended.
    """
    encode = encode_context or context_encoder(tokenizer)
    if len(contexts) != len(replies):
        raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
    limit = max_length or int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    rows: list[tuple[int, list[int], int]] = []  # (index, ids, reply start)
    out: list[float | None] = [None] * len(replies)
    for i, (ctx, reply) in enumerate(zip(contexts, replies, strict=True)):
        cont = list(tokenizer(reply, add_special_tokens=False)["input_ids"])
        if not cont:
            continue
        ids = list(encode(ctx)) + cont
        start = len(ids) - len(cont)
        if len(ids) > limit:  # keep the reply and as much of the context as fits
            cut = len(ids) - limit
            ids, start = ids[cut:], max(start - cut, 1)
        rows.append((i, ids, start))
    # Longest first: similar lengths share a batch, and a memory problem shows up at once.
    rows.sort(key=lambda r: -len(r[1]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Logits are only needed where a reply token is predicted: over a 49k vocabulary the prompt
    # positions' logits cost as much memory as the whole forward pass.
    trims = keeps_some_logits(model)
    batches = range(0, len(rows), batch_size)
    for b in tqdm(batches, desc="fluency (unsteered perplexity)", disable=not progress):
        chunk = rows[b : b + batch_size]
        width = max(len(ids) for _, ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, (_, ids, _) in enumerate(chunk):
            input_ids[r, : len(ids)] = torch.tensor(ids)
            mask[r, : len(ids)] = 1
        # Token t is predicted from position t - 1: keep positions from the earliest reply start.
        first = min(start for _, _, start in chunk) - 1
        extra = {"logits_to_keep": width - first} if trims else {}
        logits = model(
            input_ids=input_ids.to(device), attention_mask=mask.to(device), **extra
        ).logits
        offset = width - logits.shape[1]
        for r, (i, ids, start) in enumerate(chunk):
            target = torch.tensor(ids[start:], device=device)
            rows_logits = logits[r, start - 1 - offset : len(ids) - 1 - offset].float()
            lp = torch.log_softmax(rows_logits, dim=-1).gather(1, target[:, None]).squeeze(1)
            out[i] = math.exp(-float(lp.mean()))
    return out


def measure_saved(
    docs: Sequence[dict[str, Any]],
    replies: Sequence[str],
    model_args: dict[str, Any],
    controller_name: str,
    controller_args: dict[str, Any] | None = None,
    batch_size: int = 16,
) -> list[float | None]:
    """Perplexities for a finished run's replies: the prompts are rebuilt from each doc by the
    run's controller, and the model (`pretrained=`, `dtype=`) runs without any hook (the
    unsteered model)."""
    from emobench.chat import base_messages, render
    from emobench.controller import create_controller
    from emobench.loading import load_model

    controller = create_controller(controller_name, **(controller_args or {}))
    model, tokenizer, _ = load_model(model_args)
    controller.prepare(model, tokenizer)
    contexts = [render(tokenizer, controller.messages(d, base_messages(d)))[0] for d in docs]
    return perplexities(model, tokenizer, contexts, replies, batch_size=batch_size)
