"""Attribute neurons (Li et al., iScience 2024): the human concept data, the per-neuron statistics,
the discovery on a tiny random model, and the `ablate` controller that knocks neurons out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from scipy.stats import spearmanr

from emobench import artifacts
from emobench.controller import create_controller
from emobench.discovery.attributes.concepts import N_CONCEPTS, N_PAIRS, load_concepts, pair_index
from emobench.discovery.attributes.rsa import (
    benjamini_hochberg,
    mantel_pvalues,
    neuron_rdms,
    spearman,
)
from emobench.errors import EmoBenchError
from emobench.hooks import hook_points, hooked


def test_human_concept_data_loads_in_lower_tri_order() -> None:
    concepts = load_concepts()
    assert len(concepts.names) == N_CONCEPTS and len(concepts.attributes) == 14
    assert concepts.attribute_rdms.shape == (N_PAIRS, 14)
    assert concepts.ratings.shape == (N_CONCEPTS, 14)
    # The valence dissimilarity of two concepts is the distance of their valence ratings (the
    # rescaled ratings keep the order): the pair layout must match R's lower.tri.
    rows, cols = pair_index()
    k = concepts.attributes.index("valence")
    from_ratings = np.abs(concepts.ratings[rows, k] - concepts.ratings[cols, k])
    assert spearmanr(from_ratings, concepts.attribute_rdms[:, k]).statistic > 0.95
    importance = concepts.importance()
    assert set(importance) == set(concepts.attributes)
    assert all(-1 <= v <= 1 for v in importance.values())


def test_spearman_matches_scipy_and_mantel_finds_a_planted_neuron() -> None:
    concepts = load_concepts()
    gen = torch.Generator().manual_seed(0)
    acts = torch.randn(N_CONCEPTS, 40, generator=gen)
    # Neuron 0 carries valence exactly: its activation is the concept's valence rating.
    k = concepts.attributes.index("valence")
    acts[:, 0] = torch.from_numpy(concepts.ratings[:, k]).float()
    rdms = neuron_rdms(acts)
    rho = spearman(rdms, concepts.attribute_rdms)
    for neuron in (0, 7):
        expected = spearmanr(rdms[:, neuron].numpy(), concepts.attribute_rdms[:, k]).statistic
        assert float(rho[neuron, k]) == pytest.approx(expected, abs=1e-5)
    empirical, p = mantel_pvalues(rdms, concepts.attribute_rdms, rho, permutations=199, seed=0)
    assert float(empirical[0, k]) == pytest.approx(1 / 200)  # no permutation beats it
    assert float(p[0, k]) < 1e-6  # far out in its fitted null
    assert float(empirical[1:, k].median()) > 0.1  # random neurons are not discoveries
    found = benjamini_hochberg(p, q=0.05)
    assert bool(found[0, k]) and int(found[:, k].sum()) <= 3
    # Under the null the fitted p-values are roughly uniform.
    assert 0.3 < float(p[1:].median()) < 0.7


def test_benjamini_hochberg_on_a_known_case() -> None:
    p = torch.tensor([[0.01], [0.04], [0.03], [0.20], [0.005]])
    # Sorted: 0.005, 0.01, 0.03, 0.04, 0.20 against 0.01, 0.02, 0.03, 0.04, 0.05: the first four
    # pass (the largest k with p_(k) <= q k / n is 4).
    assert benjamini_hochberg(p, q=0.05)[:, 0].tolist() == [True, True, True, False, True]
    assert not benjamini_hochberg(torch.tensor([[0.5], [0.9]]), q=0.05).any()


@pytest.fixture(scope="module")
def tiny_attributes(tiny_lm_factory, tmp_path_factory) -> tuple[object, str]:
    from emobench.discovery.attributes import discover_attributes

    lm = tiny_lm_factory()
    out = tmp_path_factory.mktemp("attributes") / "a"
    discover_attributes(lm.model, lm.tokenizer, "tiny", out, permutations=20, batch_size=16)
    return lm, str(out)


def test_discovery_writes_an_artifact_that_names_its_recipe(tiny_attributes) -> None:
    lm, path = tiny_attributes
    tensors, meta = artifacts.load(path, lm.model, kind="emotion-attributes")
    n_neurons = sum(p.d_ff for p in hook_points(lm.model))
    assert tensors["spearman"].shape == (14, n_neurons)
    assert tensors["ranking"].shape == (14, min(2000, n_neurons))
    # The ranking is by correlation, best first.
    k = meta["attributes"].index("arousal")
    ranked = tensors["spearman"][k][tensors["ranking"][k].long()]
    assert torch.all(ranked[:-1] >= ranked[1:])
    assert meta["recipe"]["templates"] and "Mantel" in meta["recipe"]["test"]
    assert meta["attribute_importance"]["values"].keys() == set(meta["attributes"])


def mlp_inputs(lm, text: str) -> dict[int, torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}

    def grab(layer: int):
        def hook(module, args):
            seen[layer] = args[0].detach().clone()

        return hook

    points = hook_points(lm.model)
    # Registered after the controller's hooks, so they see the ablated input.
    ids = lm.tokenizer(text, return_tensors="pt")
    with (
        torch.inference_mode(),
        hooked(lm.model, forward_pre={p.mlp_down: grab(p.index) for p in points}),
    ):
        lm.model(**ids)
    return seen


def test_ablate_zeroes_exactly_the_chosen_neurons(tiny_attributes) -> None:
    lm, path = tiny_attributes
    ctrl = create_controller("ablate", attribute="valence", top=10, artifact=path)
    control = create_controller("ablate", attribute="valence", top=10, random=3, artifact=path)
    again = create_controller("ablate", attribute="valence", top=10, random=3, artifact=path)
    chosen, random_set = ctrl.chosen(lm.model), control.chosen(lm.model)
    assert sum(map(len, chosen.values())) == 10
    # The control keeps the per-layer counts, takes other neurons, and is reproducible.
    assert {k: len(v) for k, v in chosen.items()} == {k: len(v) for k, v in random_set.items()}
    assert all(not set(chosen[k]) & set(random_set[k]) for k in chosen)
    assert random_set == again.chosen(lm.model)
    plain = mlp_inputs(lm, "I am so glad to see you")
    with ctrl.task_scope(lm.model):
        ablated = mlp_inputs(lm, "I am so glad to see you")
    for layer, x in ablated.items():
        assert torch.all(x[..., chosen.get(layer, [])] == 0)
    # Before the first ablated layer nothing changes, and in it only the chosen neurons.
    first = min(chosen)
    for layer in range(first):
        torch.testing.assert_close(ablated[layer], plain[layer])
    keep = [i for i in range(plain[first].shape[-1]) if i not in chosen[first]]
    torch.testing.assert_close(ablated[first][..., keep], plain[first][..., keep])
    assert not torch.equal(ablated[first], plain[first])
    assert ctrl.spec()["effective"] == {"attribute": "valence", "top": 10, "random": None}


def test_ablate_changes_log_likelihoods_and_steer_is_refused_there(
    tiny_attributes, tiny_lm_factory, tiny_artifacts
) -> None:
    lm, _ = tiny_attributes
    reqs = [
        Instance("loglikelihood", {}, ("The feeling was", " anger"), 0, ("t", 0, 1)),
        Instance("loglikelihood", {}, ("The feeling was", " joy"), 1, ("t", 0, 1)),
    ]
    lm.controller = create_controller("none")
    plain = [ll for ll, _ in lm.loglikelihood(reqs, disable_tqdm=True)]
    lm.controller = create_controller(
        "ablate", neurons=",".join(f"{layer}:{i}" for layer in (0, 1) for i in range(64))
    )
    ablated = [ll for ll, _ in lm.loglikelihood(reqs, disable_tqdm=True)]
    assert not np.allclose(plain, ablated)
    lm.controller = create_controller("none")
    assert [ll for ll, _ in lm.loglikelihood(reqs, disable_tqdm=True)] == pytest.approx(plain)
    steer = tiny_lm_factory("steer", controller_args={"artifact": tiny_artifacts["steer"]})
    with pytest.raises(EmoBenchError, match="log-likelihood tasks have none"):
        steer.loglikelihood(reqs, disable_tqdm=True)


def test_ablate_arguments_fail_with_the_fix() -> None:
    with pytest.raises(EmoBenchError, match="name what to zero"):
        create_controller("ablate")
    with pytest.raises(EmoBenchError, match="layer:index"):
        create_controller("ablate", neurons="12-345")
    with pytest.raises(EmoBenchError, match="not both"):
        create_controller("ablate", attribute="valence", neurons="1:2")


def test_the_attribute_analysis_says_which_condition_runs(tiny_attributes, tmp_path, caplog):
    """29 runs of the task, each with a progress bar of its own: a line names each one and the
    time left; the discovery's counts print as a table."""
    import json
    import logging

    from emobench.analysis.attributes import analyze_attributes
    from emobench.discovery.attributes import counts_table

    lm, path = tiny_attributes
    meta = json.loads(Path(path, "meta.json").read_text())
    table = counts_table(f"{path}/meta.json").splitlines()
    assert table[0].split()[:3] == ["attribute", "significant", "neurons"]
    assert [line.split()[0] for line in table[2:]] == list(meta["counts"])
    lm.controller = create_controller("none")
    with caplog.at_level(logging.INFO, logger="emobench"):
        result = analyze_attributes(lm, path, tmp_path / "out", meta, limit=2, seeds=1)
    total = 1 + 2 * len(meta["attributes"])
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("condition ")]
    assert said[0] == f"condition 1 of {total}: no ablation"
    assert said[2] == f"condition 2 of {total}: {meta['attributes'][0]}: its top 100"
    assert said[-1].startswith(f"condition {total} of {total} done; about 0 min left")
    assert set(result["attributes"]) == set(meta["attributes"])
