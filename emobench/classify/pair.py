"""`ft-pair`: the mean of `mpnet-ft`'s and `minilm-ft`'s probabilities.

The two fine-tuned heads misread different lines of the implicit validation set (MiniLM reads
disgust better, mpnet surprise, sadness and word salad), so their mean reads more of it than
either. It costs both heads' time per reply. Its judge-compatible thresholds are its own, chosen
by the single heads' rule on the mean of their out-of-fold probabilities (one fold draw: both were
cross-validated on the same folds with the same seed), never on a test set; its card
(heads/ft_pair.json) names each member's head by hash and `emobench train-classifier --head pair`
rebuilds it (tuning.pair).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from emobench.classify import CardedClassifier, Classifier, get_classifier
from emobench.errors import DataError

MEMBERS = ("mpnet-ft", "minilm-ft")
REBUILD = "emobench train-classifier --head pair"


def default_card() -> Path:
    return Path(str(files("emobench.classify") / "heads" / "ft_pair.json"))


def decision_sha256(card: dict[str, Any]) -> str:
    """One hash over what decides a verdict (which heads, how combined, which thresholds), so a
    leaderboard never merges runs scored by different pairs."""
    decides = {k: card[k] for k in ("members", "rule")} | {
        "thresholds": card["match"]["thresholds"]
    }
    return hashlib.sha256(json.dumps(decides, sort_keys=True).encode()).hexdigest()


def member_hashes(members: Sequence[Classifier]) -> dict[str, str]:
    return {m.name: str(getattr(m, "meta", {}).get("sha256", "")) for m in members}


class PairClassifier(CardedClassifier):
    name = "ft-pair"
    card_keys = ("sha256", "members", "heldout")

    def __init__(self, card: str | None = None) -> None:
        path = Path(card) if card else default_card()
        if not path.is_file():
            raise FileNotFoundError(f"the ft-pair card {path} not found; build it with `{REBUILD}`")
        self.meta: dict[str, Any] = json.loads(path.read_text())
        names = [m["name"] for m in self.meta.get("members", [])]
        if not names:
            raise DataError(f"{path}: names no members; rebuild it with `{REBUILD}`")
        if self.meta.get("sha256") != decision_sha256(self.meta):
            # An edited threshold under the old hash would pass as the published pair.
            raise DataError(
                f"{path}: its sha256 is not that of its members, rule and thresholds (edited "
                f"by hand?); rebuild it with `{REBUILD}`"
            )
        self.members = [get_classifier(n) for n in names]
        have = member_hashes(self.members)
        stale = [
            f"{m['name']} {m['sha256'][:8]} (installed: {have[m['name']][:8]})"
            for m in self.meta["members"]
            if have[m["name"]] != m["sha256"]
        ]
        if stale:
            # Thresholds chosen on other heads' probabilities would decide with the wrong scale.
            raise DataError(
                f"{path}: its thresholds were chosen for other heads: {', '.join(stale)}; "
                f"rebuild it with `{REBUILD}`"
            )
        labels = {tuple(m.labels) for m in self.members}
        if len(labels) != 1:
            raise DataError(f"{path}: its members' labels differ ({sorted(labels)})")
        self.labels = self.members[0].labels

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.mean([m.predict_proba(texts) for m in self.members], axis=0)
