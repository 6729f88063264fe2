"""The `evaluate` metric module, loaded from its local path (no network)."""

import pytest

evaluate = pytest.importorskip("evaluate")


def test_emotion_accuracy_loads_locally_and_scores(tmp_path, monkeypatch):
    from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
    from emobench.hf_metric import metric_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    metric = evaluate.load(metric_path())
    texts = [
        "I'M SO HAPPY, THIS IS THE BEST NEWS I'VE HAD ALL YEAR!",
        "Tears-tears, my heart is broken.",
    ]
    refs = ["happiness", "fear"]
    out = metric.compute(predictions=texts, references=refs)
    expected = [s["label"] for s in get_classifier(DEFAULT_CLASSIFIER).classify(texts)]
    assert out["labels"] == expected
    assert out["accuracy"] == sum(p == r for p, r in zip(expected, refs, strict=True)) / 2
    with pytest.raises(ValueError, match="unknown reference label"):
        metric.compute(predictions=texts, references=["happiness", "boredom"])
