"""`minilm-ft`: all-MiniLM-L6-v2 with its top four layers fine-tuned and a linear head.

Trained on judged SEV replies, every GoEmotions comment (soft labels), degraded and unnamed
copies of the replies, and hand-written replies that show an emotion without naming it;
heads/minilm_ft.md is its training card and `emobench train-classifier --head ft` rebuilds it
(emobench/classify/tuning/ says how).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from emobench.classify import CardedClassifier, softmax


def default_head() -> Path:
    return Path(str(files("emobench.classify") / "heads" / "minilm_ft.safetensors"))


class TunedMiniLMClassifier(CardedClassifier):
    name = "minilm-ft"
    card_keys = ("sha256", "base", "trained_on", "heldout")

    def __init__(self, head: str | None = None) -> None:
        from emobench.classify.tuning.model import TunedMiniLM

        self.model = TunedMiniLM(Path(head) if head else default_head())
        self.meta: dict[str, Any] = self.model.meta
        self.labels = self.model.labels

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return softmax(self.model.logits(list(texts), progress=len(texts) > 256))
