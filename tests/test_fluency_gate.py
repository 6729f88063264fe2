"""Fluency (perplexity under the unsteered model) and the gate of quality-adjusted accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emobench.controller import create_controller
from emobench.errors import EmoBenchError
from emobench.hooks import hook_count
from emobench.scoring import fluency
from emobench.scoring.gate import (
    QualityGate,
    calibrate,
    calibrate_on_reference,
    gate_for,
    load_gate,
    write_gate,
)
from emobench.scoring.rescore import summarize
from tests.helpers import make_requests


def _manual_ppl(model, tokenizer, context: str, reply: str) -> float:
    ctx = tokenizer(context)["input_ids"]
    cont = tokenizer(reply, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits.float(), -1)[0]
    picked = [logp[len(ctx) + j - 1, tok] for j, tok in enumerate(cont)]
    return math.exp(-float(torch.stack(picked).mean()))


def test_perplexity_matches_a_manual_computation_in_mixed_batches(tiny_lm_factory):
    lm = tiny_lm_factory()
    contexts = ["Hello there.", "A much longer context about a walk in the park on a sunny day."]
    replies = ["I am so glad!", "Oh no, that is awful and I hate it."]
    batched = fluency.perplexities(lm.model, lm.tokenizer, contexts * 2, replies * 2, batch_size=3)
    for got, ctx, rep in zip(batched, contexts * 2, replies * 2, strict=True):
        assert got == pytest.approx(_manual_ppl(lm.model, lm.tokenizer, ctx, rep), rel=1e-4)
    assert fluency.perplexities(lm.model, lm.tokenizer, ["ctx"], [""]) == [None]
    with pytest.raises(ValueError, match="2 contexts but 1 replies"):
        fluency.perplexities(lm.model, lm.tokenizer, ["a", "b"], ["c"])


def test_fluency_is_measured_without_the_controllers_hooks(tiny_lm_factory, test_docs):
    docs = test_docs[:6]
    scramble = create_controller("tests.plugins_for_tests:ScrambleController")
    lm = tiny_lm_factory(controller=scramble, batch_size=3)
    requests = make_requests(docs)
    texts = lm.generate_until(requests)
    assert hook_count(lm.model) == 0
    contexts = [lm._rewrite(r).args[0] for r in requests]
    clean = fluency.perplexities(lm.model, lm.tokenizer, contexts, texts)
    with scramble.scope(lm.model, "anger"):
        steered = fluency.perplexities(lm.model, lm.tokenizer, contexts, texts)
    carried = [t.ppl for t in texts]  # the replies carry their perplexity to the scoring filter
    measured = [(r, c, s) for r, c, s in zip(carried, clean, steered, strict=True) if c]
    assert measured, "the tiny model produced only empty replies"
    for r, c, s in measured:
        assert r == pytest.approx(c, rel=1e-4)
        assert s != pytest.approx(c, rel=1e-2)  # the hook matters, so the check above can fail


def test_fluency_can_be_switched_off(tiny_lm_factory, test_docs):
    lm = tiny_lm_factory(measure_fluency="false")
    doc = dict(test_docs[7], key="fluency-off-probe")
    (text,) = lm.generate_until(make_requests([doc]))
    assert text.ppl is None


def _qualities(n: int, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "ppl": float(rng.lognormal(1.0, 0.4)),
            "distinct_2": float(rng.uniform(0.6, 1.0)),
            "relevance": float(rng.uniform(0.1, 0.9)),
        }
        for _ in range(n)
    ]


def test_calibration_takes_percentiles_and_passes_most_calibration_replies():
    qs = _qualities(400)
    gate = calibrate(qs, "some/model", {"samples": "x.jsonl"})
    assert gate.max_ppl == pytest.approx(np.percentile([q["ppl"] for q in qs], 95), abs=1e-3)
    assert gate.min_relevance == pytest.approx(
        np.percentile([q["relevance"] for q in qs], 5), abs=1e-3
    )
    # Three independent 5 % tails: about 0.95 ** 3 of the replies pass.
    assert 0.80 <= gate.calibration["pass_rate"] <= 0.90
    assert gate.calibration["n"] == 400
    with pytest.raises(EmoBenchError, match="at least 50"):
        calibrate(qs[:49], "some/model", {})
    with pytest.raises(EmoBenchError, match="at least 50"):
        calibrate([{**q, "ppl": None} for q in qs], "some/model", {})


def test_quality_adjusted_accuracy_counts_only_gated_correct_replies():
    gate = QualityGate("m", max_ppl=10.0, min_distinct_2=0.5, min_relevance=0.2)
    good = {"ppl": 3.0, "distinct_2": 0.9, "relevance": 0.5}
    gibberish = {"ppl": 50.0, "distinct_2": 0.9, "relevance": 0.5}
    looping = {"ppl": 1.5, "distinct_2": 0.2, "relevance": 0.5}
    off_topic = {"ppl": 3.0, "distinct_2": 0.9, "relevance": 0.0}
    targets = ["anger", "anger", "fear", "fear"]
    predicted = ["anger", "anger", "fear", "neutral"]
    docs = [
        {"key": f"doc{i}", "target_emotion": t, "valence": "neutral"} for i, t in enumerate(targets)
    ]

    def quality_adjusted(targets, predicted, qualities, gate):
        return summarize(docs, predicted, qualities, gate)["quality_adjusted"]

    qa = quality_adjusted(targets, predicted, [good, gibberish, looping, good], gate)
    assert qa["acc_qa"] == pytest.approx(1 / 4)
    assert qa["acc_qa_anger"] == pytest.approx(1 / 2)
    assert qa["acc_qa_fear"] == 0.0
    assert qa["gate_pass"] == pytest.approx(2 / 4)
    assert qa["fluent"] == pytest.approx(3 / 4)
    assert qa["varied"] == pytest.approx(3 / 4)
    assert gate.checks(off_topic) == {"fluent": True, "varied": True, "on_topic": False}
    # An empty reply has no perplexity to measure: it fails the gate rather than vanish.
    empty = {"ppl": None, "distinct_2": 1.0, "relevance": 0.3, "words": 0}
    assert gate.checks(empty) == {"fluent": False, "varied": True, "on_topic": True}
    # No perplexity measured (a stock lm-eval model) or no gate: no number rather than a guess.
    assert quality_adjusted(targets, predicted, [good, good, good, {}], gate)["acc_qa"] is None
    assert quality_adjusted(targets, predicted, [good] * 4, None)["acc_qa"] is None


def test_gate_lookup_prefers_the_user_cache_and_reports_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOBENCH_CACHE", str(tmp_path))
    assert gate_for("no/such-model") is None
    gate = QualityGate("no/such-model", max_ppl=9.0, min_distinct_2=0.7, min_relevance=0.1)
    path = write_gate(gate)
    assert path == tmp_path / "gates" / "no_such-model.json"
    assert gate_for("no/such-model") == gate
    path.write_text("{not json")
    with pytest.raises(EmoBenchError, match=str(path)):
        load_gate(path)


def test_the_embedded_model_ships_a_gate_calibrated_on_judged_reference_replies(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("EMOBENCH_CACHE", str(tmp_path))  # only the packaged gate is visible
    gate = gate_for("embedded:smollm2-135m-instruct")
    assert gate is not None
    assert gate.calibration["source"].startswith("judged/train_accepted.jsonl")
    assert gate.calibration["n"] == 600
    assert 0.8 <= gate.calibration["pass_rate"] <= 0.95
    assert gate.max_ppl > 1.0 and 0.0 < gate.min_distinct_2 <= 1.0


def test_calibration_on_reference_replies_with_a_tiny_model(tiny_lm_factory, sev_dir):
    lm = tiny_lm_factory()
    gate = calibrate_on_reference(lm.model, lm.tokenizer, "tiny", n=60, batch_size=8)
    assert gate.model == "tiny"
    assert gate.calibration["n"] == 60
    assert gate.calibration["every_nth"] > 1  # spread over the file, not its first lines
    # A random model finds real text very unlikely: the scale is the model's own.
    assert gate.max_ppl > 1000
    assert 0.8 <= gate.calibration["pass_rate"] <= 0.95
