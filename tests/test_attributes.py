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
    fewest_discoveries,
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
    p, p_max = mantel_pvalues(rdms, concepts.attribute_rdms, rho, permutations=999, seed=0)
    assert float(p[0, k]) == pytest.approx(1 / 1000)  # no permutation beats it
    # Nor the best random neuron of any permutation; no random neuron beats those for valence.
    assert float(p_max[0, k]) == pytest.approx(1 / 1000)
    assert (p_max[1:, k] > 0.05).all()
    assert float(p[1:, k].median()) > 0.1  # random neurons are not discoveries
    found = benjamini_hochberg(p, q=0.05)
    assert bool(found[0, k]) and int(found[:, k].sum()) <= 3
    # Under the null the permutation p-values are roughly uniform.
    assert 0.3 < float(p[1:].median()) < 0.7


def test_mantel_discovers_nothing_in_noise() -> None:
    """2,000 random neurons carry no attribute: Benjamini-Hochberg on the permutation p-values
    passes none of them (p-values from a normal fitted to each neuron's permutations passed
    about 125 here: the permutation tails are heavier than a normal's), and the max statistic
    one pair of 28,000."""
    concepts = load_concepts()
    gen = torch.Generator().manual_seed(1)
    rdms = neuron_rdms(torch.randn(N_CONCEPTS, 2000, generator=gen))
    rho = spearman(rdms, concepts.attribute_rdms)
    p, p_max = mantel_pvalues(rdms, concepts.attribute_rdms, rho, permutations=300, seed=0)
    assert float(p.min()) == pytest.approx(1 / 301)  # the floor, reached by chance
    # Calibrated: about 5 % of null p-values at or below 0.05 (a fitted normal gave more).
    assert 0.04 <= float((p <= 0.05).float().mean()) <= 0.06
    assert int(benjamini_hochberg(p, q=0.05).sum()) == 0
    # The max statistic errs on an attribute at most 5 % of the time: about 0.7 of 14 here.
    assert int((p_max <= 0.05).sum()) <= 1
    # With 300 permutations, a discovery among 2,000 neurons needs 133 at the floor.
    assert fewest_discoveries(2000, 300, 0.05) == 133
    assert bool(benjamini_hochberg(torch.full((133, 1), 1 / 301), q=0.05).all())
    assert not benjamini_hochberg(
        torch.cat([torch.full((132, 1), 1 / 301), torch.ones(1868, 1)]), q=0.05
    ).any()


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
    # Each count in the meta is the sum of its mask.
    for k, attribute in enumerate(meta["attributes"]):
        counts = meta["counts"][attribute]
        assert counts["significant"] == int(tensors["significant"][k].sum())
        assert counts["max_statistic"] == int(tensors["significant_max_statistic"][k].sum())
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
    assert ctrl.spec()["effective"] == {
        "attribute": "valence",
        "top": 10,
        "discoveries": False,
        "random": None,
    }


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
    # Arguments that choose among an artifact's neurons would be ignored beside named ones.
    for extra in ({"random": 0}, {"top": 3}, {"artifact": "somewhere"}):
        with pytest.raises(EmoBenchError, match=f"{next(iter(extra))}= would be ignored"):
            create_controller("ablate", neurons="0:1", **extra)
    with pytest.raises(EmoBenchError, match="names 1:5 more than once"):
        create_controller("ablate", neurons="1:5,1:5,0:7")
    # No attribute artifact ships: said when the controller is built, not after the model loads.
    with pytest.raises(EmoBenchError, match="attribute=valence needs artifact=DIR"):
        create_controller("ablate", attribute="valence")


def test_concept_activations_do_not_depend_on_the_batch(tiny_llama_dir) -> None:
    """Left padding moves a row's absolute positions (GPT-2) unless each row gets its own."""
    from transformers import AutoTokenizer

    from emobench.discovery.attributes.build import concept_activations
    from tests.tiny_decoders import decoder

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    torch.manual_seed(0)
    gpt2 = decoder("gpt2", vocab=len(tokenizer)).eval()
    words = ("joy", "grief", "admiration", "a")
    one, _ = concept_activations(gpt2, tokenizer, words, batch_size=1)
    many, _ = concept_activations(gpt2, tokenizer, words, batch_size=32)
    assert torch.allclose(one, many, atol=1e-5)


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
    assert table[0].split()[:3] == ["attribute", "significant", "(FDR)"]
    assert [line.split()[0] for line in table[2 : 2 + len(meta["counts"])]] == list(meta["counts"])
    fewest = meta["recipe"]["fewest_discoveries"]
    assert table[-1].startswith(
        f"With these permutations, an attribute has either no discoveries or at least {fewest:,}"
    )
    lm.controller = create_controller("none")
    with caplog.at_level(logging.INFO, logger="emobench"):
        result = analyze_attributes(lm, path, tmp_path / "out", meta, limit=2, seeds=1)
    total = 1 + 2 * len(meta["attributes"])
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("condition ")]
    assert said[0] == f"condition 1 of {total}: no ablation"
    assert said[2] == f"condition 2 of {total}: {meta['attributes'][0]}: its top 100"
    assert said[-1].startswith(f"condition {total} of {total} done; about 0 min left")
    assert set(result["attributes"]) == set(meta["attributes"])
    # Knocked out: the top 100 by rho; the report says how many the discovery found significant.
    tensors, _ = artifacts.load(path, lm.model, kind="emotion-attributes")
    for k, attribute in enumerate(meta["attributes"]):
        top = tensors["ranking"][k, :100].long()
        in_top = int(tensors["significant"][k][top].sum())
        assert result["attributes"][attribute]["significant_in_top"] == in_top


def test_the_report_counts_the_discoveries_among_the_neurons_knocked_out() -> None:
    from emobench.analysis.attributes import _significant_in_top
    from emobench.discovery.attributes.build import tested_by_permutations

    meta = {"attributes": ["a", "b"]}
    ranking = torch.tensor([[3, 1, 0, 2], [0, 1, 2, 3]])
    significant = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 1]], dtype=torch.uint8)
    tensors = {"ranking": ranking, "significant": significant}
    assert _significant_in_top(tensors, meta, "a", 2) == 2  # neurons 3 and 1
    assert _significant_in_top(tensors, meta, "a", 1) == 1
    assert _significant_in_top(tensors, meta, "b", 3) == 0
    # An artifact of the fitted-normal test: its masks are not counted.
    assert _significant_in_top({"ranking": ranking}, meta, "a", 2) is None
    assert not tested_by_permutations({"recipe": {"test": "Mantel, ... normal"}})


def test_the_analysis_task_must_be_one_multiple_choice_task() -> None:
    """Refused before the baseline run: a tag of two tasks, a generation task, a typo."""
    from emobench.analysis.attributes import check_task

    check_task("goemotions_inference")
    for task, said in (
        ("emobench_inference", "a tag of several tasks"),
        ("sev_emotion", "a generate_until task"),
        ("goemotions_inferense", "not an lm-eval task"),
    ):
        with pytest.raises(EmoBenchError, match=f"--task {task}: {said}"):
            check_task(task)
