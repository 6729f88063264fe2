"""The task works in stock lm-eval, with no emobench model: scoring lives in the task."""

import json

import pytest

from tests.helpers import lm_eval


def test_validate_passes():
    tasks = "sev_emotion,sev_emotion_train"
    proc = lm_eval("validate", "--include_path", "tasks", "--tasks", tasks)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.integration
def test_stock_hf_run_is_scored_by_the_same_classifier(tmp_path, embedded_dir):
    out = tmp_path / "out"
    proc = lm_eval(
        *f"run --model hf --model_args pretrained={embedded_dir} --device cpu".split(),
        *["--include_path", "tasks", "--tasks", "sev_emotion", "--limit", "6", "--batch_size", "6"],
        "--apply_chat_template",
        "--system_instruction",
        "Keep the reply to at most two sentences.",
        *f"--output_path {out} --log_samples".split(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    assert 0.0 <= results["results"]["sev_emotion"]["acc,classify"] <= 1.0
    (samples_file,) = out.rglob("samples_sev_emotion_*.jsonl")
    first = json.loads(samples_file.read_text().splitlines()[0])
    assert json.loads(first["filtered_resps"][0])["classifier"] == "minilm"
    prompt = first["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith(
        "<|im_start|>system\nKeep the reply to at most two sentences.<|im_end|>"
    )
