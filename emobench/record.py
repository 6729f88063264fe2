"""The record of what ran (model, controller, classifier, quality gate) and reading it back.

The emobench model reports the record through lm-eval's model-info hook (`get_model_info`), so it
lands in the results file under `config.emobench` whichever command ran the model (`emobench` or
stock `lm_eval --model emobench`). Macro-F1, the confusion matrix and quality-adjusted accuracy
are the task's own aggregations, in `results.<task>` beside accuracy.

Readers (the end-of-run table, the leaderboard, re-scoring) go through `read_record` and
`task_extras`, which also read results written before that layout, where emobench added a
top-level `emobench` key with the aggregations under `emobench.<task>`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from emobench import EMOTIONS, __version__

QA_KEYS = (
    "acc_qa",
    "gate_pass",
    "fluent",
    "varied",
    "on_topic",
    *(f"acc_qa_{e}" for e in EMOTIONS),
)


def run_record(
    model: str,
    controller: Mapping[str, Any],
    classifier: Mapping[str, Any],
    gate: Mapping[str, Any] | None,
    measure_fluency: bool,
) -> dict[str, Any]:
    return {
        "emobench_version": __version__,
        "model": model,
        "controller": dict(controller),
        "classifier": dict(classifier),
        "gate": None if gate is None else dict(gate),
        "measure_fluency": measure_fluency,
    }


def read_record(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """The emobench record of a results file; None for a run without the emobench model and
    without a record (a stock `--model hf` run: see `foreign_record`)."""
    record = (results.get("config") or {}).get("emobench")
    if record is None:
        record = results.get("emobench")  # the earlier layout
    return dict(record) if isinstance(record, Mapping) else None


def default_classifier_of(metadata: Mapping[str, Any]) -> str:
    """The classifier that scored a run which did not name one: the default of the task version
    it ran (sev_emotion 4.0 made mpnet-ft the default, 3.0 minilm-ft; earlier versions used
    minilm). A later change of default must bump the task version and add its name here."""
    try:
        version = float(metadata.get("version", 0))
    except (TypeError, ValueError):
        version = 0.0
    if version >= 4:
        return "mpnet-ft"
    return "minilm-ft" if version >= 3 else "minilm"


def given_model_args(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config.model_args` of a results file: a dict, or the key=value string lm-eval got."""
    model_args = config.get("model_args") or {}
    if isinstance(model_args, str):
        model_args = dict(p.split("=", 1) for p in model_args.split(",") if "=" in p)
    return dict(model_args) if isinstance(model_args, Mapping) else {}


# Model arguments that can change a run's replies, with the value that changes nothing: other
# arguments (where and how fast it runs, a server's address) are not part of what ran. `dtype` is
# read from the loaded model instead, as lm-eval records it.
REPLY_SHAPING = {
    "revision": "main",
    "subfolder": "",
    "peft": None,
    "delta": None,
    "tokenizer": None,
    "gguf_file": None,
    "max_length": None,
    "truncation": False,
    "add_bos_token": None,
    "prefix_token_id": None,
    "mixed_precision_dtype": None,
    "softmax_dtype": None,
    "chat_template_args": None,
    "enable_thinking": None,
    "think_end_token": None,
    "model": None,  # an API model's name
    "max_model_len": None,
}


def reply_settings(model_args: Mapping[str, Any]) -> dict[str, str]:
    """The model arguments given that can change the replies (a revision, an adapter, a
    shorter context), as text, leaving out those given at the value that changes nothing."""
    return {
        k: str(v)
        for k, v in sorted(model_args.items())
        if k in REPLY_SHAPING and str(v) != str(REPLY_SHAPING[k])
    }


def model_label(results: Mapping[str, Any], model: str) -> str:
    """The model as a leaderboard names it: with the settings that make its replies differ from
    the plain model's (another precision, revision, adapter...)."""
    config = results.get("config") or {}
    settings = reply_settings(given_model_args(config))
    dtype = str(config.get("model_dtype") or "").removeprefix("torch.")
    if dtype and dtype != "float32":
        settings = {"dtype": dtype, **settings}
    return f"{model} ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else model


def foreign_record(results: Mapping[str, Any], task: str) -> dict[str, Any]:
    """What a results file of another lm-eval model says about itself: the model and the
    classifier named in the task's metadata (no controller ran)."""
    config = results.get("config") or {}
    model_args = given_model_args(config)
    metadata = ((results.get("configs") or {}).get(task) or {}).get("metadata") or {}
    classifier = {"name": metadata.get("classifier") or default_classifier_of(metadata)}
    head = ((results.get("results") or {}).get(task) or {}).get("classifier_head,classify")
    if isinstance(head, str):
        classifier["head"] = {"sha256": head}
    return {
        "model": model_args.get("pretrained", config.get("model", "?")),
        "controller": {"name": f"none ({config.get('model', '?')} model)", "args": {}},
        "classifier": classifier,
        "gate": None,
    }


def task_extras(results: Mapping[str, Any], task: str) -> dict[str, Any]:
    """{macro_f1, confusion, quality_adjusted} of a task, from the task's aggregations or, in
    results of the earlier layout, from the record."""
    old = (results.get("emobench") or {}).get(task)
    if isinstance(old, Mapping):
        return dict(old)
    block = (results.get("results") or {}).get(task) or {}
    values = {key.partition(",")[0]: v for key, v in block.items() if "_stderr" not in key}
    out: dict[str, Any] = {}
    if "macro_f1" in values:
        out["macro_f1"] = values["macro_f1"]
    if isinstance(values.get("confusion"), Mapping):
        out["confusion"] = dict(values["confusion"])
    qa = {k: values[k] for k in QA_KEYS if k in values}
    if qa:
        record = read_record(results) or {}
        if record.get("gate"):
            qa["gate"] = record["gate"]
        out["quality_adjusted"] = qa
    return out


def given_args(controller: Mapping[str, Any], record: Mapping[str, Any] | None = None) -> dict:
    """The controller arguments the user gave (older records kept them beside the spec)."""
    if "given" in controller:
        return dict(controller["given"])
    return dict((record or {}).get("controller_args_given") or {})


def finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
