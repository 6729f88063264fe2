"""The minilm classifier on real text: the reference model's judged replies (held-out split)."""

import json

import numpy as np
import pytest

from emobench import EMOTIONS
from emobench.classify import get_classifier
from emobench.errors import EmoBenchError


@pytest.fixture(scope="module")
def clf():
    return get_classifier("minilm")


def test_labels_and_spec(clf):
    assert clf.labels == EMOTIONS
    spec = clf.spec()
    assert spec["name"] == "minilm"
    assert spec["head"]["heldout"]["file"] == "judged/test_accepted.jsonl"


def test_held_out_judged_replies_are_classified_well(clf, sev_dir):
    """Every 20th reply of the held-out split: the shipped head must still read them correctly."""
    lines = (sev_dir / "judged" / "test_accepted.jsonl").read_text().splitlines()[::20]
    recs = [json.loads(line) for line in lines]
    scored = clf.classify([r["gen_text"] for r in recs])
    acc = np.mean([s["label"] == r["emotion"] for s, r in zip(scored, recs, strict=True)])
    assert len(recs) >= 140
    assert acc >= 0.88, acc


def test_probabilities_are_distributions(clf):
    probs = clf.predict_proba(
        ["I am furious that they ignored me again!", "What a lovely day, I'm thrilled."]
    )
    assert probs.shape == (2, 6)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


def test_empty_input_gives_empty_output(clf):
    assert clf.classify([]) == []


def test_classifier_that_cannot_name_targets_is_refused(clf):
    with pytest.raises(EmoBenchError, match="cannot name boredom"):
        clf.require_labels([*EMOTIONS, "boredom"])


def test_the_head_reloads_from_its_files(clf, tmp_path):
    from emobench.classify.minilm import MiniLMClassifier, default_head

    with pytest.raises(FileNotFoundError, match="emobench train-classifier"):
        MiniLMClassifier(head=str(tmp_path / "missing.safetensors"))
    again = MiniLMClassifier(head=str(default_head()))
    text = ["The news made my stomach turn; it was revolting."]
    assert np.allclose(again.predict_proba(text), clf.predict_proba(text))
