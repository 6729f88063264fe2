"""Hook points resolve on every supported decoder family, and read what they claim to read.

Tiny random-initialised configs of Llama, Gemma-3, Qwen2 and GPT-2; the embedded SmolLM2 too.
"""

import pytest
import torch

from emobench.errors import EmoBenchError
from emobench.hooks import hook_count, hook_points, hooked, projection_weight
from tests.tiny_decoders import decoder

# (d_ff, heads x head_dim, the MLP's contribution is added to the residual unnormalised)
FAMILIES = {
    "llama": (48, 32, True),
    "qwen2": (48, 32, True),
    "gpt2": (48, 32, True),
    "gemma3": (48, 32, False),  # Gemma-3 normalises the MLP output before adding it
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_hook_points_read_the_residual_stream(family):
    d_ff, attn_width, plain_residual = FAMILIES[family]
    torch.manual_seed(0)
    model = decoder(family).eval()
    points = hook_points(model)
    assert len(points) == 3
    seen: dict[str, torch.Tensor] = {}

    def keep_input(name):
        def hook(module, args):
            seen[name] = args[0].detach()

        return hook

    def keep_output(name):
        def hook(module, args, output):
            seen[name] = (output[0] if isinstance(output, tuple) else output).detach()

        return hook

    p = points[1]
    pre = {
        p.pre_mlp_norm: keep_input("mid"),
        p.attn_out: keep_input("heads"),
        p.mlp_down: keep_input("neurons"),
    }
    post = {p.block: keep_output("block"), p.mlp_down: keep_output("down")}
    with torch.no_grad(), hooked(model, forward=post, forward_pre=pre):
        model(torch.tensor([[1, 5, 9, 2]]))
    assert hook_count(model) == 0
    assert seen["heads"].shape[-1] == attn_width == p.n_heads * p.head_dim
    assert p.n_heads == 4
    assert seen["neurons"].shape[-1] == d_ff == p.d_ff
    assert seen["mid"].shape == seen["block"].shape
    if plain_residual:
        # residual after the block = residual after attention + the MLP's output
        torch.testing.assert_close(seen["block"], seen["mid"] + seen["down"], rtol=1e-4, atol=1e-5)


def test_gemma3_heads_need_not_fill_the_hidden_size():
    """Gemma-3 sets head_dim freely: 4 heads x 16 = 64 inputs to o_proj, hidden size 32."""
    model = decoder("gemma3", head_dim=16)
    point = hook_points(model)[0]
    assert (point.n_heads, point.head_dim, point.d_ff) == (4, 16, 48)
    assert point.head_slice(3) == slice(48, 64)
    with pytest.raises(EmoBenchError, match="heads 0-3, not 4"):
        point.head_slice(4)


def test_gpt2_conv1d_projection_is_read_as_out_by_in():
    model = decoder("gpt2")
    point = hook_points(model)[0]
    down = dict(model.named_modules())[point.mlp_down]
    assert projection_weight(down).shape == (32, 48)  # Conv1D stores (in, out)
    x = torch.randn(2, 48)
    torch.testing.assert_close(down(x), x @ projection_weight(down).t() + down.bias)


def test_a_config_that_misstates_the_heads_is_refused():
    model = decoder("llama")
    model.config.num_attention_heads = 8  # o_proj still takes 4 heads x 8 = 32 inputs
    with pytest.raises(
        EmoBenchError, match=r"takes 32 inputs, but the config says 8 heads x 8 = 64"
    ):
        hook_points(model)


def test_a_pre_mlp_norm_that_reads_another_tensor_is_refused():
    """Names alone resolve on GPT-NeoX and OLMo2, but there `post_attention_layernorm` reads the
    block's input (a parallel residual) or the raw attention output (OLMo2 normalises it before
    the residual): one forward pass shows it, and the model is refused rather than misread."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, Olmo2Config, Olmo2ForCausalLM

    common = {
        "vocab_size": 128,
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_attention_heads": 4,
    }
    torch.manual_seed(0)
    with pytest.raises(EmoBenchError, match="reads the block's input"):
        hook_points(GPTNeoXForCausalLM(GPTNeoXConfig(**common)).eval())
    with pytest.raises(EmoBenchError, match="reads the attention output before it joins"):
        hook_points(Olmo2ForCausalLM(Olmo2Config(**common)).eval())
    sequential = GPTNeoXForCausalLM(GPTNeoXConfig(**common, use_parallel_residual=False)).eval()
    assert len(hook_points(sequential)) == 2
    assert hook_count(sequential) == 0  # the check's hooks are gone


def test_unknown_architectures_fail_clearly():
    with pytest.raises(EmoBenchError, match="cannot find the decoder layers"):
        hook_points(torch.nn.Sequential(torch.nn.Linear(2, 2)))


@pytest.mark.integration
def test_embedded_smollm2_hook_points(embedded_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(embedded_dir)
    points = hook_points(model)
    assert len(points) == 30
    assert points[13].attn_out == "model.layers.13.self_attn.o_proj"
    assert points[13].mlp_down == "model.layers.13.mlp.down_proj"
    assert points[13].pre_mlp_norm == "model.layers.13.post_attention_layernorm"
