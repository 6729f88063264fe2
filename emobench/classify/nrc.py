"""`nrclex`: a word-count classifier over the NRC Emotion Lexicon, as shipped by the `nrclex` wheel.

Labels: the six target emotions + `neutral`.

How NRC's ten categories map (NRC: anger, anticipation, disgust, fear, joy, sadness, surprise,
trust, positive, negative):

- anger, disgust, fear, sadness, surprise keep their names; joy becomes `happiness` (SEV's name).
- anticipation and trust are dropped. They are not target emotions, and the lexicon tags many
  emotionally flat words with them (e.g. "team" and "abacus" -> trust, "launch" -> anticipation),
  so as labels they would win on bland replies; folding them into happiness would inflate it the
  same way. The reference judge also chose among the six emotions only.
- positive and negative are dropped: they are polarity, not emotion, and nearly every emotion word
  carries one, so they would outvote the emotions they accompany.
- A text with no word in the six kept categories (empty text included) is `neutral` with
  probability 1; otherwise the probabilities are the normalised counts (a word tagged with two
  emotions counts once for each) and `neutral` is 0.

Ties (e.g. "furious" is tagged anger and disgust) give equal probabilities; the label is then the
first tied emotion in `labels` order, as `Classifier.classify` takes the argmax.

Tokenisation is emobench's own (`emobench.quality.words`), not NRCLex's `load_raw_text`: that goes
through TextBlob, whose tokeniser and WordNet lemmatiser need NLTK corpora downloaded at run time,
which offline machines cannot do. The bundled lexicon holds base forms only, so a word that is not
in it is looked up again with a common English suffix removed ("cried" -> "cry", "scared" ->
"scare", "hated" -> "hate"); no negation handling ("not happy" counts as happiness).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from emobench import EMOTIONS
from emobench.classify import Classifier
from emobench.classify.optional import require
from emobench.scoring.quality import words

# NRC category -> emobench label; categories not listed here are dropped (module docstring).
NRC_TO_LABEL: dict[str, str] = {
    "anger": "anger",
    "sadness": "sadness",
    "joy": "happiness",
    "fear": "fear",
    "surprise": "surprise",
    "disgust": "disgust",
}
DROPPED = ("anticipation", "trust", "positive", "negative")

# (suffix, replacement) in the order tried; only used when the surface form is not in the lexicon.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("'s", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("es", ""),
    ("s", ""),
    ("ed", "e"),
    ("ed", ""),
    ("ing", "e"),
    ("ing", ""),
)


def candidates(word: str) -> list[str]:
    """The word, then its suffix-stripped forms (with a doubled final consonant undone)."""
    out = [word]
    for suffix, repl in _SUFFIXES:
        stem = word[: -len(suffix)]
        # Three letters at least, so that "bed" or "is" never become lexicon words.
        if word.endswith(suffix) and len(stem + repl) >= 3:
            out.append(stem + repl)
            # "stopped" -> "stopp" -> "stop"
            if not repl and len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] not in "aeiou":
                out.append(stem[:-1])
    return out


class NRCLexClassifier(Classifier):
    name = "nrclex"
    labels = (*EMOTIONS, "neutral")

    def __init__(self) -> None:
        nrclex = require("nrclex", self.name, "nrclex>=4.1")
        # NRCLex keeps the bundled lexicon (word -> categories) in `__lexicon__`; building one
        # instance loads it without touching TextBlob.
        lexicon: dict[str, list[str]] = nrclex.NRCLex().__lexicon__
        self.version = version("nrclex")
        self.lexicon_words = len(lexicon)
        column = {lab: i for i, lab in enumerate(self.labels)}
        # Only the kept categories are stored, so a word with only dropped ones is not a hit.
        self.index: dict[str, tuple[int, ...]] = {}
        for word, categories in lexicon.items():
            cols = tuple(column[NRC_TO_LABEL[c]] for c in categories if c in NRC_TO_LABEL)
            if cols:
                self.index[word] = cols
        self.lexicon = lexicon

    def lookup(self, word: str) -> str | None:
        """The lexicon entry a token matches (itself or a suffix-stripped form), if any."""
        for cand in candidates(word):
            if cand in self.lexicon:
                return cand
        return None

    def counts(self, text: str) -> np.ndarray:
        row = np.zeros(len(self.labels), dtype=np.float64)
        for token in words(text):
            entry = self.lookup(token)
            for col in self.index.get(entry, ()) if entry else ():
                row[col] += 1.0
        return row

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        neutral = self.labels.index("neutral")
        for i, text in enumerate(texts):
            row = self.counts(text)
            total = row.sum()
            if total > 0:
                out[i] = row / total
            else:
                out[i, neutral] = 1.0
        return out

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["lexicon"] = {
            "package": f"nrclex=={self.version}",
            "words": self.lexicon_words,
            "dropped_categories": list(DROPPED),
        }
        return spec
