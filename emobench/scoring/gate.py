"""The quality gate behind quality-adjusted accuracy.

Quality-adjusted accuracy counts a reply as correct only if the classifier reads the target
emotion in it AND it passes the gate: fluent (perplexity under the unsteered model, given the
prompt, at most `max_ppl`), not degenerate (distinct-2 at least `min_distinct_2`) and on topic
(relevance to its situation at least `min_relevance`).

The thresholds are calibrated per model on *prompt outputs that are known to be good*: the
reference model's replies to the prompting prompts of the SEV train split that the reference's
judge accepted (`judged/train_accepted.jsonl`: Llama-3.2-3B-Instruct, fluent, on topic and
expressing their target emotion). Each reply is measured as a run measures its own: perplexity
under the model being calibrated given the `prompt` controller's prompt for that doc, distinct-2
and relevance from the text. Each threshold is the 5th percentile on the side of "worse" (95th
for perplexity), so nine in ten such replies pass and a steered reply fails only when it is
worse than nearly all of them.

Why not the model's own `prompt` replies: they are its greedy output, the text it finds most
likely, so their perplexity sets a bar that any reply the model would not have written itself
fails, however fluent; a small model's own replies also loop (SmolLM2-135M: 5th-percentile
distinct-2 of 0.13), which would wave degenerate text through.

    emobench calibrate-gate [--model_args pretrained=<HF id or dir>] [--n 600]

writes the gate to the user cache (`--out` elsewhere); the embedded model's gate ships with the
package (emobench/scoring/gates/). A model with no gate gets no quality-adjusted accuracy (NaN and a
warning naming the command), rather than thresholds calibrated on another model's perplexities.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from emobench import __version__
from emobench.errors import EmoBenchError
from emobench.paths import cache_dir

log = logging.getLogger(__name__)

PERCENTILE = 5.0


@dataclasses.dataclass(frozen=True)
class QualityGate:
    model: str
    max_ppl: float
    min_distinct_2: float
    min_relevance: float
    calibration: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def checks(self, quality: Mapping[str, Any]) -> dict[str, bool] | None:
        """Which criteria a reply meets; None when its perplexity was never measured. An empty
        reply has no perplexity (no tokens) and is not fluent: it fails rather than vanish."""
        ppl = quality.get("ppl")
        if "relevance" not in quality or "distinct_2" not in quality:
            return None
        if ppl is None and quality.get("words") != 0:
            return None
        return {
            "fluent": ppl is not None and float(ppl) <= self.max_ppl,
            "varied": float(quality["distinct_2"]) >= self.min_distinct_2,
            "on_topic": float(quality["relevance"]) >= self.min_relevance,
        }

    def passes(self, quality: Mapping[str, Any]) -> bool | None:
        checks = self.checks(quality)
        return None if checks is None else all(checks.values())

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")


def _candidates(model: str) -> list[Path]:
    name = f"{slug(model)}.json"
    return [cache_dir() / "gates" / name, Path(str(files("emobench.scoring.gates") / name))]


def gate_for(model: str) -> QualityGate | None:
    """The model's calibrated gate: the user cache first, then the one shipped for it."""
    for path in _candidates(model):
        if path.is_file():
            return load_gate(path)
    return None


def load_gate(path: str | Path) -> QualityGate:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return QualityGate(**data)
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise EmoBenchError(
            f"{path}: not a quality gate ({exc}); recreate it with `emobench calibrate-gate`"
        ) from exc


def calibrate(
    qualities: Sequence[Mapping[str, Any]], model: str, provenance: Mapping[str, Any]
) -> QualityGate:
    """Thresholds at the PERCENTILE-th worst value of each measure over `qualities`."""
    measured = [q for q in qualities if q.get("ppl") is not None]
    if len(measured) < 50:
        raise EmoBenchError(
            f"{len(measured)} replies with a measured perplexity; a gate needs at least 50 "
            "(run the prompt controller with the emobench model on more docs)"
        )
    ppl = np.array([float(q["ppl"]) for q in measured])
    d2 = np.array([float(q["distinct_2"]) for q in measured])
    rel = np.array([float(q["relevance"]) for q in measured])
    gate = QualityGate(
        model=model,
        max_ppl=round(float(np.percentile(ppl, 100 - PERCENTILE)), 4),
        min_distinct_2=round(float(np.percentile(d2, PERCENTILE)), 4),
        min_relevance=round(float(np.percentile(rel, PERCENTILE)), 4),
        calibration={
            **provenance,
            "n": len(measured),
            "percentile": PERCENTILE,
            "emobench_version": __version__,
        },
    )
    passed = [gate.passes(q) for q in measured]
    gate.calibration["pass_rate"] = round(sum(map(bool, passed)) / len(passed), 4)
    return gate


def calibrate_on_reference(
    model: Any, tokenizer: Any, model_name: str, n: int = 600, batch_size: int = 16
) -> QualityGate:
    """The gate of `model` from `n` judged-accepted reference replies spread over SEV train."""
    from emobench.chat import base_messages, render
    from emobench.classify.train import judged_dir
    from emobench.controller import create_controller
    from emobench.data import file_sha256
    from emobench.jsonl import read_jsonl
    from emobench.scoring.fluency import perplexities
    from emobench.scoring.quality import measure_quality

    source = judged_dir() / "train_accepted.jsonl"
    records = [rec for _, rec in read_jsonl(source)]
    step = max(1, len(records) // n)
    chosen = records[::step][:n]
    docs = [
        {
            "key": r["key"],
            "scenario": r["scenario"],
            "event": r["event"],
            "valence": r["valence"],
            "target_emotion": r["emotion"],
        }
        for r in chosen
    ]
    texts = [r["gen_text"] for r in chosen]
    prompt = create_controller("prompt")
    contexts = [render(tokenizer, prompt.messages(d, base_messages(d)))[0] for d in docs]
    qualities = measure_quality(docs, texts)
    ppl = perplexities(model, tokenizer, contexts, texts, batch_size=batch_size)
    for q, p in zip(qualities, ppl, strict=True):
        q["ppl"] = p
    return calibrate(
        qualities,
        model_name,
        {
            "source": f"judged/{source.name} (reference replies the judge accepted)",
            "source_sha256": file_sha256(source),
            "every_nth": step,
            "prompt": "the prompt controller's prompt for each doc",
        },
    )


def write_gate(gate: QualityGate, out: str | Path | None = None) -> Path:
    path = Path(out) if out else _candidates(gate.model)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(gate.to_json(), indent=2) + "\n")
    return path


def describe(gate: QualityGate | None) -> dict[str, Any] | None:
    """The thresholds and a hash of the gate, for the record of a run (calibration left out)."""
    if gate is None:
        return None
    return {k: v for k, v in gate.to_json().items() if k != "calibration"} | {
        "sha256": gate_hash(gate)
    }


def gate_hash(gate: QualityGate) -> str:
    body = json.dumps(gate.to_json(), sort_keys=True).encode()
    return hashlib.sha256(body).hexdigest()[:8]
