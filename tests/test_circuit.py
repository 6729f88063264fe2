"""Emotion circuits: the budget, the components, discovery on four families, the controller.

Tiny random-initialised models throughout (the embedded tokenizer, so the real SEV prompts run);
nothing of emobench is mocked.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from emobench.controllers.circuit import CircuitController, parse_lam
from transformers import AutoModelForCausalLM, AutoTokenizer

from emobench import EMOTIONS, artifacts
from emobench.controller import create_controller
from emobench.discovery.circuit import Budget, allocate, discover_circuit
from emobench.discovery.circuit.components import (
    attention_output_norm,
    difference_vectors,
    head_scores_ablated,
    head_scores_linear,
)
from emobench.discovery.directions import directions
from emobench.errors import EmoBenchError
from emobench.hooks import hook_count, hook_points, hooked, last_position
from tests.helpers import GEN_KWARGS, make_requests
from tests.tiny_decoders import decoder

# circuit asks for at least 10 new tokens; leave room for them
CIRCUIT_GEN = {**GEN_KWARGS, "max_gen_toks": 12}


# ---- the budget ----------------------------------------------------------------------------
def test_budget_defaults_follow_the_reference():
    assert Budget().totals(30) == (420, 180)  # 60 sublayers -> K = 600, 70 / 30
    assert Budget().totals(28) == (392, 168)
    with pytest.raises(EmoBenchError, match="cap"):
        Budget(cap=0.0)


def test_allocation_floors_totals_and_cap():
    importance = [5.0, 1.0, 0.0, -2.0, math.nan, 3.0]
    k = allocate(importance, 60, floor=4, cap=0.4, capacity=[100] * 6)
    assert sum(k) == 60
    assert all(x >= 4 for x in k)
    assert max(k) <= 24  # 40 % of 60
    assert k[2] == k[3] == k[4] == 4  # zero, negative and unmeasured importance: the floor only
    assert k[0] == 24  # capped; its excess went to the others in proportion
    assert k[5] > k[1]


def test_allocation_is_proportional_with_largest_remainder():
    # 20 left after floors of 2; shares 10 * (5, 3, 2) / 10 * 2 = 10, 6, 4 -> exact
    assert allocate([5, 3, 2], 26, floor=2, cap=1.0, capacity=[50] * 3) == [12, 8, 6]
    # 10 left, shares 3.33, 3.33, 3.33: the remainder goes to the earliest of equals
    assert allocate([1, 1, 1], 10, floor=0, cap=1.0, capacity=[50] * 3) == [4, 3, 3]


def test_allocation_without_positive_importance_shares_equally():
    assert allocate([0.0, -1.0, -3.0, 0.0], 20, floor=2, cap=0.4, capacity=[30] * 4) == [5] * 4


def test_allocation_respects_capacity_and_small_budgets():
    # 4 heads per layer, 3 layers: a budget of 18 cannot be placed; every head is taken
    assert allocate([1.0, 0.0, 0.0], 18, floor=2, cap=0.4, capacity=[4] * 3) == [4, 4, 4]
    # floors of 4 x 5 layers exceed a budget of 7: the floor shrinks to 1, the rest by weight
    k = allocate([0.0, 0.0, 9.0, 0.0, 0.0], 7, floor=4, cap=0.4, capacity=[10] * 5)
    assert sum(k) == 7 and min(k) == 1 and k[2] == 2  # the cap (floor(0.4 * 7) = 2) holds
    # two layers cannot stay under a 40 % cap: the cap yields, the total stays exact
    assert sum(allocate([3.0, 1.0], 28, floor=4, cap=0.4, capacity=[128] * 2)) == 28
    assert allocate([1.0], 0, floor=4, cap=0.4, capacity=[10]) == [0]


# ---- difference vectors ----------------------------------------------------------------------
def _rows(groups: list[tuple[str, str]], skip: set[tuple[str, str, str]] = frozenset()):
    keys = [(s, v, e) for s, v in groups for e in EMOTIONS if (s, v, e) not in skip]
    return keys, [(s, v) for s, v, _ in keys], [e for _, _, e in keys]


def test_difference_vectors_of_complete_groups_give_the_directions():
    torch.manual_seed(0)
    keys, groups, emotions = _rows([("s1", "positive"), ("s1", "negative"), ("s2", "neutral")])
    acts = torch.randn(len(keys), 3, 8)
    dmu = difference_vectors(acts, groups, emotions)
    grouped = acts.view(3, 6, 3, 8)
    torch.testing.assert_close(dmu, (grouped - grouped.mean(1, keepdim=True)).mean(0))
    v = dmu - dmu.mean(0, keepdim=True)
    torch.testing.assert_close(v / v.norm(dim=-1, keepdim=True), directions(acts))


def test_difference_vectors_group_by_skeleton_and_valence():
    """A situation's six prompts differ only in the instruction; two valences of one skeleton
    are two situations. With one prompt missing, grouping by skeleton alone mixes them."""
    torch.manual_seed(1)
    keys, groups, emotions = _rows(
        [("s1", "positive"), ("s1", "negative")], skip={("s1", "negative", "fear")}
    )
    acts = torch.randn(len(keys), 4)
    acts[[i for i, k in enumerate(keys) if k[1] == "negative"]] += 10.0  # valence shifts all
    dmu = difference_vectors(acts, groups, emotions)
    by_skeleton = difference_vectors(acts, [s for s, _ in groups], emotions)
    assert not torch.allclose(dmu, by_skeleton, atol=1e-3)
    # by hand, for fear (present in the positive group only) and anger (in both)
    h = {k: a for k, a in zip(keys, acts, strict=True)}
    pos = torch.stack([h["s1", "positive", e] for e in EMOTIONS]).mean(0)
    neg = torch.stack([h["s1", "negative", e] for e in EMOTIONS if e != "fear"]).mean(0)
    fear = EMOTIONS.index("fear")
    torch.testing.assert_close(dmu[fear], h["s1", "positive", "fear"] - pos)
    anger = ((h["s1", "positive", "anger"] - pos) + (h["s1", "negative", "anger"] - neg)) / 2
    torch.testing.assert_close(dmu[0], anger)


# ---- head importance ------------------------------------------------------------------------


def _ablation_drops(model, layer: int, v: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(n, H) drop of <residual after attention at the last token, v> when each head is zeroed
    in a real forward pass of the whole model."""
    point = hook_points(model)[layer]
    seen: dict[str, torch.Tensor] = {}

    def keep(module, args):
        seen["r"] = args[0][:, -1].detach().float()

    def zero(head: int):
        def hook(module, args):
            x = args[0].clone()
            x[..., point.head_slice(head)] = 0
            return (x,)

        return hook

    with torch.no_grad(), hooked(model, forward_pre={point.pre_mlp_norm: keep}):
        model(ids)
        base = seen["r"] @ v
        drops = []
        for h in range(point.n_heads):
            with hooked(model, forward_pre={point.attn_out: zero(h)}):
                model(ids)
            drops.append(base - seen["r"] @ v)
    return torch.stack(drops, dim=1)


