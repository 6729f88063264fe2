"""The `emobench` command as a user runs it (a real subprocess each time)."""

import json
import re
from pathlib import Path

import pytest

from emobench.classify import DEFAULT_CLASSIFIER
from emobench.model_args import flag
from emobench.record import task_extras
from tests.helpers import emobench, last_line


def test_list_controllers_from_entry_points():
    proc = emobench("list", "controllers")
    assert proc.returncode == 0, proc.stderr
    assert "emobench.controllers.none:NoneController" in proc.stdout
    assert "emobench.controllers.prompt:PromptController" in proc.stdout


def test_unknown_controller_is_a_one_line_error():
    proc = emobench("--tasks", "sev_emotion", "--controller", "promt", "--limit", "1")
    assert proc.returncode == 2
    line = last_line(proc)
    assert line.startswith("emobench: error: unknown controller 'promt'")
    assert "Did you mean 'prompt'?" in line
    assert "Traceback" not in proc.stderr


def test_unknown_classifier_is_a_one_line_error():
    proc = emobench("--tasks", "sev_emotion", "--classifier", "minlm", "--limit", "1")
    assert proc.returncode == 2
    assert "unknown classifier 'minlm'" in last_line(proc)
    assert "Did you mean 'minilm'?" in last_line(proc)


def test_unknown_task_is_a_one_line_error():
    proc = emobench("--tasks", "sev_emotoin", "--limit", "1")
    assert proc.returncode == 2
    assert last_line(proc).startswith(
        "emobench: error: unknown task(s) sev_emotoin; emobench's tasks: sev_emotion"
    )
    assert "Traceback" not in proc.stderr


def test_controller_needs_the_emobench_model():
    proc = emobench("--model", "hf", "--tasks", "sev_emotion", "--controller", "prompt")
    assert proc.returncode == 2
    assert "--controller needs --model emobench" in last_line(proc)


