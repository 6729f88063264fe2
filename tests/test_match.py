"""The judge-compatible verdict: per-target thresholds chosen on training data, the shipped
head's thresholds, `classify --target_field`, and the fallback for classifiers without them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emobench import EMOTIONS
from emobench.classify import get_classifier
from emobench.classify.thresholds import GRID, choose_thresholds, youden_threshold
from tests.helpers import emobench, last_line


def test_youden_threshold_separates_separable_scores() -> None:
    scores = np.array([0.1, 0.2, 0.55, 0.6, 0.7, 0.9])
    positive = np.array([False, False, False, True, True, True])
    threshold, j = youden_threshold(scores, positive)
    assert j == pytest.approx(1.0)
    # The lowest threshold that keeps every negative out: the judge is lenient.
    assert threshold == pytest.approx(0.56)


def test_youden_threshold_trades_recall_for_false_positives() -> None:
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.3, 1.0, 400)
    neg = rng.uniform(0.0, 0.5, 400)
    threshold, j = youden_threshold(np.r_[pos, neg], np.r_[np.ones(400), np.zeros(400)] > 0)
    # The overlap is [0.3, 0.5]: J is best with the cut inside it, and below 1.
    assert 0.3 <= threshold <= 0.5
    assert 0.5 < j < 1.0


def test_threshold_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both positive and negative"):
        youden_threshold(np.array([0.2, 0.9]), np.array([True, True]))


def test_rejected_replies_are_negatives_for_their_own_target_only() -> None:
    labels = ["anger", "fear"]
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.92, 0.08], [0.2, 0.8], [0.3, 0.7]])
    truth = ["anger", "anger", "anger", "fear", "fear"]
    # The judge rejected a reply for anger that the head gives 0.85: anger's threshold must rise
    # above it; fear's threshold cannot move because of it.
    rejected = [(np.array([0.85, 0.15]), "anger")]
    plain = choose_thresholds(probs, labels, truth, labels)
    with_rejected = choose_thresholds(probs, labels, truth, labels, rejected=rejected)
    assert with_rejected["anger"]["negatives"] == plain["anger"]["negatives"] + 1
    assert with_rejected["anger"]["threshold"] > 0.85 > plain["anger"]["threshold"]
    assert with_rejected["fear"] == plain["fear"]


def test_shipped_head_has_a_threshold_per_emotion_chosen_on_training_data() -> None:
    clf = get_classifier("minilm")
    thresholds = clf.match_thresholds()
    assert thresholds is not None and set(thresholds) == set(EMOTIONS)
    assert all(GRID[0] <= t <= GRID[-1] for t in thresholds.values())
    card = clf.meta["match"]
    assert "train" in card["chosen_on"] and "test" not in card["chosen_on"]
    assert clf.spec()["match"]["thresholds"] == {e: round(t, 4) for e, t in thresholds.items()}


def test_match_follows_the_thresholds_and_falls_back_to_forced_choice() -> None:
    texts = [
        "My hands would not stop shaking and my heart pounded the whole night.",
        "Wait, they moved the exam to today? I had no idea at all!",
        "What a lovely afternoon, everything went perfectly.",
    ]
    targets = ["fear", "surprise", "anger"]
    clf = get_classifier("minilm")
    thresholds = clf.match_thresholds()
    for scored, target in zip(clf.classify(texts, targets), targets, strict=True):
        assert scored["match"] == (scored["probs"][target] >= thresholds[target])
    assert all("match" not in s for s in clf.classify(texts))
    # A head without thresholds says so in its spec and answers with the forced choice.
    sev6 = get_classifier("minilm-sev6")
    assert sev6.match_thresholds() is None
    assert sev6.spec()["match"]["rule"].startswith("forced choice")
    for scored, target in zip(sev6.classify(texts, targets), targets, strict=True):
        assert scored["match"] == (scored["label"] == target)
    with pytest.raises(ValueError, match="3 texts but 2 targets"):
        clf.classify(texts, targets[:2])


def test_classify_command_adds_match_with_target_field(tmp_path: Path) -> None:
    lines = [
        {"text": "I keep checking the lock, what if someone gets in tonight?", "emotion": "fear"},
        {"text": "The meeting is at three in room B.", "emotion": "anger"},
    ]
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = emobench("classify", str(path), "--target_field", "emotion")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    thresholds = get_classifier("minilm").match_thresholds()
    assert len(out) == 2
    for row, line in zip(out, lines, strict=True):
        assert set(row) == {"text", "emotion", "label", "probs", "match"}
        assert (row["text"], row["emotion"]) == (line["text"], line["emotion"])  # echoed
        assert row["match"] == (row["probs"][line["emotion"]] >= thresholds[line["emotion"]])
    assert out[1]["match"] is False  # a bland line does not express anger

    path.write_text(json.dumps({"text": "fine", "emotion": "joy"}) + "\n")
    proc = emobench("classify", str(path), "--target_field", "emotion")
    assert proc.returncode != 0
    assert "--target_field 'emotion' names joy" in last_line(proc)

    path.write_text(json.dumps({"text": "fine"}) + "\n")
    proc = emobench("classify", str(path), "--target_field", "emotion")
    assert proc.returncode != 0
    assert f"{path}:1: no string field 'emotion'" in last_line(proc)

    # A field the verdict would overwrite (a gold `label`, as --target_field, say): every line
    # keeps its input whole under "input", and stderr says so.
    path.write_text(
        json.dumps({"text": "I am so angry", "label": "anger"})
        + "\n"
        + json.dumps({"text": "fine", "label": "neutral"})
        + "\n"
    )
    proc = emobench("classify", str(path), "--classifier", "minilm", "--target_field", "label")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["input"] for r in rows] == [
        {"text": "I am so angry", "label": "anger"},
        {"text": "fine", "label": "neutral"},
    ]
    assert all(set(r) == {"input", "label", "probs", "match"} for r in rows)
    assert f"note: {path} has a field named label, which emobench classify writes" in proc.stderr