def _o_proj_inputs(model, layer: int, ids: torch.Tensor) -> torch.Tensor:
    point = hook_points(model)[layer]
    seen = {}

    def keep(module, args):
        seen["x"] = args[0][:, -1].detach().float()

    with torch.no_grad(), hooked(model, forward_pre={point.attn_out: keep}):
        model(ids)
    return seen["x"]


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_linear_head_scores_equal_real_zero_ablation(family):
    torch.manual_seed(0)
    model = decoder(family, layers=2, head_dim=16).eval()
    assert all(attention_output_norm(model, p) is None for p in hook_points(model))
    ids = torch.randint(1, 128, (5, 7))
    v = torch.nn.functional.normalize(torch.randn(32), dim=0)
    point = hook_points(model)[1]
    o_proj = model.get_submodule(point.attn_out)
    x = _o_proj_inputs(model, 1, ids)
    linear = head_scores_linear(o_proj, x, v.expand(len(x), -1), point.n_heads)  # per sample
    torch.testing.assert_close(linear, _ablation_drops(model, 1, v, ids), rtol=1e-4, atol=1e-5)


def test_gemma3_head_scores_ablate_through_its_output_norm():
    """Gemma-3 normalises the attention output: the linear shortcut is wrong there, and
    discovery ablates through o_proj and post_attention_layernorm instead, exactly."""
    torch.manual_seed(0)
    model = decoder("gemma3", layers=2, head_dim=16).eval()
    point = hook_points(model)[1]
    norm = attention_output_norm(model, point)
    assert norm is model.model.layers[1].post_attention_layernorm
    ids = torch.randint(1, 128, (5, 7))
    v = torch.nn.functional.normalize(torch.randn(32), dim=0)
    x = _o_proj_inputs(model, 1, ids)
    real = _ablation_drops(model, 1, v, ids)
    o_proj = model.get_submodule(point.attn_out)
    emotions = ["anger"] * len(x)
    ablated = head_scores_ablated(o_proj, norm, x, v.expand(6, -1), emotions, point.n_heads)
    torch.testing.assert_close(ablated[0], real.mean(0), rtol=1e-4, atol=1e-5)
    linear = head_scores_linear(o_proj, x, v.expand(len(x), -1), point.n_heads)
    assert not torch.allclose(linear, real, atol=1e-3)


