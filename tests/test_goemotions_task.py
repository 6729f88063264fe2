"""The GoEmotions emotion-inference tasks: their docs are the CSV's, and real runs score them."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emobench.errors import DataError, EmoBenchError
from tests.helpers import emobench, last_line

TASKS = ("goemotions_inference", "goemotions_inference_ekman")
# GoEmotions' published Ekman mapping (data/ekman_mapping.json of google-research/goemotions) plus
# neutral, written out here so that the expected docs do not come from the code under test.
PUBLISHED_EKMAN = {
    "anger": ["anger", "annoyance", "disapproval"],
    "disgust": ["disgust"],
    "fear": ["fear", "nervousness"],
    "joy": [
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ],
    "sadness": ["sadness", "disappointment", "embarrassment", "grief", "remorse"],
    "surprise": ["surprise", "realization", "confusion", "curiosity"],
    "neutral": ["neutral"],
}
NOT_LABELS = {"text", "classes", "id", "ids"}


@pytest.fixture(scope="module")
def goemotions_csv(sev_dir: Path) -> Path:
    path = Path(os.environ.get("EMOBENCH_GOEMOTIONS") or sev_dir.parent / "goemotions" / "dev.csv")
    if not path.is_file():
        pytest.fail(f"GoEmotions not found at {path}; set EMOBENCH_GOEMOTIONS or EMOBENCH_SEV_DIR")
    return path


@pytest.fixture(scope="module")
def csv_rows(goemotions_csv: Path) -> tuple[list[str], list[tuple[str, set[str]]]]:
    """(label columns, [(text, labels marked 1)]) read with nothing but the csv module."""
    with goemotions_csv.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        labels = [c for c in reader.fieldnames or [] if c not in NOT_LABELS]
        rows = [(row["text"], {c for c in labels if row[c] == "1"}) for row in reader]
    assert len(labels) == 28 and "neutral" in labels
    return labels, rows


@pytest.fixture(scope="module")
def expected(csv_rows) -> dict[str, tuple[set[str], list[tuple[str, str]]]]:
    """Per task: (its label set, the (text, gold label) of each doc in file order)."""
    labels, rows = csv_rows
    fine = [(text, next(iter(ls))) for text, ls in rows if len(ls) == 1 and ls != {"neutral"}]
    to_ekman = {
        f: "happiness" if e == "joy" else e for e, fs in PUBLISHED_EKMAN.items() for f in fs
    }
    ekman = []
    for text, ls in rows:
        classes = {to_ekman[label] for label in ls}
        if len(classes) == 1:
            ekman.append((text, classes.pop()))
    return {
        "goemotions_inference": (set(labels) - {"neutral"}, fine),
        "goemotions_inference_ekman": (
            {"happiness" if e == "joy" else e for e in PUBLISHED_EKMAN},
            ekman,
        ),
    }


@pytest.fixture(scope="module")
def tasks(sev_dir: Path) -> dict[str, Any]:
    """The two tasks as lm-eval builds them from emobench's task directory (lm-eval's own tasks
    are left out of the index: they cost seconds and play no part)."""
    from emobench.tasks import task_dir
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_dir()), include_defaults=False)
    return manager.load(list(TASKS))["tasks"]


@pytest.mark.parametrize("name", TASKS)
def test_docs_are_the_csv_comments_with_one_label(name, tasks, expected):
    task = tasks[name]
    label_set, want = expected[name]
    docs = list(task.test_docs())
    assert [(d["text"], d["label"]) for d in docs] == want
    assert {d["label"] for d in docs} == label_set
    for doc in docs:
        choices = task.doc_to_choice(doc)
        gold = task.doc_to_target(doc)
        assert set(choices) == label_set and len(choices) == len(label_set)
        assert [i for i, c in enumerate(choices) if c == doc["label"]] == [gold]


def test_sizes_on_the_dev_split(tasks, goemotions_csv):
    if goemotions_csv.name != "dev.csv":
        pytest.skip("the documented sizes are those of GoEmotions' dev.csv")
    sizes = {name: len(list(tasks[name].test_docs())) for name in TASKS}
    assert sizes == {"goemotions_inference": 2956, "goemotions_inference_ekman": 4946}


def test_requests_score_each_label_after_the_prompt(tasks):
    task = tasks["goemotions_inference_ekman"]
    task.build_all_requests(limit=1, rank=0, world_size=1)
    contexts = {inst.args[0] for inst in task.instances}
    assert len(contexts) == 1
    (context,) = contexts
    assert context.startswith("Which emotion does the writer of this Reddit comment express?")
    assert context.endswith("\nEmotion:")
    assert [inst.args[1] for inst in task.instances] == [
        " anger",
        " disgust",
        " fear",
        " happiness",
        " sadness",
        " surprise",
        " neutral",
    ]


def test_acc_and_acc_norm_part_when_length_decides():
    from emobench.tasks.goemotions_inference import utils

    doc = {"id": "x", "label": "happiness", "gold": 3, "choices": list(utils.EKMAN_CHOICES)}
    # anger has the higher sum (-2.0 vs -2.5), happiness the higher per character (-0.28 vs -0.4).
    lls = [-2.0, -9.0, -9.0, -2.5, -9.0, -9.0, -9.0]
    out = utils.process_results(doc, [(ll, False) for ll in lls])
    assert (out["acc"], out["acc_norm"]) == (0.0, 1.0)
    assert out["acc_happiness"] == 0.0
    assert {k for k, v in out.items() if v is None} == {
        f"acc_{c}" for c in utils.EKMAN_CHOICES if c != "happiness"
    }


def _csv(path: Path, rows: list[tuple[str, str]]) -> None:
    labels = [label for fs in PUBLISHED_EKMAN.values() for label in fs]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "classes", "ids", *labels])
        for i, (text, label) in enumerate(rows):
            writer.writerow([text, "0", f"id{i}", *(int(c == label) for c in labels)])


def test_the_split_comes_from_metadata_and_a_missing_file_says_how_to_fix_it(tmp_path, monkeypatch):
    from emobench.tasks.goemotions_inference import utils

    _csv(tmp_path / "dev.csv", [("dev text", "grief")])
    _csv(tmp_path / "train.csv", [("train text", "relief"), ("neutral text", "neutral")])
    monkeypatch.setenv("EMOBENCH_GOEMOTIONS", str(tmp_path / "dev.csv"))
    (dev,) = utils.fine_docs()["test"]
    assert (dev["text"], dev["label"], dev["split"]) == ("dev text", "grief", "dev")
    train = utils.ekman_docs(split="train")["test"]
    assert [(d["label"], d["split"]) for d in train] == [
        ("happiness", "train"),
        ("neutral", "train"),
    ]

    missing = re.escape(f"{tmp_path / 'test.csv'}: no such file")
    with pytest.raises(DataError, match=missing) as err:
        utils.fine_docs(split="test")
    assert "--metadata split=" in str(err.value)
    monkeypatch.setenv("EMOBENCH_GOEMOTIONS", str(tmp_path / "missing" / "dev.csv"))
    with pytest.raises(DataError, match=r"set EMOBENCH_GOEMOTIONS to GoEmotions' dev\.csv"):
        utils.ekman_docs()


def _run_output(out: Path, task: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (results_file,) = out.rglob("results_*.json")
    (samples_file,) = out.rglob(f"samples_{task}_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    return json.loads(results_file.read_text()), samples


def _check_scored(results: dict[str, Any], samples: list[dict[str, Any]], task: str, n: int):
    metrics = results["results"][task]
    assert 0.0 <= metrics["acc,none"] <= 1.0
    assert 0.0 <= metrics["acc_norm,none"] <= 1.0
    assert len(samples) == n
    for sample in samples:
        # lm-eval's own rule for multiple choice, applied to the logged log-likelihoods.
        lls = np.array([float(resp[0]) for resp in sample["filtered_resps"]])
        choices = sample["doc"]["choices"]
        lengths = np.array([float(len(c)) for c in choices])
        assert len(lls) == len(choices)
        # The samples file holds the target as a string; simple_evaluate's samples as an int.
        gold = int(sample["target"])
        assert gold == sample["doc"]["gold"]
        assert sample["acc"] == float(np.argmax(lls) == gold)
        assert sample["acc_norm"] == float(np.argmax(lls / lengths) == gold)


def test_emobench_runs_the_ekman_task_on_a_tiny_model(tmp_path, tiny_llama_dir):
    task = "goemotions_inference_ekman"
    proc = emobench(
        *["--tasks", task, "--limit", "4", "--model_args", f"pretrained={tiny_llama_dir}"],
        *["--device", "cpu", "--batch_size", "8", "--output_path", str(tmp_path), "--log_samples"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results, samples = _run_output(tmp_path, task)
    _check_scored(results, samples, task, 4)
    assert results["config"]["emobench"]["controller"]["name"] == "none"


def test_stock_lm_eval_hf_runs_the_27_way_task(tiny_llama_dir):
    """lm-eval's own `hf` model and evaluator, with emobench's task directory as include path
    (what `lm_eval run --model hf --include_path "$(emobench tasks-path)"` does), in process."""
    from emobench.tasks import task_dir
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    task = "goemotions_inference"
    results = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_llama_dir)},
        tasks=[task],
        task_manager=TaskManager(include_path=str(task_dir()), include_defaults=False),
        limit=2,
        device="cpu",
        batch_size=8,
        log_samples=True,
    )
    _check_scored(results, results["samples"][task], task, 2)


def test_emobench_names_a_missing_split_before_the_model_loads(goemotions_csv):
    proc = emobench("--tasks", "goemotions_inference", "--metadata", "split=nosuch", "--limit", "1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert last_line(proc).startswith(
        f"emobench: error: {goemotions_csv.with_name('nosuch.csv')}: no such file"
    )
    assert "Traceback" not in proc.stderr


def test_a_controller_that_needs_a_target_is_refused_before_any_task_runs(tmp_path, goemotions_csv):
    """With the inference task beside sev_emotion, the refusal comes before sev_emotion's
    generations, not after them."""
    proc = emobench(
        *["--tasks", "sev_emotion,goemotions_inference", "--controller", "prompt"],
        *["--limit", "1", "--output_path", str(tmp_path / "out")],
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert last_line(proc) == (
        "emobench: error: controller 'prompt' acts through a target emotion (its prompt or "
        "hooks), and the requests of goemotions_inference have none; run those with a "
        "controller that does not need one (none, ablate), in a run of their own"
    )
    assert "Generating" not in proc.stderr and "Initializing emobench model" not in proc.stderr


def test_a_task_scope_that_defers_to_the_base_is_still_refused() -> None:
    from emobench.controller import create_controller

    prompt = create_controller("prompt")
    deferring = create_controller("tests.plugins_for_tests:DeferringPromptController")
    for controller in (prompt, deferring):
        with pytest.raises(EmoBenchError, match="acts through a target emotion"):
            controller.task_scope(None)
    with pytest.raises(EmoBenchError, match="requests of goemotions_inference have none"):
        prompt.refuse_untargeted("goemotions_inference")
    deferring.refuse_untargeted("goemotions_inference")  # its own task_scope answers later
    with create_controller("none").task_scope(None):
        pass
