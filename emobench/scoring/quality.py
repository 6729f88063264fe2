"""Text-quality measures per reply: an emotion score alone rewards gibberish.

All are computed from the text itself (plus, for relevance, sentence embeddings of the reply and
its situation), so every controller's replies are measured the same way.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_WORD = re.compile(r"[\w']+")
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s|$)")
_CLOSING = re.compile(r"[.!?…][\"')\]*_]*\s*$")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(tokens: list[str], n: int = 2) -> float:
    """Unique n-grams / n-grams (1.0 = no repetition); 1.0 for replies too short to repeat."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def longest_repeated_ngram(tokens: list[str], cap: int = 50) -> int:
    """Length of the longest word n-gram that occurs at least twice (0 = none)."""
    best = 0
    for n in range(1, min(cap, len(tokens)) + 1):
        seen: set[tuple[str, ...]] = set()
        found = False
        for i in range(len(tokens) - n + 1):
            gram = tuple(tokens[i : i + n])
            if gram in seen:
                found = True
                break
            seen.add(gram)
        if not found:
            break
        best = n
    return best


def sentence_count(text: str) -> int:
    stripped = text.strip()
    if not stripped:
        return 0
    ends = len(_SENTENCE_END.findall(stripped))
    return ends + (0 if _CLOSING.search(stripped) else 1)


def text_quality(text: str) -> dict[str, Any]:
    tokens = words(text)
    sentences = sentence_count(text)
    return {
        "words": len(tokens),
        "distinct_2": distinct_n(tokens, 2),
        "longest_repeat": longest_repeated_ngram(tokens),
        "sentences": sentences,
        "two_sentences": float(1 <= sentences <= 2),
        "truncated": float(bool(text.strip()) and not _CLOSING.search(text.strip())),
    }


def measure_quality(docs: list[dict[str, Any]], texts: list[str]) -> list[dict[str, Any]]:
    """Every reply's quality measures but perplexity: the text measures and the relevance to its
    doc's situation. The task's scoring filter, re-scoring and gate calibration all use this."""
    from emobench.data import user_message

    related = relevance(texts, [user_message(d["scenario"], d["event"]) for d in docs])
    return [
        {**text_quality(t), "relevance": round(float(r), 6)}
        for t, r in zip(texts, related, strict=True)
    ]


def relevance(replies: list[str], situations: list[str]) -> np.ndarray:
    """Cosine similarity of each reply to its situation (scenario and event), MiniLM embeddings."""
    from emobench.classify.encoder import shared_encoder

    if not replies:
        return np.zeros(0, dtype=np.float32)
    enc = shared_encoder()
    a = enc.encode(replies)
    b = enc.encode(situations)
    return (a * b).sum(axis=1)  # both L2-normalised
