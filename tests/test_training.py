"""The training data paths: GoEmotions mapping, augmentations, judged files (real files)."""

import json
import random

import pytest

from emobench.classify.augment import AUGMENTATIONS, augment
from emobench.classify.goemotions import EKMAN, FINE_TO_EKMAN, load_single_label
from emobench.classify.train import expected_calibration_error, load_judged
from emobench.errors import DataError


def test_goemotions_mapping_covers_all_28_labels():
    assert len(FINE_TO_EKMAN) == 28
    assert set(EKMAN) == {"anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"}


def test_goemotions_single_label_loader(sev_dir):
    texts, labels = load_single_label(sev_dir.parent / "goemotions" / "dev.csv")
    assert len(texts) == len(labels) > 4000
    assert set(labels) == set(EKMAN)


def test_goemotions_bad_file_names_the_line(tmp_path):
    header = "text,classes,ids," + ",".join(FINE_TO_EKMAN)
    path = tmp_path / "dev.csv"
    zeros = ",".join("0" for _ in FINE_TO_EKMAN)
    path.write_text(f"{header}\nhello,27,a,{zeros[:-1]}1\n,1,b,{zeros}\n")
    with pytest.raises(DataError, match=rf"{path}:3: a row needs a text and at least one label"):
        load_single_label(path)


def test_augmentations_keep_labels_and_change_text():
    texts = ["I am absolutely furious that nobody listened to a single word I said today."] * 40
    out_t, out_l = augment(texts, ["anger"] * 40, share=0.5, seed=1)
    assert set(out_l) == {"anger"}
    assert len(out_t) > 40
    rng = random.Random(0)
    for fn in AUGMENTATIONS:
        assert fn(texts[0], rng) != texts[0], fn.__name__


def test_judged_loader_rejects_bad_lines(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"gen_text": "x", "emotion": "boredom", "skeleton_id": "a"}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: unknown emotion 'boredom'"):
        load_judged(path)


def test_ece_is_zero_when_confidence_matches_accuracy():
    import numpy as np

    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, np.array([1, 1, 1, 0])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 0])) == pytest.approx(0.75)
