"""The optional lexicon and emoji classifier plugins on real inputs: `nrclex` and `nade` (the LLM
`judge` is tests/test_judge.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emobench import EMOTIONS
from emobench.classify import Classifier, get_classifier
from emobench.classify.nrc import NRCLexClassifier
from emobench.classify.plutchik import NadeClassifier
from emobench.cli import main
from emobench.errors import EmoBenchError, PluginLoadError
from emobench.registry import CLASSIFIERS, installed

# One unmistakable sentence per emotion, worded so that both the lexicon and nade can know it.
CLEAR = {
    "anger": "I am furious, full of rage at this outrage!",
    "sadness": "I cried with grief and sorrow all night.",
    "happiness": "What a joy, I love this wonderful delight!",
    "fear": "I panic in terror and dread what comes next.",
    "surprise": "I was so surprised by the sudden news!",
    "disgust": "The filthy, gross stench of vomit made me nauseous.",
}
NEUTRAL = "The quarterly report is due on Thursday and the meeting has moved to room 4."


@pytest.fixture(scope="module")
def nrc() -> NRCLexClassifier:
    return get_classifier("nrclex")


@pytest.fixture(scope="module")
def nade() -> NadeClassifier:
    return get_classifier("nade")


def judged_every_20th(sev_dir: Path) -> list[dict[str, Any]]:
    lines = (sev_dir / "judged" / "test_accepted.jsonl").read_text().splitlines()[::20]
    return [json.loads(line) for line in lines]


def test_plugins_are_registered() -> None:
    names = installed(CLASSIFIERS)
    assert names["nrclex"].target == "emobench.classify.nrc:NRCLexClassifier"
    assert names["nade"].target == "emobench.classify.plutchik:NadeClassifier"
    assert names["judge"].target == "emobench.classify.judge:JudgeClassifier"


# -- nrclex ------------------------------------------------------------------------------------


def test_nrc_labels_cover_the_targets_and_drop_the_rest(nrc: NRCLexClassifier) -> None:
    assert nrc.labels == (*EMOTIONS, "neutral")
    nrc.require_labels(EMOTIONS)
    for dropped in ("trust", "anticipation", "positive", "negative", "joy"):
        with pytest.raises(EmoBenchError, match=dropped):
            nrc.require_labels([*EMOTIONS, dropped])
    spec = nrc.spec()
    assert spec["name"] == "nrclex"
    assert spec["lexicon"]["package"].startswith("nrclex==")
    assert spec["lexicon"]["words"] > 5000


def test_nrc_clear_sentences(nrc: NRCLexClassifier) -> None:
    scored = nrc.classify(list(CLEAR.values()))
    assert [s["label"] for s in scored] == list(CLEAR)


def test_nrc_probabilities_neutral_and_empty(nrc: NRCLexClassifier) -> None:
    texts = [*CLEAR.values(), NEUTRAL, "", "   ", "team launch"]
    probs = nrc.predict_proba(texts)
    assert probs.shape == (len(texts), 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    neutral = nrc.labels.index("neutral")
    # No emotion word; "team" (trust) and "launch" (anticipation) are dropped categories.
    assert probs[len(CLEAR) :, neutral].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert (probs[: len(CLEAR), neutral] == 0).all()
    # Normalised counts: "furious" (anger, disgust), "rage" (anger), "outrage" (anger, disgust).
    anger = nrc.classify([CLEAR["anger"]])[0]["probs"]
    assert anger["anger"] == pytest.approx(3 / 5)
    assert anger["disgust"] == pytest.approx(2 / 5)
    assert nrc.predict_proba([]).shape == (0, 7)


def test_nrc_inflected_forms_reach_the_lexicon(nrc: NRCLexClassifier) -> None:
    """The bundled lexicon has "cry", "scare", "hate" but not "cried", "scared", "hated"."""
    assert "cried" not in nrc.lexicon and "cry" in nrc.lexicon
    assert nrc.lookup("cried") == "cry"
    assert nrc.lookup("scared") == "scare"
    assert nrc.lookup("hated") == "hate"
    assert nrc.lookup("is") is None
    scored = nrc.classify(
        ["She sobbed.", "We were amazed.", "The terrors came back.", "So scared."]
    )
    assert [s["label"] for s in scored[:3]] == ["sadness", "surprise", "fear"]
    # "scare" is tagged anger, fear and surprise: a three-way tie, which the label order breaks.
    assert scored[3]["probs"]["fear"] == scored[3]["probs"]["anger"] == pytest.approx(1 / 3)
    assert scored[3]["label"] == "anger"


def test_nrc_on_judged_replies_beats_chance(nrc: NRCLexClassifier, sev_dir: Path) -> None:
    """Measured when added: 35.0 % of 143 (chance 16.7 %); a lexicon misses most style cues."""
    recs = judged_every_20th(sev_dir)
    labels = [s["label"] for s in nrc.classify([r["gen_text"] for r in recs])]
    acc = np.mean([lab == r["emotion"] for lab, r in zip(labels, recs, strict=True)])
    assert len(recs) >= 140
    assert acc >= 0.27, acc


def test_cli_classify_with_nrclex(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "texts.jsonl"
    lines = [{"text": CLEAR["fear"]}, {"text": NEUTRAL}, {"text": ""}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["classify", "--classifier", "nrclex", str(path)]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["label"] for o in out] == ["fear", "neutral", "neutral"]
    assert set(out[0]["probs"]) == {*EMOTIONS, "neutral"}


def test_missing_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import nrclex` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "nrclex", None)
    with pytest.raises(PluginLoadError, match=r"pip install nrclex"):
        NRCLexClassifier()
    monkeypatch.setitem(sys.modules, "nade", None)
    with pytest.raises(PluginLoadError, match=r"pip install nade.*emobench\[classifiers\]"):
        NadeClassifier()


# -- nade --------------------------------------------------------------------------------------


def test_nade_labels_are_the_six_targets(nade: NadeClassifier) -> None:
    assert nade.labels == EMOTIONS
    nade.require_labels(EMOTIONS)
    for absent in ("trust", "anticipation", "neutral"):
        with pytest.raises(EmoBenchError, match=absent):
            nade.require_labels([absent])
    assert nade.spec()["model"] == {
        "package": nade.spec()["model"]["package"],
        "name": "socialmedia_en",
        "dropped_dimensions": ["anticipation", "trust"],
    }
    assert nade.spec()["args"] == {"model": "socialmedia_en"}


def test_nade_clear_sentences(nade: NadeClassifier) -> None:
    scored = nade.classify(list(CLEAR.values()))
    assert [s["label"] for s in scored] == list(CLEAR)


def test_nade_probabilities(nade: NadeClassifier) -> None:
    texts = [*CLEAR.values(), NEUTRAL, "", "two\nlines"]
    probs = nade.predict_proba(texts)
    assert probs.shape == (len(texts), 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs >= 0).all()
    # Intensities are per text: one text alone scores as it does inside a batch.
    alone = nade.predict_proba([CLEAR["disgust"]])
    np.testing.assert_allclose(alone[0], probs[list(CLEAR).index("disgust")])
    raw = nade.intensities([CLEAR["sadness"]])
    assert raw.shape == (1, 6) and raw.min() >= 0 and raw.max() <= 1
    assert nade.predict_proba([]).shape == (0, 6)


def test_nade_on_judged_replies_beats_chance(nade: NadeClassifier, sev_dir: Path) -> None:
    """Measured when added: 32.9 % of 143 (chance 16.7 %): social-media emoji model, other style."""
    recs = judged_every_20th(sev_dir)
    labels = [s["label"] for s in nade.classify([r["gen_text"] for r in recs])]
    acc = np.mean([lab == r["emotion"] for lab, r in zip(labels, recs, strict=True)])
    assert acc >= 0.25, acc


def test_nade_unknown_model() -> None:
    with pytest.raises(PluginLoadError, match="socialmedia_en"):
        NadeClassifier(model="no_such_model")


class _Slipping(Classifier):
    """A plugin whose probabilities do not fit its labels (three columns for seven labels)."""

    name = "slipping"
    labels = ("anger", "sadness", "happiness", "fear", "surprise", "disgust", "neutral")

    def __init__(self, probs: np.ndarray) -> None:
        self.args, self.probs = {}, probs

    def predict_proba(self, texts):
        return self.probs


def test_a_plugin_s_misshapen_probabilities_are_refused_by_name() -> None:
    refused = (
        (np.full((2, 3), 1 / 3), "returned shape (2, 3) for 2 texts"),
        (np.full((1, 7), 1 / 7), "returned shape (1, 7) for 2 texts"),
        (np.full((2, 7), np.nan), "returned non-finite values for 2 texts"),
        ([[1 / 7] * 7, [1.0]], "returned what is not a numeric table"),
    )
    for probs, message in refused:
        with pytest.raises(EmoBenchError, match=r"classifier 'slipping' \(tests\.") as err:
            _Slipping(probs).classify(["one", "two"])
        assert message in str(err.value) and "(7: anger, sadness" in str(err.value)
    (ok,) = _Slipping(np.full((1, 7), 1 / 7)).classify(["one"])
    assert ok["label"] == "anger"
