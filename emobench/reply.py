"""A generated reply that carries what the emobench model measured about it.

lm-eval hands a model's replies to the task's filters unchanged, so a `str` subclass is how the
model tells the scoring filter each reply's perplexity under the unsteered model and the quality
gate calibrated for that model, with no state outside the run. Under any other lm-eval model the
replies are plain strings: no perplexity, no gate, and the filter says so in its records.
"""

from __future__ import annotations

from typing import Any


class Reply(str):
    ppl: float | None
    gate: Any  # emobench.scoring.gate.QualityGate | None (kept untyped: no import cycle)

    def __new__(cls, text: str, ppl: float | None = None, gate: Any = None) -> Reply:
        reply = super().__new__(cls, text)
        reply.ppl = ppl
        reply.gate = gate
        return reply


def measured_ppl(text: str) -> float | None:
    return getattr(text, "ppl", None)


def quality_gate(text: str) -> Any:
    return getattr(text, "gate", None)
