"""MiniLM classifiers: all-MiniLM-L6-v2 sentence embeddings with a linear (softmax) head.

- `minilm` (the default until `minilm-ft`, emobench/classify/tuned.py, replaced it): six
  emotions + neutral, trained on judged SEV replies, degraded copies of them and human-written
  GoEmotions comments (heads/minilm_emo7.*).
- `minilm-sev6`: six emotions, judged SEV replies only (heads/minilm_sev6.*): it learned the
  reference model's style more than emotion; kept as a second opinion.

The heads ship with the package; `emobench train-classifier --head emo7|sev6` rebuilds them
(emobench/classify/train.py says how, and each head's .json records its data and numbers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from emobench.classify import CardedClassifier, softmax
from emobench.classify.encoder import shared_encoder
from emobench.classify.lexical import Lexical, combine


def head_path(name: str) -> Path:
    return Path(str(files("emobench.classify") / "heads" / f"{name}.safetensors"))


def default_head() -> Path:
    return head_path("minilm_emo7")


class MiniLMClassifier(CardedClassifier):
    name = "minilm"
    default_head_name = "minilm_emo7"

    def __init__(self, head: str | None = None) -> None:
        path = Path(head) if head else head_path(self.default_head_name)
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise FileNotFoundError(
                f"classifier head {path} (and its .json) not found; rebuild it with "
                "`emobench train-classifier --head emo7` (or --head sev6)"
            )
        tensors = load_file(str(path))
        self.weight = tensors["weight"]  # (labels, dim)
        self.bias = tensors["bias"]
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.labels = tuple(self.meta["labels"])
        self.lexical: Lexical | None = None
        if "lexical" in self.meta:
            vocab = json.loads((path.parent / self.meta["lexical"]["vocabulary_file"]).read_text())
            self.lexical = Lexical(vocab, tensors["idf"])
        if self.weight.shape[0] != len(self.labels):
            raise ValueError(f"{path}: {self.weight.shape[0]} rows but {len(self.labels)} labels")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        emb = shared_encoder().encode(list(texts), progress=len(texts) > 256)
        lex = self.lexical.transform(list(texts)) if self.lexical is not None else None
        return softmax(np.asarray(combine(emb, lex) @ self.weight.T) + self.bias)


class MiniLMSev6Classifier(MiniLMClassifier):
    name = "minilm-sev6"
    default_head_name = "minilm_sev6"