# ---- discovery -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_circuit(tiny_llama_dir, tmp_path_factory):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    out = tmp_path_factory.mktemp("circuit")
    return discover_circuit(
        model, tokenizer, "tiny-llama", out, batch_size=6, limit_groups=2, probe_situations=3
    )


def test_discovery_writes_a_described_artifact(tiny_circuit, tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    tensors, meta = artifacts.load(tiny_circuit, model, kind="emotion-circuit")
    assert meta["command"] == "emobench discover circuit --out DIR"
    assert meta["data"]["split"] == "train" and meta["data"]["docs"] == 12
    assert meta["recipe"]["grouping"] == "(skeleton_id, valence)"
    assert meta["recipe"]["sublayer_importance"]["alphas"] == [0.1, 0.3, 0.5, 0.7]
    assert meta["recipe"]["sublayer_importance"]["probe_situations"] == 2  # only 2 situations
    assert meta["recipe"]["head_scores"]["per_layer"] == ["linear", "linear"]
    assert set(meta["tensors"]) == set(tensors)
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    assert shapes["dmu_attn"] == (6, 2, 64) and shapes["dmu_mlp"] == (6, 2, 128)
    assert shapes["head_mask"] == (6, 2, 4) and shapes["neuron_mask"] == (6, 2, 128)
    assert shapes["sublayer_importance"] == (6, 2, 2) and shapes["sigma"] == (2, 2)
    assert all(torch.isfinite(t.float()).all() for t in tensors.values())
    # K = 10 x 4 sublayers = 40: 28 neurons; 12 heads asked, but the model has only 8
    assert (tensors["allocation"][..., 1].sum(-1) == 28).all()
    assert (tensors["allocation"][..., 0].sum(-1) == 8).all()
    assert (tensors["neuron_mask"].sum(-1) == tensors["allocation"][..., 1]).all()
    assert (tensors["head_mask"].sum(-1) == tensors["allocation"][..., 0]).all()
    # the chosen neurons are each layer's best scored
    scores, mask = tensors["neuron_scores"][0, 0], tensors["neuron_mask"][0, 0]
    assert scores[mask].min() >= scores[~mask].max()
    assert meta["circuit"]["anger"] == {"neurons": 28, "heads": 8}
    assert not list(tiny_circuit.glob("*.pt"))


@pytest.mark.parametrize("family", ["qwen2", "gemma3", "gpt2"])
def test_discovery_and_control_run_on_other_families(family, embedded_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    torch.manual_seed(0)
    model = decoder(family, layers=2, vocab=len(tokenizer), head_dim=16).eval()
    out = discover_circuit(
        model, tokenizer, family, tmp_path, batch_size=6, limit_groups=1, probe_situations=1
    )
    tensors, meta = artifacts.load(out, model, kind="emotion-circuit")
    width = 64 if family == "gemma3" else 32  # Gemma-3: 4 heads x 16
    assert tensors["dmu_attn"].shape == (6, 2, width)
    assert tensors["dmu_mlp"].shape == (6, 2, 48)
    method = "ablation" if family == "gemma3" else "linear"
    assert meta["recipe"]["head_scores"]["per_layer"] == [method, method]
    assert all(torch.isfinite(t.float()).all() for t in tensors.values())
    controller = CircuitController(artifact=str(out), lam=4.0)
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        plain = model(ids).logits
        with controller.scope(model, "fear"):
            edited = model(ids).logits
    assert hook_count(model) == 0
    assert not torch.allclose(plain, edited)


# ---- the controller --------------------------------------------------------------------------
def test_the_controller_edit_is_the_literal_input_edit(tiny_circuit, tiny_llama_dir):
    """lambda * dmu added neuron by neuron at the last position, head slice by head slice at
    every position: written out by hand here, it must give the very same logits."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    tensors, _ = artifacts.load(tiny_circuit)
    points = hook_points(model)
    lam, e = 0.8, EMOTIONS.index("anger")

    def neurons(layer: int):
        def hook(module, args):
            x = args[0].clone()
            for n in tensors["neuron_mask"][e, layer].nonzero().flatten().tolist():
                x[:, -1, n] += lam * tensors["dmu_mlp"][e, layer, n]
            return (x,)

        return hook

    def heads(layer: int):
        def hook(module, args):
            x = args[0].clone()
            for h in tensors["head_mask"][e, layer].nonzero().flatten().tolist():
                cut = points[layer].head_slice(h)
                x[..., cut] += lam * tensors["dmu_attn"][e, layer, cut]
            return (x,)

        return hook

    literal = {p.mlp_down: neurons(p.index) for p in points}
    literal |= {p.attn_out: heads(p.index) for p in points}
    ids = torch.tensor([[3, 50, 700, 9, 41, 12], [0, 0, 8, 1000, 77, 5]])
    mask = (ids != 0).long()
    controller = CircuitController(artifact=str(tiny_circuit))  # anger: 0.8, the reference's
    with torch.no_grad():
        plain = model(ids, attention_mask=mask).logits
        with hooked(model, forward_pre=literal):
            expected = model(ids, attention_mask=mask).logits
        with controller.scope(model, "anger"):
            got = model(ids, attention_mask=mask).logits
    assert torch.equal(got, expected)
    assert not torch.allclose(got, plain)
    assert hook_count(model) == 0


def test_last_position_heads_edit_only_the_last_position(tiny_circuit, tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    ids = torch.tensor([[3, 50, 700, 9, 41, 12]])
    last = CircuitController(artifact=str(tiny_circuit), positions="last", lam=2.0)
    every = CircuitController(artifact=str(tiny_circuit), lam=2.0)
    with torch.no_grad():
        plain = model(ids).logits
        with last.scope(model, "fear"):
            edited_last = model(ids).logits
        with every.scope(model, "fear"):
            edited_all = model(ids).logits
    torch.testing.assert_close(edited_last[:, :-1], plain[:, :-1])  # earlier positions untouched
    assert not torch.allclose(edited_last[:, -1], plain[:, -1])
    assert not torch.allclose(edited_all[:, :-1], plain[:, :-1])
    assert not torch.allclose(last_position(edited_last), last_position(edited_all))


def test_hooks_are_removed_even_when_generation_fails(tiny_circuit, tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    controller = CircuitController(artifact=str(tiny_circuit))
    with pytest.raises(RuntimeError, match="boom"), controller.scope(model, "sadness"):
        assert hook_count(model) > 0
        raise RuntimeError("boom")
    assert hook_count(model) == 0
    with pytest.raises(EmoBenchError, match="no circuit for 'boredom'"):
        controller.edits(model, "boredom")


def test_batch_1_and_batch_3_give_the_same_greedy_text(tiny_lm_factory, tiny_circuit, test_docs):
    docs = [d for d in test_docs[:36] if d["target_emotion"] in ("anger", "happiness")][:6]
    controller = create_controller("circuit", artifact=str(tiny_circuit), lam=3.0)
    one = tiny_lm_factory(controller=controller, batch_size=1, measure_fluency=False)
    three = tiny_lm_factory(controller=controller, batch_size=3, measure_fluency=False)
    texts = one.generate_until(make_requests(docs, CIRCUIT_GEN))
    assert texts == three.generate_until(make_requests(docs, CIRCUIT_GEN))
    plain = tiny_lm_factory(batch_size=3, measure_fluency=False)
    assert texts != plain.generate_until(make_requests(docs, CIRCUIT_GEN))
    assert hook_count(one.model) == 0


def test_lambda_arguments_resolve_and_bad_ones_fail(tiny_circuit, tmp_path):
    art = str(tiny_circuit)
    default = CircuitController(artifact=art)
    assert default.lam == {**dict.fromkeys(EMOTIONS, 1.0), "anger": 0.8}
    assert default.positions == "all"
    mixed = CircuitController(artifact=art, lam="0.5,fear:1.5", lam_sadness=0.25)
    assert mixed.lam == {**dict.fromkeys(EMOTIONS, 0.5), "fear": 1.5, "sadness": 0.25}
    assert parse_lam({"anger": 2}) == {"anger": 2.0}
    spec = create_controller("circuit", artifact=art, lam=0.7).spec()
    assert spec["effective"] == {"lam": dict.fromkeys(EMOTIONS, 0.7), "positions": "all"}
    assert spec["generation_kwargs"] == {
        "min_new_tokens": 10,
        "repetition_penalty": 1.1,
        "no_repeat_ngram_size": 3,
    }
    assert len(spec["artifact"]["sha256"]) == 64
    for bad, match in [
        ({"lam": float("nan")}, "lam must be a finite"),
        ({"lam": "anger:inf"}, r"lam \(anger\) must be a finite"),
        ({"lam_fear": float("-inf")}, "lam_fear must be a finite"),
        ({"lam": "rage:1"}, "unknown emotion 'rage'"),
        ({"lam": "loud"}, "lam='loud' is not a number"),
        ({"positions": "first"}, "positions must be one of all, last"),
    ]:
        with pytest.raises(EmoBenchError, match=match):
            CircuitController(artifact=art, **bad)
    # recommended.json fills in what was not given
    import shutil

    copy = tmp_path / "art"
    shutil.copytree(tiny_circuit, copy)
    (copy / "recommended.json").write_text(
        json.dumps({"lam": "0.6,anger:0.4", "positions": "last"})
    )
    rec = CircuitController(artifact=str(copy))
    assert rec.lam["anger"] == 0.4 and rec.lam["fear"] == 0.6 and rec.positions == "last"
    assert CircuitController(artifact=str(copy), lam=1.0).lam["anger"] == 1.0


def test_a_directions_artifact_is_not_a_circuit(tmp_path):
    from emobench.controllers.steer import SteerController

    with pytest.raises(EmoBenchError, match="not 'emotion-circuit'"):
        CircuitController(artifact=str(SteerController().artifact_path()))


@pytest.mark.integration
def test_shipped_circuit_matches_the_embedded_model(embedded_dir):
    """The shipped artifact was built for the embedded SmolLM2 and holds the reference budget."""
    from emobench.loading import load_model

    model, _, _ = load_model({})
    controller = CircuitController()
    tensors, meta = controller.load_artifact(model)  # built for this model: no error
    assert meta["data"]["docs"] == 2880  # the whole train split
    assert tensors["dmu_attn"].shape == (6, 30, 576)
    assert tensors["dmu_mlp"].shape == (6, 30, 1536)
    assert all(c == {"neurons": 420, "heads": 180} for c in meta["circuit"].values())
    with controller.scope(model, "happiness"):
        assert hook_count(model) > 0
    assert hook_count(model) == 0
