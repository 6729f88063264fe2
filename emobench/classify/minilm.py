"""`minilm`: all-MiniLM-L6-v2 sentence embeddings with a linear (softmax) head.

The head ships with the package (heads/minilm_sev.safetensors + .json); retrain it with
`emobench train-classifier` (see emobench/classify/train.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from emobench.classify import Classifier
from emobench.classify.encoder import shared_encoder

HEAD_NAME = "minilm_sev"


def default_head() -> Path:
    return Path(str(files("emobench.classify") / "heads" / f"{HEAD_NAME}.safetensors"))


class MiniLMClassifier(Classifier):
    name = "minilm"

    def __init__(self, head: str | None = None) -> None:
        path = Path(head) if head else default_head()
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise FileNotFoundError(
                f"classifier head {path} (and its .json) not found; rebuild it with "
                "`emobench train-classifier`"
            )
        tensors = load_file(str(path))
        self.weight = tensors["weight"]  # (labels, dim)
        self.bias = tensors["bias"]
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.labels = tuple(self.meta["labels"])
        if self.weight.shape[0] != len(self.labels):
            raise ValueError(f"{path}: {self.weight.shape[0]} rows but {len(self.labels)} labels")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        emb = shared_encoder().encode(list(texts), progress=len(texts) > 256)
        logits = emb @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["head"] = {
            k: self.meta[k] for k in ("sha256", "trained_on", "heldout") if k in self.meta
        }
        return spec
