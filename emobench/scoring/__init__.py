"""Scoring every controller the same way: reply quality (`quality`), fluency under the unsteered
model (`fluency`), the quality gate (`gate`), accuracy and its aggregations (`metrics`), and
re-scoring of saved runs (`rescore`). The classifiers themselves live in `emobench.classify`."""
