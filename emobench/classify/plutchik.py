"""`nade`: the Plutchik-emotion model shipped in the `nade` wheel (Natural Affect DEtection).

What the wheel ships (nade 0.3.1, MIT): a fastText model that predicts 151 emojis from a text
(`data/socialmedia_en/nade_250k_hp.ftz`, ~10 MB) and one LightGBM regressor per Plutchik emotion
(anger, anticipation, disgust, fear, joy, sadness, surprise, trust) that maps the emoji scores to
an intensity in [0, 1]; trained on social-media posts. Everything is inside the wheel; nothing is
downloaded. Its dependencies (fasttext-numpy2, lightgbm, pyarrow, numpy>=2) install from binary
wheels. On first use nade unpacks its gzipped regressors next to themselves, inside the installed
package, so that directory must be writable once (it is in a virtualenv).

Labels: the six target emotions, no `neutral`.

- joy becomes `happiness`; anger, sadness, fear, surprise, disgust keep their names.
- anticipation and trust are dropped: they are not target emotions, and the reference judge chose
  among the six only. Folding them into happiness would credit any hopeful or trusting reply as
  happy; as labels they would mark a reply wrong for an emotion the benchmark never asks for.
- The eight regressors are independent intensities, not a distribution: the probabilities are the
  six kept intensities divided by their sum (uniform if all six are 0).
- No `neutral`: nade's intensities do not separate emotionless text. On GoEmotions dev, the largest
  of the six falls below 0.25 for 61 % of the neutral comments but also for 45 % of the emotional
  ones, and an empty string still scores about 0.1 on several emotions. So nade always picks one
  of the six, a forced choice like SEV's accuracy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from emobench import EMOTIONS
from emobench.classify import Classifier
from emobench.classify.optional import require
from emobench.errors import PluginLoadError

# emobench label -> nade dimension; nade's anticipation and trust are not asked for.
LABEL_TO_NADE: dict[str, str] = {
    "anger": "anger",
    "sadness": "sadness",
    "happiness": "joy",
    "fear": "fear",
    "surprise": "surprise",
    "disgust": "disgust",
}
DROPPED = ("anticipation", "trust")


class NadeClassifier(Classifier):
    name = "nade"
    labels = EMOTIONS

    def __init__(self, model: str = "socialmedia_en") -> None:
        nade = require("nade", self.name, "nade>=0.3.1")
        try:
            with warnings.catch_warnings():
                # nade warns "unpack <emotion> model" on first use; that step is expected.
                warnings.simplefilter("ignore")
                self.model = nade.Nade(model=model)
        except AssertionError as exc:  # nade asserts that the model's files exist
            raise PluginLoadError(
                f"nade has no model {model!r} (the wheel ships 'socialmedia_en')"
            ) from exc
        except OSError as exc:
            raise PluginLoadError(
                f"nade could not unpack its regressors ({exc}); it writes them once next to the "
                "installed package, so run it once where that directory is writable"
            ) from exc
        self.version = version("nade")
        self.model_name = model

    def intensities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 6) nade intensities in [0, 1], in `labels` order."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        dims = [LABEL_TO_NADE[lab] for lab in self.labels]
        raw = self.model.predict(list(texts), dimensions=dims)  # {dim: pyarrow array}
        return np.stack([np.asarray(raw[d].to_pylist(), dtype=np.float64) for d in dims], axis=1)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        scores = self.intensities(texts)
        total = scores.sum(axis=1, keepdims=True)
        uniform = np.full_like(scores, 1.0 / len(self.labels))
        return np.where(total > 0, scores / np.where(total > 0, total, 1.0), uniform)

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["model"] = {
            "package": f"nade=={self.version}",
            "name": self.model_name,
            "dropped_dimensions": list(DROPPED),
        }
        return spec
