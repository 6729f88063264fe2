"""Discovery's `accepted_only` filter (the reference kept only complete, judge-accepted groups).

A tiny random model's replies cannot pass a real classifier, so the selection is driven by test
classifiers from tests/plugins_for_tests.py (loaded through the 'module:Class' plugin path).
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from emobench import EMOTIONS, artifacts
from emobench.chat import base_messages, render
from emobench.controller import create_controller
from emobench.data import load_docs
from emobench.discovery.activations import capture_last_token, encode
from emobench.discovery.directions import directions, discover_directions, prompted_replies
from emobench.errors import EmoBenchError
from emobench.hooks import hook_points
from tests.helpers import emobench, last_line

CYCLE = "tests.plugins_for_tests:GroupCycleClassifier"
NEUTRAL = "tests.plugins_for_tests:NeutralClassifier"


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    return model, AutoTokenizer.from_pretrained(tiny_llama_dir)


def test_prompted_replies_are_the_greedy_prompt_controller_replies(tiny, sev_dir):
    model, tokenizer = tiny
    docs = load_docs("train")[:3]
    replies = prompted_replies(model, tokenizer, docs, batch_size=2, max_new_tokens=5)
    prompter = create_controller("prompt")
    for doc, reply in zip(docs, replies, strict=True):
        enc = encode(tokenizer, [render(tokenizer, prompter.messages(doc, base_messages(doc)))[0]])
        out = model.generate(**enc, max_new_tokens=5, do_sample=False)
        expected = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        assert reply == expected  # batched and left-padded, yet the same as one at a time


def test_accepted_only_keeps_the_complete_groups(tiny, tmp_path, sev_dir):
    model, tokenizer = tiny
    out = discover_directions(
        model,
        tokenizer,
        "tiny-llama",
        tmp_path / "d",
        batch_size=12,
        limit_groups=4,
        accepted_only=True,
        classifier=CYCLE,
    )
    tensors, meta = artifacts.load(out, model)
    docs = load_docs("train")[:24]
    kept = docs[0:6] + docs[12:18]  # groups 0 and 2 (the cycle classifier rejects odd groups)
    selection = meta["recipe"]["selection"]
    assert selection["accepted_only"] is True
    assert (selection["groups_kept"], selection["groups_total"]) == (2, 4)
    assert selection["kept"] == [f"{d['skeleton_id']}__{d['valence']}" for d in kept[::6]]
    assert selection["replies_accepted"] == 22
    assert selection["replies_accepted_per_emotion"] == {**dict.fromkeys(EMOTIONS, 4), "disgust": 2}
    assert selection["classifier"]["name"] == CYCLE
    assert meta["recipe"]["groups"] == 2 and meta["data"]["docs"] == 12
    assert "--accepted_only" in meta["command"]
    # The directions are those of the kept groups alone.
    prompter = create_controller("prompt")
    prompts = [render(tokenizer, prompter.messages(d, base_messages(d)))[0] for d in kept]
    acts = capture_last_token(model, tokenizer, prompts, hook_points(model), batch_size=12)
    for point in ("post_attn", "post_block"):
        torch.testing.assert_close(tensors[point], directions(acts[point]), rtol=1e-4, atol=1e-5)


def test_without_the_option_every_group_is_kept(tiny, tmp_path, sev_dir):
    model, tokenizer = tiny
    out = discover_directions(model, tokenizer, "tiny-llama", tmp_path / "d", limit_groups=2)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["recipe"]["selection"] == {"accepted_only": False, "groups_total": 2}
    assert meta["recipe"]["filter"] == "none (every group kept)"


def test_no_accepted_group_is_an_error(tiny, tmp_path, sev_dir):
    model, tokenizer = tiny
    with pytest.raises(EmoBenchError, match=r"none of the 2 \(skeleton, valence\) groups"):
        discover_directions(
            model,
            tokenizer,
            "tiny-llama",
            tmp_path / "d",
            limit_groups=2,
            accepted_only=True,
            classifier=NEUTRAL,
        )
    assert not (tmp_path / "d").exists()


def test_cli_accepted_only_fails_in_one_line_when_no_group_passes(tiny_llama_dir, tmp_path):
    args = ["discover", "directions", "--model_args", f"pretrained={tiny_llama_dir}"]
    args += ["--limit_groups", "1", "--out", str(tmp_path / "d")]
    proc = emobench(*args, "--accepted_only", "--classifier", NEUTRAL)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert last_line(proc).startswith("emobench: error: --accepted_only: none of the 1")
    proc = emobench(*args, "--classifier", NEUTRAL)
    assert proc.returncode == 2
    assert "--classifier only applies with --accepted_only" in last_line(proc)


def test_an_option_of_another_kind_of_artifact_is_refused_not_ignored(tmp_path):
    """`discover` and `analyze` share one parser across kinds of artifact: an option that the
    kind asked for does not read is refused before anything loads, and a count that cannot run
    is refused by argparse, naming the option."""
    out = ["--out", str(tmp_path / "x")]
    cases = [
        (
            ["discover", "directions", "--permutations", "5"],
            "--permutations applies to "
            "`emobench discover attributes` only, not to directions; leave it out",
        ),
        (
            ["discover", "attributes", "--limit_groups", "2"],
            "--limit_groups applies to "
            "`emobench discover directions / circuit` only, not to attributes; leave it out",
        ),
        (
            ["analyze", "circuit", str(tmp_path), "--top", "3"],
            "--top applies to `emobench analyze attributes` only, not to circuit; leave it out",
        ),
        (
            ["analyze", "attributes", str(tmp_path), "--generate", "2"],
            "--generate applies to "
            "`emobench analyze circuit` only, not to attributes; leave it out",
        ),
    ]
    for args, said in cases:
        proc = emobench(*args, *out)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert last_line(proc) == f"emobench: error: {said}"
    for args, said in [
        (["analyze", "attributes", str(tmp_path), "--seeds", "0"], "--seeds: 0: give 1 or more"),
        (["discover", "circuit", "--limit_groups", "0"], "--limit_groups: 0: give 1 or more"),
        (["discover", "attributes", "--fdr", "5"], "--fdr: 5.0: give a rate between 0 and 1"),
    ]:
        proc = emobench(*args, *out)
        assert proc.returncode == 2 and said in last_line(proc), proc.stderr[-2000:]
    assert not (tmp_path / "x").exists()


def test_the_help_names_the_default_that_an_option_left_out_keeps():
    """A scoped option not given is not passed: the function that takes it keeps its own
    default, which the option's help names."""
    import inspect

    from emobench.analysis.attributes import analyze_attributes
    from emobench.analysis.circuit import analyze_circuit
    from emobench.cli import build_parser
    from emobench.cli_study import ANALYZE_SCOPED, DISCOVER_SCOPED
    from emobench.discovery.attributes import discover_attributes
    from emobench.discovery.circuit import discover_circuit
    from emobench.discovery.directions import discover_directions

    takers = {
        "discover": {
            "directions": discover_directions,
            "circuit": discover_circuit,
            "attributes": discover_attributes,
        },
        "analyze": {"circuit": analyze_circuit, "attributes": analyze_attributes},
    }
    _, commands = build_parser()
    checked = 0
    for command, table in (("discover", DISCOVER_SCOPED), ("analyze", ANALYZE_SCOPED)):
        helps = {a.dest: a.help for a in commands[command]._actions}
        for option, kinds in table.items():
            for kind in kinds:
                default = inspect.signature(takers[command][kind]).parameters[option].default
                assert default is not inspect.Parameter.empty, (command, kind, option)
                if default is None:
                    continue  # no default to name: all groups
                shown = f"{default:,}" if isinstance(default, int) else str(default)
                said = re.search(rf"default {re.escape(shown)}\b", helps[option])
                assert said, (command, option, helps[option])
                checked += 1
    assert checked == 9
