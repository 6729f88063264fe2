"""The two real offline models: SmolLM2-135M-Instruct (Llama family, the default) and Gemma-3-270M.

Hook points resolve with the shapes each config states, a residual hook changes the logits and
leaves nothing attached, and on Gemma-3 (a second architecture: normalised sublayer outputs,
heads x head_dim != hidden) discovery and steering run end to end. The first run converts each
GGUF once into the emobench cache (about 45 s for Gemma on one core); later runs load in seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from emobench import EMOTIONS, artifacts
from emobench.chat import base_messages, render
from emobench.controller import create_controller
from emobench.data import load_docs
from emobench.discovery.activations import encode
from emobench.discovery.directions import discover_directions, prompted_replies
from emobench.hooks import hook_count, hook_points, hooked
from emobench.loading import load_model

pytestmark = pytest.mark.integration

SMOLLM2 = "embedded:smollm2-135m-instruct"
GEMMA = "embedded:gemma3-270m"
# What each config must say: (blocks, hidden, heads, head_dim, d_ff). Pinned so that a wrong file
# or a loader that mis-reads the GGUF metadata fails here, not in a benchmark run.
SHAPES = {SMOLLM2: (30, 576, 9, 64, 1536), GEMMA: (18, 640, 4, 256, 2048)}


@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple[Any, Any]]:
    """Each model loads once per module (Gemma takes a few seconds): name -> (model, tokenizer)."""
    return {}


def _load(loaded: dict[str, tuple[Any, Any]], name: str) -> tuple[Any, Any]:
    if name not in loaded:
        model, tokenizer, _ = load_model({"pretrained": name, "device": "cpu"})
        loaded[name] = (model, tokenizer)
    return loaded[name]


@pytest.fixture(params=sorted(SHAPES))
def real(request: pytest.FixtureRequest, loaded) -> tuple[str, Any, Any]:
    return (request.param, *_load(loaded, request.param))


@pytest.fixture
def gemma(loaded) -> tuple[Any, Any]:
    return _load(loaded, GEMMA)


def _ids(tokenizer: Any, text: str) -> dict[str, torch.Tensor]:
    return dict(encode(tokenizer, [text]))


def test_hook_points_have_the_shapes_of_the_config(real):
    name, model, tokenizer = real
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    stated = (
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        head_dim,
        config.intermediate_size,
    )
    assert stated == SHAPES[name]
    layers, hidden, heads, head_dim, d_ff = stated
    points = hook_points(model)
    assert len(points) == layers
    mid = points[layers // 2]
    assert mid.attn_out.endswith("self_attn.o_proj") and mid.mlp_down.endswith("mlp.down_proj")
    seen: dict[str, torch.Size] = {}

    def keep_input(key: str):
        def hook(module, args):
            seen[key] = args[0].shape

        return hook

    def keep_output(module, args, output):
        seen["block"] = (output[0] if isinstance(output, tuple) else output).shape

    pre = {
        mid.pre_mlp_norm: keep_input("post_attn"),
        mid.attn_out: keep_input("heads"),
        mid.mlp_down: keep_input("neurons"),
    }
    with torch.inference_mode(), hooked(model, forward={mid.block: keep_output}, forward_pre=pre):
        model(**_ids(tokenizer, "The weather changed suddenly."))
    assert hook_count(model) == 0
    assert seen["post_attn"][-1] == seen["block"][-1] == hidden
    assert seen["heads"][-1] == heads * head_dim
    assert seen["neurons"][-1] == d_ff


def test_a_residual_hook_changes_the_logits_and_is_removed(real):
    _, model, tokenizer = real
    points = hook_points(model)
    ids = _ids(tokenizer, "I found a letter under the door.")
    torch.manual_seed(0)
    push = torch.randn(model.config.hidden_size)

    def add(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        h[:, -1, :] += 4 * h[:, -1, :].norm() / h.shape[-1] ** 0.5 * push / push.norm()
        return output

    with torch.inference_mode():
        before = model(**ids).logits[0, -1]
        with hooked(model, forward={points[len(points) // 2].block: add}):
            assert hook_count(model) == 1
            steered = model(**ids).logits[0, -1]
        assert hook_count(model) == 0
        after = model(**ids).logits[0, -1]
    assert (steered - before).abs().max() > 1.0
    torch.testing.assert_close(after, before)


def test_gemma_is_a_base_model_whose_prompted_replies_stop_at_the_next_turn(gemma, sev_dir):
    model, tokenizer = gemma
    assert not getattr(tokenizer, "chat_template", None)  # so emobench uses its plain format
    docs = load_docs("train")[:2]
    replies = prompted_replies(model, tokenizer, docs, batch_size=2, max_new_tokens=24)
    assert all(r.strip() for r in replies)
    assert not any("\nUser:" in r or "\nSystem:" in r for r in replies)


def test_discovery_and_steering_work_on_gemma(gemma, tmp_path, test_docs):
    model, tokenizer = gemma
    layers, hidden = SHAPES[GEMMA][:2]
    out = discover_directions(
        model, tokenizer, GEMMA, tmp_path / "d", batch_size=12, limit_groups=2
    )
    tensors, meta = artifacts.load(out, model)  # no error: built for this model
    for point in ("post_attn", "post_block"):
        assert tensors[point].shape == (len(EMOTIONS), layers, hidden)
        torch.testing.assert_close(tensors[point].norm(dim=-1), torch.ones(len(EMOTIONS), layers))
    assert meta["model"]["model_type"] == "gemma3_text"
    assert meta["hook_points"]["post_attn"][0] == "model.layers.0.pre_feedforward_layernorm (input)"

    steer = create_controller("steer", alpha=8.0, artifact=str(out))
    doc = next(d for d in test_docs if d["target_emotion"] == "fear")
    prompt, _ = render(tokenizer, steer.messages(doc, base_messages(doc)))
    ids = _ids(tokenizer, prompt)
    greedy = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        plain = model.generate(**ids, **greedy)
        with steer.scope(model, "fear"):
            assert hook_count(model) == 7  # default layers 7-13 of 18 (the reference's share)
            steered = model.generate(**ids, **greedy)
    assert hook_count(model) == 0
    assert steered.shape[1] > ids["input_ids"].shape[1]
    assert not torch.equal(steered, plain)
