"""A Hugging Face `evaluate` metric module for classifier-based expression accuracy.

    import evaluate
    from emobench.hf_metric import metric_path
    metric = evaluate.load(metric_path())
    metric.compute(predictions=["I am furious!"], references=["anger"])

`evaluate.load` of a local path needs no network (hub metrics such as "accuracy" do).
"""

from importlib.resources import files
from pathlib import Path


def metric_path() -> str:
    """The directory of the `emotion_accuracy` module, for `evaluate.load`."""
    return str(Path(str(files(__name__) / "emotion_accuracy")))
