"""The task works in stock lm-eval, with no emobench model: scoring lives in the task."""

import json
from pathlib import Path

import pytest
from emobench.leaderboard.render import collect

from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.record import foreign_record
from tests.helpers import emobench, last_line, lm_eval, strict_json


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
    assert json.loads(first["filtered_resps"][0])["classifier"] == DEFAULT_CLASSIFIER
    # The results name no classifier; the task version says which default scored them, and
    # the task's own aggregation which head: the run ranks beside emobench runs of that head.
    head = get_classifier(DEFAULT_CLASSIFIER).spec()["head"]["sha256"]
    assert foreign_record(results, "sev_emotion")["classifier"] == {
        "name": DEFAULT_CLASSIFIER,
        "head": {"sha256": head},
    }
    (row,) = collect([results_file])
    assert row["classifier"] == f"{DEFAULT_CLASSIFIER}@{head[:8]}"
    old = {"configs": {"sev_emotion": {"metadata": {"version": 2.0}}}}
    assert foreign_record(old, "sev_emotion")["classifier"]["name"] == "minilm"
    before = {"configs": {"sev_emotion": {"metadata": {"version": 3.2}}}}
    assert foreign_record(before, "sev_emotion")["classifier"]["name"] == "minilm-ft"
    prompt = first["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith(
        "<|im_start|>system\nKeep the reply to at most two sentences.<|im_end|>"
    )


def test_stock_lm_eval_with_the_emobench_model_equals_emobench(tmp_path, tiny_llama_dir):
    """The same --limit run through `lm_eval run --model emobench` and through `emobench`:
    the same replies, verdicts, metrics and record of what ran."""
    common = ["--limit", "6", "--batch_size", "3", "--device", "cpu", "--log_samples"]
    task_file = emobench("tasks-path", "sev_emotion").stdout.strip()
    model_args = {
        "pretrained": str(tiny_llama_dir),
        "controller": "prompt",
        "controller_args": {"template": "Be {emotion}."},
        "classifier": "minilm",
    }
    stock = lm_eval(
        "run",
        *["--model", "emobench", "--model_args", json.dumps(model_args)],
        *["--tasks", task_file, "--output_path", str(tmp_path / "stock"), *common],
    )
    assert stock.returncode == 0, stock.stderr[-3000:]
    ours = emobench(
        *["--controller", "prompt", "--controller_args", "template=Be {emotion}."],
        *["--model_args", f"pretrained={tiny_llama_dir}", "--classifier", "minilm"],
        *["--tasks", "sev_emotion", "--output_path", str(tmp_path / "ours"), *common],
    )
    assert ours.returncode == 0, ours.stderr[-3000:]
    runs = []
    for name in ("stock", "ours"):
        (results_file,) = (tmp_path / name).rglob("results_*.json")
        (samples_file,) = (tmp_path / name).rglob("samples_sev_emotion_*.jsonl")
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        # Strict: a measure with no value (no gate for a tiny model) is null, not a bare NaN.
        runs.append((strict_json(results_file.read_text()), samples))
    (stock_results, stock_samples), (our_results, our_samples) = runs
    metrics = stock_results["results"]["sev_emotion"]
    assert metrics.keys() == our_results["results"]["sev_emotion"].keys()
    for key, value in metrics.items():
        assert value == our_results["results"]["sev_emotion"][key], key
    for key in ("macro_f1,classify", "confusion,classify", "acc_qa,classify"):
        assert key in metrics  # the task's own aggregations, whichever command ran it
    assert metrics["acc_qa,classify"] is None  # no calibrated gate for a random model
    record = stock_results["config"]["emobench"]
    assert record == our_results["config"]["emobench"]
    assert record["controller"]["name"] == "prompt"
    assert record["controller"]["args"] == {"template": "Be {emotion}."}
    assert record["classifier"]["name"] == "minilm"
    assert [s["filtered_resps"] for s in stock_samples] == [
        s["filtered_resps"] for s in our_samples
    ]
    first = json.loads(stock_samples[0]["filtered_resps"][0])
    assert first["quality"]["ppl"] is not None  # measured by the model, carried on the reply


def test_tasks_path_is_what_stock_lm_eval_includes():
    proc = emobench("tasks-path")
    assert proc.returncode == 0, proc.stderr
    assert (Path(proc.stdout.strip()) / "sev_emotion" / "sev_emotion.yaml").is_file()
    proc = emobench("tasks-path", "sev_emotion_train")
    assert Path(proc.stdout.strip()).name == "sev_emotion_train.yaml"
    proc = emobench("tasks-path", "sev_emotoin")
    assert proc.returncode == 2
    assert "no emobench task 'sev_emotoin'; emobench's tasks: " in last_line(proc)
    assert "sev_emotion," in last_line(proc)


def test_a_controller_named_twice_differently_is_refused():
    proc = emobench(
        *["--tasks", "sev_emotion", "--controller", "prompt"],
        *["--model_args", "controller=steer", "--limit", "1"],
    )
    assert proc.returncode == 2
    assert last_line(proc) == (
        "emobench: error: --controller 'prompt' and --model_args controller='steer' disagree; "
        "give it once"
    )


def test_the_controller_in_model_args_is_the_one_that_runs(tmp_path, tiny_llama_dir):
    proc = emobench(
        *["--tasks", "sev_emotion", "--limit", "1", "--device", "cpu"],
        *["--model_args", f"pretrained={tiny_llama_dir},controller=prompt,measure_fluency=false"],
        *["--output_path", str(tmp_path)],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = tmp_path.rglob("results_*.json")
    assert json.loads(results_file.read_text())["config"]["emobench"]["controller"]["name"] == (
        "prompt"
    )


@pytest.mark.parametrize(
    "flag", [["--system_instruction", "Reply in French."], ["--apply_chat_template"]]
)
def test_a_prompt_lm_eval_would_change_is_refused_not_ignored(tmp_path, tiny_llama_dir, flag):
    """The emobench model builds each SEV chat itself: a flag that changes lm-eval's prompt
    would be recorded in the results and never sent, so the run stops before generating."""
    task_file = emobench("tasks-path", "sev_emotion").stdout.strip()
    proc = lm_eval(
        *["run", "--model", "emobench", "--tasks", task_file, "--limit", "1"],
        *["--model_args", f"pretrained={tiny_llama_dir},measure_fluency=false", "--device", "cpu"],
        *["--output_path", str(tmp_path), *flag],
    )
    assert proc.returncode != 0
    assert "lm-eval changed the prompt of doc 'work_test_00__positive__anger'" in proc.stderr
    assert not list(tmp_path.rglob("results_*.json"))
