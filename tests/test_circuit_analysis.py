"""`emobench analyze circuit`: ablation against random controls, enhancement, plots, summary."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from emobench import EMOTIONS
from emobench.analysis.circuit import (
    KS,
    analyze_circuit,
    final_projection,
    random_masks,
    random_units,
    top_units,
    zeroing_hooks,
)
from emobench.discovery.circuit import discover_circuit
from emobench.hooks import hook_count, hook_points
from tests.helpers import emobench


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    return model, AutoTokenizer.from_pretrained(tiny_llama_dir)


def test_units_are_chosen_as_claimed():
    scores = torch.tensor([[0.1, 5.0, 0.2], [3.0, 0.0, 4.0]])
    assert top_units(scores, 3) == [(0, 1), (1, 2), (1, 0)]
    units = random_units((2, 3), 4, seed=1)
    assert len(set(units)) == 4 and all(0 <= a < 2 and 0 <= b < 3 for a, b in units)
    assert units == random_units((2, 3), 4, seed=1)  # seeded: the report is reproducible
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    shuffled = random_masks(mask, seed=0)
    assert shuffled.sum(-1).tolist() == mask.sum(-1).tolist()


def test_zeroing_every_neuron_of_a_block_removes_its_mlp(tiny):
    model, tokenizer = tiny
    points = hook_points(model)
    v = torch.randn(model.config.hidden_size)
    prompts = ["Hello there, how are you?", "A day at the park."]
    everything = [(1, n) for n in range(points[1].d_ff)]
    zeroed = final_projection(
        model, tokenizer, prompts, v, 2, zeroing_hooks(points, everything, "neurons")
    )

    def no_mlp(module, args, output):
        return torch.zeros_like(output)

    with torch.inference_mode():
        handle = model.get_submodule(points[1].mlp_down).register_forward_hook(no_mlp)
        try:
            expected = final_projection(model, tokenizer, prompts, v, 2)
        finally:
            handle.remove()
    torch.testing.assert_close(zeroed, expected)
    assert hook_count(model) == 0


def test_analysis_writes_json_plots_and_summary(tiny, tmp_path):
    model, tokenizer = tiny
    artifact = discover_circuit(
        model, tokenizer, "tiny", tmp_path / "c", limit_groups=2, probe_situations=3
    )
    result = analyze_circuit(
        model, tokenizer, artifact, tmp_path / "a", groups=2, seeds=2, generate=1, batch_size=6
    )
    assert hook_count(model) == 0
    saved = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert saved["ks"] == list(KS) and saved["seeds"] == 2
    for kind in ("neurons", "heads"):
        for emotion in EMOTIONS:
            rows = saved["ablation"][kind][emotion]
            assert len(rows["top"]) == len(KS) and [len(r) for r in rows["random"]] == [2] * 5
    enhancement = saved["enhancement"]["by_emotion"]["anger"]
    assert enhancement["circuit"] != 0.0 and len(enhancement["random"]) == 2
    assert set(result["generations"]) >= {"none", "top", "random"}
    for name in ("ablation.png", "sublayer_importance.png", "direction_cosines.png"):
        assert (tmp_path / "a" / name).stat().st_size > 10_000
    summary = (tmp_path / "a" / "summary.md").read_text()
    assert "| neurons | 16 |" in summary and "| heads | 1 |" in summary


def test_analyze_refuses_an_artifact_of_another_kind(tmp_path):
    from emobench.controllers.steer import SteerController

    proc = emobench(
        "analyze", "circuit", str(SteerController().artifact_path()), "--out", str(tmp_path)
    )
    assert proc.returncode == 2
    assert "holds 'emotion-directions', not 'emotion-circuit'" in proc.stderr
