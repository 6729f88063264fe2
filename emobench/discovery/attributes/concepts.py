"""Human knowledge of 27 emotion concepts (Li et al., iScience 2024): 14 attribute ratings, their
pairwise dissimilarities, and humans' direct similarity judgements.

Read from `$EMOBENCH_CONCEPTS_DIR`, else `emotion_concepts/` beside `$EMOBENCH_SEV_DIR`
(../shared). A dissimilarity file holds 351 values per column: the strict lower triangle of a
27 x 27 matrix, column by column (R's `lower.tri` order), rows and columns in the order of
`reordered_emotions.csv`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emobench.data import file_sha256
from emobench.errors import DataError

N_CONCEPTS = 27
N_PAIRS = N_CONCEPTS * (N_CONCEPTS - 1) // 2
FILES = (
    "reordered_emotions.csv",
    "dist_emotional_PCs.csv",
    "avg_dist_subjective_comparison.csv",
    "score_emotional_PCs.csv",
    "features_description.csv",
)


def concepts_dir() -> Path:
    if env := os.environ.get("EMOBENCH_CONCEPTS_DIR"):
        return Path(env).expanduser()
    sev = os.environ.get("EMOBENCH_SEV_DIR")
    if not sev:
        raise DataError(
            "set EMOBENCH_CONCEPTS_DIR to the emotion_concepts/ folder of the human ratings "
            "(or EMOBENCH_SEV_DIR, with emotion_concepts/ beside it as in ../shared)"
        )
    return Path(sev).expanduser().parent / "emotion_concepts"


def pair_index() -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each of the 351 pairs in R's lower.tri order (column by column)."""
    rows, cols = [], []
    for j in range(N_CONCEPTS):
        for i in range(j + 1, N_CONCEPTS):
            rows.append(i)
            cols.append(j)
    return np.array(rows), np.array(cols)


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file; EMOBENCH_CONCEPTS_DIR must hold {', '.join(FILES)}")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.reader(handle) if r]
    return rows[0], rows[1:]


def _floats(path: Path, rows: list[list[str]], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width))
    for n, row in enumerate(rows, start=2):
        try:
            out[n - 2] = [float(v) for v in row[:width]]
        except ValueError as exc:
            raise DataError(f"{path}:{n}: {exc}") from exc
    return out


@dataclass(frozen=True)
class Concepts:
    names: tuple[str, ...]  # the 27 concepts, in the files' order
    attributes: tuple[str, ...]  # the 14 attributes
    descriptions: dict[str, str]
    ratings: np.ndarray  # (27, 14), rescaled to 0-1
    attribute_rdms: np.ndarray  # (351, 14) pairwise dissimilarities per attribute
    subjective_rdm: np.ndarray  # (351,) humans' direct dissimilarity judgements
    sha256: dict[str, str]

    def importance(self) -> dict[str, float]:
        """Each attribute's weight in human similarity space: the Spearman correlation of its
        dissimilarities with humans' direct dissimilarity judgements."""
        from scipy.stats import spearmanr

        return {
            a: float(spearmanr(self.attribute_rdms[:, k], self.subjective_rdm).statistic)
            for k, a in enumerate(self.attributes)
        }


def load_concepts(folder: str | Path | None = None) -> Concepts:
    folder = Path(folder) if folder else concepts_dir()
    names_path = folder / "reordered_emotions.csv"
    if not names_path.is_file():
        raise DataError(f"{names_path}: no such file; EMOBENCH_CONCEPTS_DIR must hold {FILES}")
    names = tuple(
        line.strip() for line in names_path.read_text(encoding="utf-8").splitlines() if line
    )
    if len(names) != N_CONCEPTS:
        raise DataError(f"{names_path}: {len(names)} concepts, expected {N_CONCEPTS}")
    dist_path = folder / "dist_emotional_PCs.csv"
    header, rows = _read_rows(dist_path)
    if len(rows) != N_PAIRS:
        raise DataError(f"{dist_path}: {len(rows)} pairs, expected {N_PAIRS} (27 concepts)")
    attribute_rdms = _floats(dist_path, rows, len(header))
    subj_path = folder / "avg_dist_subjective_comparison.csv"
    _, subj_rows = _read_rows(subj_path)
    if len(subj_rows) != N_PAIRS:
        raise DataError(f"{subj_path}: {len(subj_rows)} pairs, expected {N_PAIRS}")
    score_path = folder / "score_emotional_PCs.csv"
    score_header, score_rows = _read_rows(score_path)
    if score_header != header or len(score_rows) != N_CONCEPTS:
        raise DataError(f"{score_path}: expected the 14 attributes of {dist_path.name} x 27 rows")
    desc_path = folder / "features_description.csv"
    _, desc_rows = _read_rows(desc_path)
    descriptions = {r[0]: r[1] for r in desc_rows if len(r) >= 2 and r[0] in header}
    return Concepts(
        names=names,
        attributes=tuple(header),
        descriptions=descriptions,
        ratings=_floats(score_path, score_rows, len(header)),
        attribute_rdms=attribute_rdms,
        subjective_rdm=_floats(subj_path, subj_rows, 1)[:, 0],
        sha256={f: file_sha256(folder / f) for f in FILES},
    )
