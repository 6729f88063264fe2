"""GoEmotions (Demszky et al. 2020): human-written Reddit comments with 27 emotion labels + neutral.

Mapped to the six Ekman emotions + neutral with the mapping GoEmotions publishes
(`data/ekman_mapping.json` of google-research/goemotions), with `joy` named `happiness` as in SEV.
A comment keeps its label only if all of its labels map to one Ekman class.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import NamedTuple

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
# GoEmotions' 28 labels in the dataset's own order (emotions.txt: alphabetical, neutral last), the
# order its `classes` column indexes.
LABELS: tuple[str, ...] = (*sorted(f for f in FINE_TO_EKMAN if f != "neutral"), "neutral")
# The split that default_path() names.
DEFAULT_SPLIT = "dev"


def default_path() -> Path:
    """$EMOBENCH_GOEMOTIONS, else goemotions/dev.csv beside $EMOBENCH_SEV_DIR."""
    if env := os.environ.get("EMOBENCH_GOEMOTIONS"):
        return Path(env).expanduser()
    sev = os.environ.get("EMOBENCH_SEV_DIR")
    if not sev:
        raise DataError("set EMOBENCH_GOEMOTIONS to GoEmotions' dev.csv (or EMOBENCH_SEV_DIR)")
    return Path(sev).expanduser().parent / "goemotions" / "dev.csv"


class Comment(NamedTuple):
    """One row of a GoEmotions CSV."""

    text: str
    id: str
    # The labels marked 1, in LABELS order (at least one).
    labels: tuple[str, ...]


def split_path(split: str = DEFAULT_SPLIT) -> Path:
    """The CSV of a GoEmotions split: `dev` is default_path(); another split is `<split>.csv`
    beside it (the user chooses the split; dev is the one the shared data holds)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", split):
        raise DataError(f"GoEmotions split {split!r}: a split is a plain name such as dev or test")
    path = default_path()
    return path if split == DEFAULT_SPLIT else path.with_name(f"{split}.csv")


def require_split(split: str = DEFAULT_SPLIT) -> Path:
    """split_path(split), or a DataError that names the file and how to point emobench at it."""
    path = split_path(split)
    if not path.is_file():
        raise DataError(
            f"{path}: no such file (the GoEmotions {split} split); set EMOBENCH_GOEMOTIONS to "
            "GoEmotions' dev.csv (another split is read as <split>.csv beside it) or "
            "EMOBENCH_SEV_DIR to a sev/ folder with goemotions/dev.csv beside it, or choose a "
            "split that exists with --metadata split=<name>"
        )
    return path


def load_comments(path: str | Path | None = None) -> list[Comment]:
    """Every row of a GoEmotions CSV (a `text` column, an optional `id`/`ids` column and one 1/0
    column per label), validated: a bad row fails as `file:row: what is wrong`."""
    path = Path(path) if path else default_path()
    if not path.is_file():
        raise DataError(
            f"{path}: no such file (GoEmotions dev.csv); set EMOBENCH_GOEMOTIONS to the file, or "
            "EMOBENCH_SEV_DIR to a sev/ folder with goemotions/dev.csv beside it"
        )
    comments = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        fine = [c for c in columns if c in FINE_TO_EKMAN]
        if len(fine) != len(FINE_TO_EKMAN) or "text" not in columns:
            raise DataError(f"{path}:1: expected a `text` column and the 28 GoEmotions labels")
        id_column = next((c for c in ("id", "ids") if c in columns), None)
        for lineno, row in enumerate(reader, start=2):
            labels = tuple(c for c in LABELS if row[c] == "1")
            if not row["text"] or not labels:
                raise DataError(f"{path}:{lineno}: a row needs a text and at least one label")
            comments.append(Comment(row["text"], row[id_column] if id_column else "", labels))
    return comments


def ekman_label(labels: tuple[str, ...]) -> str | None:
    """The one Ekman class all of `labels` map to, or None when they map to several."""
    ekman = {FINE_TO_EKMAN[c] for c in labels}
    return ekman.pop() if len(ekman) == 1 else None


def load_single_label(path: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(texts, Ekman labels) of the comments whose labels all map to one Ekman class."""
    texts, labels = [], []
    for comment in load_comments(path):
        if (ekman := ekman_label(comment.labels)) is not None:
            texts.append(comment.text)
            labels.append(ekman)
    return texts, labels
