"""emotion_accuracy: share of texts whose emotion, read by an emobench classifier, is the reference.

Predictions are generated texts; references are target emotions (anger, sadness, happiness, fear,
surprise, disgust). The classifier (unless named, emobench's default: the one every emobench run
uses) scores all predictions in one batch. Returns accuracy, macro-F1 over the classifier's
labels and the predicted labels.
"""

import datasets
import evaluate

from emobench import EMOTIONS
from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.scoring.metrics import macro_f1

_CITATION = """\
@article{wang2025emotioncircuits,
  title={Do LLMs "Feel"? Emotion Circuits Discovery and Control},
  author={Wang and others},
  journal={arXiv preprint arXiv:2510.11328},
  year={2025}
}
"""

_KWARGS = f"""
Args:
    predictions: list of generated texts.
    references: list of target emotions, one per text.
    classifier: emobench classifier plugin name (default "{DEFAULT_CLASSIFIER}").
Returns:
    accuracy: share of texts classified as their reference emotion.
    macro_f1: unweighted mean F1 over the classifier's labels present.
    labels: the predicted label of each text.
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS)
class EmotionAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, classifier=DEFAULT_CLASSIFIER):
        clf = get_classifier(classifier)
        clf.require_labels(EMOTIONS)
        unknown = sorted(set(references) - set(clf.labels))
        if unknown:
            raise ValueError(
                f"unknown reference label(s) {', '.join(unknown)}; use: {', '.join(clf.labels)}"
            )
        labels = [s["label"] for s in clf.classify(list(predictions))]
        hits = [p == r for p, r in zip(labels, references, strict=True)]
        return {
            "accuracy": sum(hits) / len(hits) if hits else float("nan"),
            "macro_f1": macro_f1(list(references), labels, list(clf.labels)),
            "labels": labels,
        }
