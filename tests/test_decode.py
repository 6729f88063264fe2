"""emobench.decode: greedy decoding in which finished replies leave the batch gives the replies of
transformers' generate, for every built-in controller's settings."""

from __future__ import annotations

import pytest

from emobench import decode
from emobench.controller import create_controller
from tests.helpers import GEN_KWARGS, make_requests
from tests.test_determinism import STRENGTH

GEN = {**GEN_KWARGS, "max_gen_toks": 14}


def _replies(lm, docs, gen) -> list[str]:
    return [str(r) for r in lm.generate_until(make_requests(docs, gen))]


@pytest.mark.parametrize("name", ["none", "prompt", "steer", "circuit"])
def test_fast_decoding_equals_generate(name, tiny_lm_factory, test_docs, tiny_artifacts):
    docs = test_docs[:12]
    extra = {"artifact": tiny_artifacts[name], **STRENGTH[name]} if name in tiny_artifacts else {}
    replies = {}
    for fast in (True, False):
        lm = tiny_lm_factory(
            controller=create_controller(name, **extra),
            batch_size=8,
            measure_fluency=False,
            fast_decode=fast,
        )
        replies[fast] = _replies(lm, docs, {**GEN, **lm.controller.generation_kwargs()})
    assert replies[True] == replies[False]
    assert any(replies[True])


@pytest.mark.integration
@pytest.mark.parametrize("name", ["prompt", "steer", "circuit"])
def test_fast_decoding_equals_generate_on_the_embedded_model(name, embedded_dir, test_docs):
    """The shipped steer and circuit artifacts and real replies, which end at the end of turn
    after differing numbers of tokens: rows leave the batch at different steps. A steered
    batch holds one emotion's rows: two target emotions make two batches of six rows."""
    from emobench.model import EmoBenchLM

    docs = test_docs[:12]
    if name != "prompt":
        docs = [d for d in test_docs if d["target_emotion"] in ("anger", "happiness")][:12]
    replies = {}
    for fast in (True, False):
        lm = EmoBenchLM(
            pretrained=str(embedded_dir),
            controller=name,
            batch_size=12,
            measure_fluency=False,
            fast_decode=fast,
            device="cpu",
        )
        gen = {**GEN_KWARGS, "max_gen_toks": 48, **lm.controller.generation_kwargs()}
        replies[fast] = _replies(lm, docs, gen)
    assert replies[True] == replies[False]
    if name == "prompt":
        assert len({len(r) for r in replies[True]}) > 1


def test_settings_it_does_not_reproduce_go_to_generate(tiny_lm_factory):
    model = tiny_lm_factory().model
    assert decode.plan(model, 5, {"do_sample": False, "temperature": 0.0}) is not None
    assert decode.plan(model, 5, {"do_sample": True, "temperature": 0.7}) is None
    assert decode.plan(model, 5, {"num_beams": 2}) is None
    assert decode.plan(model, 5, {"typical_p": 0.9}) is None
    built = decode.plan(model, 5, {"repetition_penalty": 1.1, "no_repeat_ngram_size": 3})
    assert [type(p).__name__ for p in built] == [
        "RepetitionPenaltyLogitsProcessor",
        "NoRepeatNGramLogitsProcessor",
    ]
