"""Emotion directions (discovery, artifacts) and the `steer` controller."""

import json

import pytest
import torch

from emobench import EMOTIONS, artifacts
from emobench.controller import create_controller
from emobench.discovery.directions import directions, discover_directions
from emobench.errors import EmoBenchError
from emobench.hooks import hook_count
from tests.helpers import GEN_KWARGS, make_requests

# steer asks for at least 10 new tokens; leave room for them
STEER_GEN = {**GEN_KWARGS, "max_gen_toks": 12}


@pytest.fixture(scope="module")
def tiny_artifact(tiny_lm_factory, tmp_path_factory):
    lm = tiny_lm_factory()
    out = tmp_path_factory.mktemp("directions")
    return discover_directions(
        lm.model, lm.tokenizer, "tiny-llama", out, batch_size=4, limit_groups=2
    )


def test_directions_follow_the_recipe():
    torch.manual_seed(0)
    acts = torch.randn(3 * 6, 2, 5)  # 3 groups x 6 emotions, 2 layers, hidden 5
    v = directions(acts)
    grouped = acts.view(3, 6, 2, 5)
    mu = (grouped - grouped.mean(1, keepdim=True)).mean(0)
    expected = mu - mu.mean(0, keepdim=True)
    expected = expected / expected.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(v, expected)
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(6, 2))


def test_discovery_writes_a_described_artifact(tiny_artifact, tiny_lm_factory):
    lm = tiny_lm_factory()
    tensors, meta = artifacts.load(tiny_artifact, lm.model)
    assert tensors["post_block"].shape == (6, 2, 64)
    assert tensors["post_attn"].shape == (6, 2, 64)
    assert meta["data"]["split"] == "train" and meta["data"]["docs"] == 12
    assert meta["emotions"] == list(EMOTIONS)
    assert meta["model"]["num_hidden_layers"] == 2
    assert meta["hook_points"]["post_block"][0] == "model.layers.0 (output)"
    assert not list(tiny_artifact.glob("*.pt"))  # safetensors + JSON, never pickle


def test_an_artifact_for_another_model_is_refused(tiny_artifact, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    other = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    with torch.no_grad():
        other.model.layers[0].mlp.down_proj.weight.mul_(1.5)
    with pytest.raises(EmoBenchError, match="was built for tiny-llama"):
        artifacts.load(tiny_artifact, other)


def test_steer_changes_generation_and_cleans_up(tiny_lm_factory, tiny_artifact, test_docs):
    docs = test_docs[:6]
    plain = tiny_lm_factory(batch_size=6).generate_until(make_requests(docs, STEER_GEN))
    steer = create_controller("steer", alpha=8.0, layers="0-1", artifact=str(tiny_artifact))
    lm = tiny_lm_factory(controller=steer, batch_size=6)
    steered = lm.generate_until(make_requests(docs, STEER_GEN))
    assert steered != plain
    assert hook_count(lm.model) == 0
    spec = steer.spec()
    assert spec["args"] == {"alpha": 8.0, "layers": "0-1", "artifact": str(tiny_artifact)}
    assert spec["generation_kwargs"]["repetition_penalty"] == 1.05
    assert len(spec["artifact"]["sha256"]) == 64


def test_batch_1_and_batch_8_give_the_same_greedy_text(tiny_lm_factory, tiny_artifact, test_docs):
    docs = [d for d in test_docs[:48] if d["target_emotion"] == "anger"][:8]
    steer = create_controller("steer", alpha=4.0, layers="0-1", artifact=str(tiny_artifact))
    one = tiny_lm_factory(controller=steer, batch_size=1).generate_until(
        make_requests(docs, STEER_GEN)
    )
    eight = tiny_lm_factory(controller=steer, batch_size=8).generate_until(
        make_requests(docs, STEER_GEN)
    )
    assert one == eight


@pytest.mark.parametrize(("depth", "expected"), [(28, (11, 20)), (30, (12, 21)), (18, (7, 13))])
def test_default_layers_scale_with_depth(depth, expected):
    from emobench.controllers.steer import parse_layers

    assert parse_layers(None, depth) == expected
    assert parse_layers("3-5", depth) == (3, 5)
    with pytest.raises(EmoBenchError, match="out of range"):
        parse_layers(f"0-{depth}", depth)
    with pytest.raises(EmoBenchError, match="first-last"):
        parse_layers("middle", depth)


@pytest.mark.integration
def test_shipped_artifact_matches_the_embedded_model_and_rebuilds(embedded_dir, tmp_path):
    """The command that built the shipped artifact still works (on 2 groups) for the same model."""
    from emobench.controllers.steer import SteerController

    from emobench.loading import load_model
    from tests.helpers import emobench

    model, _, _ = load_model({})
    # built for this model: no error
    _, shipped = artifacts.load(SteerController().artifact_path(), model)
    proc = emobench("discover", "directions", "--limit_groups", "2", "--out", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rebuilt = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert rebuilt["model"] == shipped["model"]
    assert rebuilt["hook_points"] == shipped["hook_points"]
    assert rebuilt["data"]["sha256"] == shipped["data"]["sha256"]
    tensors, _ = artifacts.load(tmp_path / "d", model)
    assert tensors["post_block"].shape == (6, 30, 576)


def test_recommended_settings_fill_in_what_was_not_given(tiny_artifact, tmp_path):
    import shutil

    art = tmp_path / "art"
    shutil.copytree(tiny_artifact, art)
    plain = create_controller("steer", artifact=str(art))
    assert (plain.alpha, plain.layers) == (2.0, None)  # no recommendation: the fallbacks
    assert plain.spec()["effective"] == {"alpha": 2.0, "layers": "proportional"}
    (art / "recommended.json").write_text(json.dumps({"alpha": 3.5, "layers": "0-1"}))
    steer = create_controller("steer", artifact=str(art))
    assert (steer.alpha, steer.layers) == (3.5, "0-1")
    given = create_controller("steer", artifact=str(art), alpha=1.0)
    assert (given.alpha, given.layers) == (1.0, "0-1")
    (art / "recommended.json").write_text("alpha: 3")
    with pytest.raises(EmoBenchError, match=r"recommended\.json"):
        create_controller("steer", artifact=str(art))
