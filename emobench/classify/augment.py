"""Degenerations that steered models produce, applied to labelled text for robustness training.

Steered replies repeat words, chain words with hyphens, shout in capitals and stop mid-sentence;
the emotion a reader sees survives all of these, so the label is kept.
"""

from __future__ import annotations

import random
import re

_WORD = re.compile(r"[A-Za-z']+")


def all_caps(text: str, rng: random.Random) -> str:
    return text.upper()


def cut_off(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) < 6:
        return text
    keep = max(3, int(len(words) * rng.uniform(0.35, 0.7)))
    return " ".join(words[:keep]).rstrip(".!?,;:")


def repeated_words(text: str, rng: random.Random) -> str:
    words = [w for w in _WORD.findall(text) if len(w) > 3]
    if not words:
        return text
    word = rng.choice(words)
    burst = " ".join([word] * rng.randint(3, 8))
    return f"{text} {burst}" if rng.random() < 0.5 else f"{burst} {text}"


def hyphen_chain(text: str, rng: random.Random) -> str:
    words = [w for w in _WORD.findall(text) if len(w) > 2]
    if len(words) < 3:
        return text
    start = rng.randrange(0, max(1, len(words) - 4))
    chain = "-".join(words[start : start + rng.randint(3, 6)] * rng.randint(1, 3))
    head = " ".join(text.split()[: rng.randint(2, 8)])
    return f"{head} {chain}"


AUGMENTATIONS = (all_caps, cut_off, repeated_words, hyphen_chain)


def augment(
    texts: list[str], labels: list[str], share: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """For each augmentation, a degraded copy of a random `share` of the texts, labels kept."""
    rng = random.Random(seed)
    out_t, out_l = [], []
    for fn in AUGMENTATIONS:
        for text, label in zip(texts, labels, strict=True):
            if rng.random() < share:
                out_t.append(fn(text, rng))
                out_l.append(label)
    return out_t, out_l


# Words that name an emotion outright (regular-expression stems, matched at a word start; a
# lookahead keeps out words that only share the stem: "happen", "saddle"). The unnamed copies drop
# them so that a head must also learn the context around the name: steered models often show an
# emotion without naming it, and a head that keys on the name misses those replies.
NAMES: dict[str, tuple[str, ...]] = {
    "anger": ("angr", "anger", "furious", "fury", "enrag", "infuriat", "livid", "irate", "outrag"),
    "sadness": ("sad(?!dl)", "unhapp", "sorrow", "heartbr", "devastat", "depress", "grie"),
    "happiness": ("happ(?!en)", "joy", "delight", "thrill", "overjoy", "ecstat", "elat", "glad"),
    "fear": ("afraid", "scare", "terrif", "fright", "fear", "panick", "anxious", "nervous", "worr"),
    "surprise": ("surpris", "shock", "amaz(?!on)", "astonish", "astound", "stunn", "flabbergast"),
    "disgust": ("disgust", "revolt", "repuls", "sicken", "nause", "gross"),
}
# "I'm shocked that X" becomes "X", not "I'm that X".
_FRAME = r"(?:(?:I'm|I am|I was|you're|you are|you'll be|you should be|it's|is|was)\s+)?"
_INTENSIFIER = r"(?:(?:so|absolutely|completely|utterly|totally|really|truly|just|very)\s+)?"


def unnamed(text: str, emotion: str) -> str | None:
    """`text` without the words that name `emotion` (and an intensifier before one), or None
    when it names none of them."""
    stems = "|".join(NAMES[emotion])
    pattern = re.compile(
        rf"\b{_FRAME}{_INTENSIFIER}(?:{stems})[a-z]*\b(?:\s+(?:that|by|at)\b)?[,!]?\s*",
        re.IGNORECASE,
    )
    out, count = pattern.subn("", text)
    if not count:
        return None
    out = re.sub(r"\s{2,}", " ", out).strip()
    return out if len(out.split()) >= 3 else None
