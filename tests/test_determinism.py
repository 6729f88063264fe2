"""Greedy replies do not depend on the batch size or on the run, for every built-in controller.

Left padding changes which positions a batch row attends over, but masked positions contribute
nothing, so the same prompt must give the same greedy text alone or in a batch of 3 or 8.
"""

from __future__ import annotations

import pytest

from emobench.controller import create_controller
from tests.helpers import GEN_KWARGS, make_requests

GEN = {**GEN_KWARGS, "max_gen_toks": 14}  # steer and circuit ask for at least 10 new tokens


# Strong settings, so that the steered text differs from the unsteered one.
STRENGTH = {"steer": {"alpha": 4.0}, "circuit": {"lam": 4.0}}


@pytest.mark.parametrize("name", ["none", "prompt", "steer", "circuit"])
def test_batch_size_does_not_change_greedy_text(name, tiny_lm_factory, test_docs, tiny_artifacts):
    docs = test_docs[:12]
    replies = {}
    for batch_size in (1, 3, 8):
        extra = (
            {"artifact": tiny_artifacts[name], **STRENGTH[name]} if name in tiny_artifacts else {}
        )
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
