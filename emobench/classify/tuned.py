"""Fine-tuned encoder classifiers: `mpnet-ft` (the default) and `minilm-ft`.

Each is a sentence encoder (tuning.bases) with its top four layers fine-tuned and a linear head,
trained on judged SEV replies, every GoEmotions comment (soft labels), degraded and unnamed copies
of the replies, and hand-written replies that show an emotion without naming it. Each head's
training card lies beside its weights (heads/minilm_ft.md, heads/mpnet_ft.md);
`emobench train-classifier --head ft [--base mpnet]` rebuilds it (emobench/classify/tuning/ says
how).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from emobench.classify import CardedClassifier, softmax


def default_head(base_key: str = "minilm") -> Path:
    from emobench.classify.tuning.bases import get

    stem = get(base_key).head_name
    return Path(str(files("emobench.classify") / "heads" / f"{stem}.safetensors"))


class TunedMiniLMClassifier(CardedClassifier):
    name = "minilm-ft"
    base_key = "minilm"
    card_keys = ("sha256", "base", "trained_on", "heldout")

    def __init__(self, head: str | None = None) -> None:
        from emobench.classify.tuning.model import TunedHead

        self.model = TunedHead(Path(head) if head else default_head(self.base_key))
        self.meta: dict[str, Any] = self.model.meta
        self.labels = self.model.labels

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return softmax(self.model.logits(list(texts), progress=len(texts) > 256))


class TunedMPNetClassifier(TunedMiniLMClassifier):
    """all-mpnet-base-v2, fine-tuned the same way: the default, since it reads implicit emotion
    better than `minilm-ft`, at about seven times the cost per reply (README, "The default
    changed")."""

    name = "mpnet-ft"
    base_key = "mpnet"
