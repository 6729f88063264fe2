"""Tiny random-initialised decoders of every family the hooks support: hidden 32, d_ff 48, four
heads, a few blocks; small enough to run a forward pass in milliseconds."""

from __future__ import annotations

from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
)

FAMILIES = ("llama", "qwen2", "gemma3", "gpt2")


def decoder(family: str, layers: int = 3, vocab: int = 128, head_dim: int = 8) -> PreTrainedModel:
    """`head_dim` applies to Gemma-3 only, which sets it freely; the others get hidden / heads."""
    common = {
        "vocab_size": vocab,
        "num_hidden_layers": layers,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_attention_heads": 4,
    }
    if family == "llama":
        return LlamaForCausalLM(LlamaConfig(**common, num_key_value_heads=2))
    if family == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common, num_key_value_heads=2))
    if family == "gemma3":
        config = Gemma3TextConfig(**common, num_key_value_heads=1, head_dim=head_dim)
        return Gemma3ForCausalLM(config)
    if family == "gpt2":
        config = GPT2Config(
            vocab_size=vocab,
            n_layer=layers,
            n_embd=32,
            n_head=4,
            n_inner=48,
            bos_token_id=0,
            eos_token_id=0,
        )
        return GPT2LMHeadModel(config)
    raise ValueError(f"no tiny decoder for family {family!r}; one of {', '.join(FAMILIES)}")
