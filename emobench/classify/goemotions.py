"""GoEmotions (Demszky et al. 2020): human-written Reddit comments with 27 emotion labels + neutral.

Mapped to the six Ekman emotions + neutral with the mapping GoEmotions publishes
(`data/ekman_mapping.json` of google-research/goemotions), with `joy` named `happiness` as in SEV.
A comment keeps its label only if all of its labels map to one Ekman class.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from emobench.errors import DataError

EKMAN: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "happiness": (
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
FINE_TO_EKMAN = {fine: ekman for ekman, fines in EKMAN.items() for fine in fines}


def default_path() -> Path:
    """$EMOBENCH_GOEMOTIONS, else goemotions/dev.csv beside $EMOBENCH_SEV_DIR."""
    if env := os.environ.get("EMOBENCH_GOEMOTIONS"):
        return Path(env).expanduser()
    sev = os.environ.get("EMOBENCH_SEV_DIR")
    if not sev:
        raise DataError("set EMOBENCH_GOEMOTIONS to GoEmotions' dev.csv (or EMOBENCH_SEV_DIR)")
    return Path(sev).expanduser().parent / "goemotions" / "dev.csv"


def load_single_label(path: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(texts, Ekman labels) of the comments whose labels all map to one Ekman class."""
    path = Path(path) if path else default_path()
    if not path.is_file():
        raise DataError(f"{path}: no such file (GoEmotions dev.csv)")
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fine = [c for c in reader.fieldnames or [] if c in FINE_TO_EKMAN]
        if len(fine) != len(FINE_TO_EKMAN) or "text" not in (reader.fieldnames or []):
            raise DataError(f"{path}:1: expected a `text` column and the 28 GoEmotions labels")
        for lineno, row in enumerate(reader, start=2):
            ekman = {FINE_TO_EKMAN[c] for c in fine if row[c] == "1"}
            if not row["text"] or not ekman:
                raise DataError(f"{path}:{lineno}: a row needs a text and at least one label")
            if len(ekman) == 1:
                texts.append(row["text"])
                labels.append(ekman.pop())
    return texts, labels
