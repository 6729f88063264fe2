"""Shared fixtures: the real SEV data from ../shared, a tiny random model, the embedded model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_SEV = ROOT.parent / "shared" / "sev"

if "EMOBENCH_SEV_DIR" not in os.environ and SHARED_SEV.is_dir():
    os.environ["EMOBENCH_SEV_DIR"] = str(SHARED_SEV)


@pytest.fixture(scope="session")
def sev_dir() -> Path:
    path = Path(os.environ["EMOBENCH_SEV_DIR"])
    if not (path / "test.jsonl").is_file():
        pytest.fail(f"SEV data not found at {path}; set EMOBENCH_SEV_DIR (e.g. ../shared/sev)")
    return path


@pytest.fixture(scope="session")
def test_docs(sev_dir: Path) -> list[dict[str, str]]:
    from emobench.data import load_docs

    return load_docs("test")


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    from emobench import embedded

    return embedded.resolve(None)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Path:
    """A 2-layer random-initialised Llama with the embedded model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(embedded_dir)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_lm_factory(tiny_llama_dir: Path):
    from emobench.model import EmoBenchLM

    def make(controller: Any = "none", **kwargs: Any) -> EmoBenchLM:
        kwargs.setdefault("device", "cpu")
        return EmoBenchLM(pretrained=str(tiny_llama_dir), controller=controller, **kwargs)

    return make


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_lm_factory, tmp_path_factory) -> dict[str, str]:
    """steer directions and a circuit discovered on the tiny Llama (two groups each)."""
    from emobench.discovery.circuit import discover_circuit
    from emobench.discovery.directions import discover_directions

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