@pytest.mark.integration
def test_bad_sev_line_is_a_one_line_error(tmp_path, sev_dir):
    lines = (sev_dir / "test.jsonl").read_text().splitlines()
    lines[4] = lines[4][:-1]  # drop the closing brace of line 5
    (tmp_path / "test.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "train.jsonl").write_text((sev_dir / "train.jsonl").read_text())
    proc = emobench(
        "--tasks", "sev_emotion", "--limit", "1", env={"EMOBENCH_SEV_DIR": str(tmp_path)}
    )
    assert proc.returncode == 2
    assert last_line(proc).startswith(
        f"emobench: error: {tmp_path / 'test.jsonl'}:5: not valid JSON"
    )


@pytest.mark.integration
def test_end_to_end_prompt_run_on_the_embedded_model(tmp_path):
    """The README's main job, on 12 docs: lm-eval outputs, emobench's record and table."""
    out = tmp_path / "out"
    proc = emobench(
        *["--tasks", "sev_emotion", "--controller", "prompt", "--limit", "12", "--batch_size", "6"],
        *f"--output_path {out} --log_samples".split(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sev_emotion: expression accuracy (%)" in proc.stdout
    # lm-eval's table shows the numbers; the confusion matrix is emobench's table's (and the
    # results file's), not a 300-character cell.
    lm_eval_table = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert lm_eval_table and max(map(len, lm_eval_table)) < 120
    assert "confusion (rows: target, columns: predicted)" in proc.stdout
    assert "controller prompt" in proc.stdout
    for emotion in ("anger", "sadness", "happiness", "fear", "surprise", "disgust"):
        # Each emotion's row says how many replies it rests on: 12 docs, 2 per emotion.
        assert re.search(rf"^{emotion} +[\d.]+ +2$", proc.stdout, re.M), proc.stdout

    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    block = results["results"]["sev_emotion"]
    assert 0.0 <= block["acc,classify"] <= 1.0
    record = results["config"]["emobench"]  # the model's own report (lm-eval's model info)
    assert record["controller"]["name"] == "prompt"
    assert record["model"] == "embedded:smollm2-135m-instruct"
    assert record["classifier"]["name"] == DEFAULT_CLASSIFIER
    assert record["gate"]["sha256"]
    assert results["config"]["model_args"]["controller"] == "prompt"
    summary = task_extras(results, "sev_emotion")
    assert summary["macro_f1"] == block["macro_f1,classify"]
    assert sum(map(sum, summary["confusion"]["matrix"])) == 12
    assert summary["confusion"]["labels"][-1] == "neutral"
    assert 0.0 <= summary["macro_f1"] <= 1.0
    assert "macro-F1" in proc.stdout and "confusion (rows: target" in proc.stdout
    assert -1.0 <= block["relevance,classify"] <= 1.0
    assert 0.0 <= block["distinct_2,classify"] <= 1.0
    assert 0.0 <= block["truncated,classify"] <= 1.0
    assert "reply quality (mean over replies)" in proc.stdout

    (samples_file,) = out.rglob("samples_sev_emotion_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 12
    scored = json.loads(samples[0]["filtered_resps"][0])
    assert scored["label"] in scored["probs"]
    assert set(scored["quality"]) >= {"relevance", "distinct_2", "truncated", "two_sentences"}
    assert scored["text"] == samples[0]["resps"][0][0]
    assert samples[0]["acc"] == float(scored["label"] == samples[0]["doc"]["target_emotion"])
    # The judge-compatible verdict rides beside the forced choice, by the rule the record names.
    thresholds = record["classifier"]["match"]["thresholds"]
    for s in samples:
        verdict = json.loads(s["filtered_resps"][0])
        target = s["doc"]["target_emotion"]
        assert verdict["match"] == (verdict["probs"][target] >= thresholds[target])
        assert s["acc_match"] == float(verdict["match"])
    assert block["acc_match,classify"] == pytest.approx(
        sum(s["acc_match"] for s in samples) / len(samples)
    )

    rescored = emobench("score", str(samples_file), "--out", str(tmp_path / "score.json"))
    assert rescored.returncode == 0, rescored.stderr[-2000:]
    again = json.loads((tmp_path / "score.json").read_text())
    assert again["acc"] == pytest.approx(block["acc,classify"])  # same classifier, same verdicts
    assert again["acc_match"] == pytest.approx(block["acc_match,classify"])
    assert again["docs_sha256"] == block["docs_sha256,classify"]  # the same docs, re-scored
    assert again["agreement_with_run"]["cohen_kappa"] == pytest.approx(1.0)
    assert sum(map(sum, again["confusion"]["matrix"])) == 12
    assert "confusion (rows: target, columns: predicted)" in rescored.stdout
    # A directory where a file goes is refused before any scoring, with the path to give instead.
    for where, what in ((str(tmp_path), "a directory"), (f"{tmp_path}/not_yet/", "ends in /")):
        refused = emobench("score", str(samples_file), "--results", where)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert last_line(refused).startswith(f"emobench: error: --results {where}: {what}")
        assert refused.stdout == ""  # refused before scoring: no table printed
    assert not (tmp_path / "not_yet").exists()
    # The run's own results file is never overwritten; a re-scored file may be, by a new score.
    (own,) = out.rglob("results_*.json")
    before = own.read_text()
    refused = emobench("score", str(samples_file), "--classifier", "minilm", "--results", str(own))
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"--results {own}: is a run's own results file, which would be lost" in last_line(
        refused
    )
    refused = emobench("score", str(samples_file), "--classifier", "minilm", "--out", str(own))
    assert f"--out {own}: is a run's own results file" in last_line(refused)
    assert own.read_text() == before
    rescored_file = own.with_name(own.stem + "_minilm.json")
    for _ in range(2):
        proc = emobench(
            "score", str(samples_file), "--classifier", "minilm", "--results", str(rescored_file)
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    missing = emobench("score", str(tmp_path / "nope.jsonl"))
    assert last_line(missing).startswith(
        f"emobench: error: {tmp_path / 'nope.jsonl'}: no such file"
    )

    # Fluency: measured in the run under the unsteered model, and measured again from the saved
    # replies by rebuilding the prompt controller's prompts: the two must agree.
    run_ppl = [json.loads(s["filtered_resps"][0])["quality"]["ppl"] for s in samples]
    assert all(p is None or p >= 1.0 for p in run_ppl)
    assert block["ppl,classify"] >= 1.0
    refl = emobench("score", str(samples_file), "--fluency", "--out", str(tmp_path / "fl.json"))
    assert refl.returncode == 0, refl.stderr[-2000:]
    remeasured = [
        r["quality"]["ppl"] for r in json.loads((tmp_path / "fl.json").read_text())["per_sample"]
    ]
    for a, b in zip(run_ppl, remeasured, strict=True):
        assert (a is None and b is None) or a == pytest.approx(b, rel=2e-3)
    # The embedded model ships a calibrated gate, so the run reports quality-adjusted accuracy.
    qa = summary["quality_adjusted"]
    assert 0.0 <= qa["acc_qa"] <= block["acc,classify"]
    assert 0.0 <= qa["gate_pass"] <= 1.0
    assert "quality-adjusted accuracy" in proc.stdout
    assert again["quality_adjusted"]["acc_qa"] == pytest.approx(qa["acc_qa"])

    board = emobench("leaderboard", str(out), "--out", str(tmp_path / "board"))
    assert board.returncode == 0, board.stderr
    assert "prompt" in board.stdout
    for ext in ("md", "csv", "json", "html"):
        assert (tmp_path / "board" / f"leaderboard.{ext}").stat().st_size > 0


@pytest.mark.integration
def test_use_cache_resumes_through_the_journal(tmp_path):
    cache = tmp_path / "cache"
    args = [
        "--tasks",
        "sev_emotion",
        "--limit",
        "6",
        "--batch_size",
        "6",
        "--use_cache",
        str(cache),
    ]
    first = emobench(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    journal = Path(f"{cache}.emobench-journal.jsonl")
    assert len(journal.read_text().splitlines()) == 6
    second = emobench(*args)
    assert second.returncode == 0, second.stderr[-2000:]
    assert len(journal.read_text().splitlines()) == 6  # nothing regenerated


def test_an_output_path_under_a_file_fails_before_the_model_loads(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = emobench("--tasks", "sev_emotion", "--limit", "1", "--output_path", str(blocker / "out"))
    assert proc.returncode == 2
    assert last_line(proc) == (
        f"emobench: error: --output_path {blocker / 'out'}: cannot write there (Not a directory); "
        "pass a writable directory"
    )
    assert "Loading" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "where", ["/no/such/model", "./no-such-model", "runs/no/model", "~nobody-emobench/model"]
)
def test_a_model_directory_that_is_not_there_is_named(tmp_path, where):
    """A path cannot be a Hugging Face id (org/name): it is refused by name before anything loads,
    for `emobench` and for stock lm_eval, where transformers would call it a malformed repo id."""
    proc = emobench("--tasks", "sev_emotion", "--limit", "1", "--model_args", f"pretrained={where}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_line(proc).startswith(f"emobench: error: pretrained={where}: no such directory;")
    assert "Loading" not in proc.stderr
    from emobench.errors import EmoBenchError
    from emobench.loading import model_path

    with pytest.raises(EmoBenchError, match="no such directory"):
        model_path(where)
    hub_id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert model_path(hub_id) == hub_id
    assert model_path(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan", "steer: alpha must be a finite number, got nan"),
        ("inf", "steer: alpha must be a finite number, got inf"),
        ("abc", "steer: alpha='abc' is not a number (for example alpha=1.5)"),
    ],
)
def test_a_bad_controller_number_is_named(value, message):
    proc = emobench(
        *["--tasks", "sev_emotion", "--limit", "1", "--controller", "steer"],
        *["--controller_args", f"alpha={value}"],
    )
    assert proc.returncode == 2
    assert last_line(proc) == f"emobench: error: {message}"


def test_controller_args_keep_braces_and_spaces(tmp_path):
    """The README's own example: a template with {emotion}, in key=value form."""
    from emobench.cli import build_parser

    parser, _ = build_parser()
    args = parser.parse_args(
        ["run", "--controller_args", "template=Sound {emotion}, now.", "alpha=2", "flag=true"]
    )
    assert args.controller_args == {"template": "Sound {emotion}, now.", "alpha": 2, "flag": True}
    args = parser.parse_args(["run", "--controller_args", '{"template": "Be {emotion}."}'])
    assert args.controller_args == {"template": "Be {emotion}."}
    # A key given twice with two values is refused, in either form and across repeated flags.
    for given in (
        ["--controller_args", "alpha=abc", "alpha=5"],
        ["--controller_args", "alpha=1", "--controller_args", '{"alpha": 2}'],
    ):
        proc = emobench("--tasks", "sev_emotion", "--controller", "steer", *given)
        assert (
            proc.returncode == 2 and "argument --controller_args: alpha given twice" in proc.stderr
        )
    assert parser.parse_args(
        ["run", "--controller_args", "alpha=1", "alpha=1"]
    ).controller_args == {"alpha": 1}
    # Commas inside a value stay (a list of neurons); a second key=value after one is a slip
    # that would otherwise become part of the first value.
    args = parser.parse_args(["run", "--controller_args", "neurons=12:345,20:7"])
    assert args.controller_args == {"neurons": "12:345,20:7"}
    joined = "attribute=valence,top=100, artifact=/tmp/a"
    proc = emobench("--tasks", "sev_emotion", "--controller", "ablate", "--controller_args", joined)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_line(proc).endswith(
        f"argument --controller_args: {joined!r} holds several key=value pairs joined by commas; "
        "give each as its own word: attribute=valence top=100 artifact=/tmp/a (a value that does "
        "hold ',name=' goes in a JSON object)"
    )


def test_model_args_typos_and_bad_flags_are_one_line_errors(tiny_llama_dir):
    """A misspelt key reaches the model class's constructor; a yes/no flag takes only yes/no."""
    common = ["--tasks", "sev_emotion", "--limit", "1"]
    proc = emobench(*common, "--model_args", f"pretrained={tiny_llama_dir}", "controler=shout")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last_line(proc).startswith(
        "emobench: error: --model_args controler: not an argument of the emobench model "
        "(pretrained, controller, controller_args, classifier, journal, device, measure_fluency"
    )
    for value in ("nope", "offf"):
        proc = emobench(
            *common, "--model_args", f"pretrained={tiny_llama_dir}", f"fast_decode={value}"
        )
        assert last_line(proc) == (
            f"emobench: error: --model_args fast_decode={value}: not a yes/no value; "
            "use fast_decode=true or fast_decode=false"
        )
    # JSON inside key=value pairs, or broken JSON: lm-eval's parser raises; the user reads one
    # line naming the option that held it.
    for given, said in (
        (
            ["--model_args", 'controller_args={"alpha":5}'],
            '--model_args controller_args={"alpha":5}: lm-eval reads no JSON inside key=value '
            "pairs; give all of --model_args as one JSON object (or the controller's with",
        ),
        (
            ["--gen_kwargs", "stop={x}"],
            "--gen_kwargs stop={x}: lm-eval reads no JSON inside key=value pairs; give all of "
            "--gen_kwargs as one JSON object",
        ),
        (
            ["--model_args", '{"pretrained": "x",}'],
            '--model_args {"pretrained": "x",}: not valid JSON (Expecting property name',
        ),
    ):
        proc = emobench(*common, *given)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert last_line(proc).startswith(f"emobench: error: {said}"), last_line(proc)
    assert [flag("f", v) for v in ("off", "No", "0", False, "on", "TRUE", 1, True)] == [
        False,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]


def test_help_ends_with_emobench_commands_not_lm_evals():
    proc = emobench("--help")
    assert proc.returncode == 0
    assert "emobench --tasks sev_emotion --controller prompt --limit 12" in proc.stdout
    assert "lm-eval run --model hf" not in proc.stdout
