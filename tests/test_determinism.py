"""Greedy replies do not depend on the batch size or on the run, for every built-in controller.

Left padding changes which positions a batch row attends over, but masked positions contribute
nothing, so the same prompt must give the same greedy text alone or in a batch of 3 or 8.
"""

from __future__ import annotations

import pytest

from emobench.controller import create_controller
from emobench.discovery.circuit import discover_circuit
from emobench.discovery.directions import discover_directions
from tests.helpers import GEN_KWARGS, make_requests

GEN = {**GEN_KWARGS, "max_gen_toks": 14}  # steer and circuit ask for at least 10 new tokens


@pytest.fixture(scope="module")
def artifacts(tiny_lm_factory, tmp_path_factory) -> dict[str, str]:
    lm = tiny_lm_factory()
    out = tmp_path_factory.mktemp("artifacts")
    made = {
        "steer": discover_directions(
            lm.model, lm.tokenizer, "tiny", out / "d", batch_size=4, limit_groups=2
        ),
        "circuit": discover_circuit(
            lm.model, lm.tokenizer, "tiny", out / "c", limit_groups=2, probe_situations=3
        ),
    }
    return {name: str(path) for name, path in made.items()}


# Strong settings, so that the steered text differs from the unsteered one.
STRENGTH = {"steer": {"alpha": 4.0}, "circuit": {"lam": 4.0}}


@pytest.mark.parametrize("name", ["none", "prompt", "steer", "circuit"])
def test_batch_size_does_not_change_greedy_text(name, tiny_lm_factory, test_docs, artifacts):
    docs = test_docs[:12]
    replies = {}
    for batch_size in (1, 3, 8):
        extra = {"artifact": artifacts[name], **STRENGTH[name]} if name in artifacts else {}
        lm = tiny_lm_factory(
            controller=create_controller(name, **extra),
            batch_size=batch_size,
            measure_fluency=False,
        )
        replies[batch_size] = [str(r) for r in lm.generate_until(make_requests(docs, GEN))]
    assert replies[1] == replies[3] == replies[8]
    assert any(replies[1]), "the tiny model produced only empty replies"


def test_two_identical_runs_give_identical_replies(tiny_lm_factory, test_docs):
    lm = tiny_lm_factory(controller="prompt", batch_size=4)
    first = lm.generate_until(make_requests(test_docs[:6], GEN))
    second = lm.generate_until(make_requests(test_docs[:6], GEN))
    assert [str(r) for r in first] == [str(r) for r in second]
    assert [r.ppl for r in first] == [r.ppl for r in second]
