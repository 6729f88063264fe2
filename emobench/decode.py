"""Greedy decoding in which a finished reply leaves the batch.

`transformers.generate` keeps every row of a batch in every forward pass until the longest reply
ends. SEV replies range from a dozen tokens to the 100-token cap, so most of a batch's compute goes
to rows that have already stopped (48 prompted replies averaged 26 tokens; see
benchmarks/speed.py). Here, a row that emits an end-of-sequence token or a stop string is dropped
from the batch and from its KV cache (`DynamicCache.batch_select_indices`), and the rest go on.

Everything else is what `generate` does for greedy search: the same prefill, the same position ids
under left padding, the same logits processors (transformers' own classes) for the settings the
controllers use (repetition penalty, no repeated n-grams, a minimum number of new tokens), and
finished rows padded with the pad token. Any other setting (sampling, beams, processors this
module does not build) is left to `generate`: `plan` returns None for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache, LogitsProcessorList
from transformers.generation import (
    MinNewTokensLengthLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)

# Generation settings this module reproduces; temperature and top-k/p do not affect greedy search.
_HANDLED = {
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "min_new_tokens",
    "attention_mask",
}
# Model-level generation defaults that would add a processor this module does not build.
_UNHANDLED_DEFAULTS = {
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "sequence_bias": None,
    "min_length": 0,
    "exponential_decay_length_penalty": None,
    "renormalize_logits": False,
    "num_beams": 1,
    "penalty_alpha": None,
    "dola_layers": None,
    "guidance_scale": None,
    "watermarking_config": None,
}


def plan(model: Any, context_len: int, kwargs: dict[str, Any]) -> LogitsProcessorList | None:
    """The logits processors `generate` would apply to greedy search with these settings, or
    None when the settings are not plain greedy search with processors built here."""
    if set(kwargs) - _HANDLED or kwargs.get("do_sample"):
        return None
    config = model.generation_config
    if config.do_sample and "do_sample" not in kwargs:
        return None
    for name, default in _UNHANDLED_DEFAULTS.items():
        if getattr(config, name, default) not in (default, None):
            return None

    def setting(name: str) -> Any:
        return kwargs[name] if name in kwargs else getattr(config, name, None)

    processors = LogitsProcessorList()
    if (penalty := setting("repetition_penalty")) not in (None, 1.0):
        processors.append(RepetitionPenaltyLogitsProcessor(penalty=float(penalty)))
    if n := setting("no_repeat_ngram_size"):
        processors.append(NoRepeatNGramLogitsProcessor(int(n)))
    if minimum := setting("min_new_tokens"):
        processors.append(
            MinNewTokensLengthLogitsProcessor(
                prompt_length_to_skip=context_len,
                min_new_tokens=int(minimum),
                eos_token_id=eos_ids(model),
                device=str(model.device),
            )
        )
    return processors


def keeps_some_logits(model: Any) -> bool:
    """Whether the model's forward can return logits for its last positions only."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def eos_ids(model: Any) -> list[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = model.config.eos_token_id
    if eos is None:
        return []
    return [int(eos)] if isinstance(eos, int) else [int(e) for e in eos]


class _StopStrings:
    """Finds a stop string in a row's newest tokens: the tail decoded is a few tokens longer than
    the longest stop string, as lm-eval's own stopping criterion does."""

    def __init__(self, tokenizer: Any, stop: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        lengths = [len(tokenizer.encode(s, add_special_tokens=False)) for s in self.stop]
        self.window = max(lengths, default=0) + 2

    def hit(self, tokens: list[int]) -> bool:
        if not self.stop:
            return False
        tail = self.tokenizer.decode(tokens[-self.window :])
        return any(s in tail for s in self.stop)


@torch.inference_mode()
def greedy(
    model: Any,
    tokenizer: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop: Sequence[str],
    pad_token_id: int,
    processors: LogitsProcessorList,
) -> torch.Tensor:
    """Left-padded prompts in, `generate`-shaped output out: prompt + new tokens, each row padded
    with `pad_token_id` after it ends (at an end-of-sequence token, a stop string or the cap)."""
    batch, width = input_ids.shape
    eos = torch.tensor(eos_ids(model), device=input_ids.device)
    stops = _StopStrings(tokenizer, stop)
    made: list[list[int]] = [[] for _ in range(batch)]
    live = torch.arange(batch, device=input_ids.device)
    seqs, mask = input_ids, attention_mask
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    # As generate does: the repetition penalty skips each row's left padding, and the prefill
    # asks for the last position's logits only.
    penalties = [p for p in processors if isinstance(p, RepetitionPenaltyLogitsProcessor)]
    for p in penalties:
        p.prompt_ignore_length = (mask != 0).int().argmax(dim=1)
    last_only = {"logits_to_keep": 1} if keeps_some_logits(model) else {}
    cache = DynamicCache(config=model.config)
    step_ids, step_pos = seqs, positions
    for _ in range(max_new_tokens):
        logits = model(
            input_ids=step_ids,
            attention_mask=mask,
            position_ids=step_pos,
            past_key_values=cache,
            use_cache=True,
            **last_only,
        ).logits[:, -1, :]
        scores = processors(seqs, logits.float())
        tokens = scores.argmax(dim=-1)
        done = torch.isin(tokens, eos) if len(eos) else torch.zeros_like(tokens, dtype=torch.bool)
        for j, (row, token) in enumerate(zip(live.tolist(), tokens.tolist(), strict=True)):
            made[row].append(token)
            if not done[j] and stops.hit(made[row]):
                done[j] = True
        seqs = torch.cat([seqs, tokens[:, None]], dim=-1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        step_pos = step_pos[:, -1:] + 1
        step_ids = tokens[:, None]
        if done.any():
            keep = (~done).nonzero().squeeze(1)
            if len(keep) == 0:
                break
            cache.batch_select_indices(keep)
            live, seqs, mask = live[keep], seqs[keep], mask[keep]
            step_ids, step_pos = step_ids[keep], step_pos[keep]
            for p in penalties:
                p.prompt_ignore_length = p.prompt_ignore_length[keep]
    longest = max(len(m) for m in made)
    out = torch.full((batch, width + longest), pad_token_id, dtype=input_ids.dtype)
    out[:, :width] = input_ids.cpu()
    for row, tokens in enumerate(made):
        out[row, width : width + len(tokens)] = torch.tensor(tokens, dtype=input_ids.dtype)
    return out.to(input_ids.device)
