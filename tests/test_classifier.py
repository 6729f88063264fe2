"""The shipped classifiers on real text: held-out judged replies and labelled hard cases."""

import json
from pathlib import Path

import numpy as np
import pytest

from emobench import EMOTIONS
from emobench.classify import get_classifier
from emobench.errors import EmoBenchError

HARD_CASES = Path(__file__).parent / "data" / "hard_cases.jsonl"


@pytest.fixture(scope="module")
def clf():
    return get_classifier("minilm")


def forced_choice(scored):
    """The best of the six emotions (neutral excluded), as SEV's forced-choice accuracy counts."""
    return [max(EMOTIONS, key=lambda e: s["probs"][e]) for s in scored]


def test_labels_and_spec(clf):
    assert clf.labels == (*EMOTIONS, "neutral")
    spec = clf.spec()
    assert spec["name"] == "minilm"
    assert spec["head"]["heldout"]["file"] == "judged/test_accepted.jsonl"
    assert get_classifier("minilm-sev6").labels == EMOTIONS


def test_held_out_judged_replies_are_read_correctly(clf, sev_dir):
    """Every 20th reply of the held-out split, forced choice over the six emotions."""
    lines = (sev_dir / "judged" / "test_accepted.jsonl").read_text().splitlines()[::20]
    recs = [json.loads(line) for line in lines]
    predicted = forced_choice(clf.classify([r["gen_text"] for r in recs]))
    acc = np.mean([p == r["emotion"] for p, r in zip(predicted, recs, strict=True)])
    assert len(recs) >= 140
    assert acc >= 0.92, acc


def test_hard_cases(clf):
    """Degenerate text (repeats, hyphen chains, capitals, cut-offs), bland replies, and real
    replies of the over-steered embedded model (kind "over-steered", from the steer sweep on the
    train split, labelled by hand: word salad and code-like noise are `neutral`).

    Measured: 25 of the 32 hand-written cases (the style-bound sev6 head: 18 of 32) and 15 of the
    17 over-steered ones (sev6: 6, nrclex: 10); the bars guard those margins. Bland replies are
    its weak spot (2 of 4 read as neutral).
    """
    cases = [json.loads(line) for line in HARD_CASES.read_text().splitlines()]
    texts = [c["text"] for c in cases]
    scored = clf.classify(texts)
    hits = [s["label"] == c["label"] for s, c in zip(scored, cases, strict=True)]
    wrong = [(c["text"], s["label"]) for s, c, h in zip(scored, cases, hits, strict=True) if not h]
    assert np.mean(hits) >= 0.75, wrong
    style_probe = get_classifier("minilm-sev6").classify(texts)
    probe_hits = [s["label"] == c["label"] for s, c in zip(style_probe, cases, strict=True)]
    assert np.mean(hits) >= np.mean(probe_hits) + 0.15
    bland = [s["label"] for s, c in zip(scored, cases, strict=True) if c["kind"] == "bland"]
    assert bland.count("neutral") >= 2, bland
    steered = [h for h, c in zip(hits, cases, strict=True) if c["kind"] == "over-steered"]
    assert len(steered) == 17
    assert np.mean(steered) >= 0.8, wrong


def test_probabilities_are_distributions(clf):
    probs = clf.predict_proba(["I am furious that they ignored me again!", "What a lovely day."])
    assert probs.shape == (2, 7)
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
