"""The emobench model wrapper on a real (tiny, random-initialised) Llama."""

import dataclasses
import logging

import pytest
import torch

from emobench import EMOTIONS
from emobench.controller import create_controller
from emobench.errors import EmoBenchError
from emobench.hooks import hook_count, hooked
from tests.helpers import GEN_KWARGS, make_requests


def interleaved(test_docs, n_items=2):
    """Docs of several emotions in a scrambled order (the wrapper must restore it)."""
    docs = test_docs[: 6 * n_items]
    return docs[::-1][::2] + docs[::-1][1::2]


def test_results_come_back_in_request_order(tiny_lm_factory, test_docs):
    lm = tiny_lm_factory(batch_size=1)
    docs = interleaved(test_docs)
    together = lm.generate_until(make_requests(docs))
    one_by_one = [lm.generate_until(make_requests([d]))[0] for d in docs]
    assert together == one_by_one
    assert all(isinstance(t, str) for t in together)


def test_each_emotion_group_runs_inside_its_own_scope(tiny_lm_factory, test_docs):
    controller = create_controller("tests.plugins_for_tests:RecordingController")
    lm = tiny_lm_factory(controller=controller, batch_size=4)
    docs = interleaved(test_docs)
    lm.generate_until(make_requests(docs))
    seen = controller.calls
    assert set(seen) == set(EMOTIONS)
    # One contiguous run of forward passes per emotion: requests were grouped, not interleaved.
    runs = [e for i, e in enumerate(seen) if i == 0 or seen[i - 1] != e]
    assert sorted(runs) == sorted(EMOTIONS)
    assert hook_count(lm.model) == 0


def test_a_controller_without_a_scope_batches_across_emotions(tiny_lm_factory, test_docs, caplog):
    docs = interleaved(test_docs)
    across = tiny_lm_factory(controller="prompt", batch_size=4)
    grouped = tiny_lm_factory(
        controller="tests.plugins_for_tests:ScopedPromptController", batch_size=4
    )
    with caplog.at_level("INFO", logger="emobench"):
        replies = across.generate_until(make_requests(docs))
    groups = [r.getMessage() for r in caplog.records if "requests)" in r.getMessage()]
    assert groups == [f"controller prompt: all emotions ({len(docs)} requests)"]
    assert replies == grouped.generate_until(make_requests(docs))


def test_hooks_are_removed_when_generation_fails(tiny_lm_factory, test_docs):
    controller = create_controller("tests.plugins_for_tests:RecordingController")
    controller.fail_on = "fear"
    lm = tiny_lm_factory(controller=controller, batch_size=4)
    with pytest.raises(RuntimeError, match="boom in fear"):
        lm.generate_until(make_requests(test_docs[:12]))
    assert hook_count(lm.model) == 0


def test_hooked_resolves_everything_before_attaching(tiny_lm_factory):
    lm = tiny_lm_factory()
    model = lm.model

    def noop(*args):
        return None

    hooks = {"model.layers.0": noop, "model.layers.99": noop}
    with pytest.raises(EmoBenchError, match=r"model\.layers\.99"), hooked(model, forward=hooks):
        pass
    assert hook_count(model) == 0
    with pytest.raises(ZeroDivisionError), hooked(model, forward_pre={"model.layers.1.mlp": noop}):
        assert hook_count(model) == 1
        1 / 0  # noqa: B018
    assert hook_count(model) == 0


def test_the_controller_builds_the_prompt_from_the_doc(tiny_lm_factory, test_docs):
    lm = tiny_lm_factory(controller="tests.plugins_for_tests:MarkerController")
    req = make_requests(test_docs[:1])[0]
    rewritten = lm._rewrite(req)
    context, kwargs = rewritten.args
    assert context.startswith("<|im_start|>system\nMARK " + test_docs[0]["key"])
    assert context.endswith("<|im_start|>assistant\n")
    assert kwargs == req.args[1]

    prompt = tiny_lm_factory(controller="prompt")._rewrite(req).args[0]
    assert "Always reply in anger." in prompt


def test_plain_format_for_models_without_a_chat_template(tiny_lm_factory, test_docs):
    lm = tiny_lm_factory()
    lm.tokenizer.chat_template = None
    context, kwargs = lm._rewrite(make_requests(test_docs[:1])[0]).args
    assert context.startswith("System: Keep the reply to at most two sentences.\n\nUser: ")
    assert context.endswith("\n\nAssistant:")
    assert "\nUser:" in kwargs["until"]


def test_unknown_target_emotion_is_refused(tiny_lm_factory, test_docs):
    lm = tiny_lm_factory()
    bad = dict(test_docs[0], target_emotion="boredom")
    with pytest.raises(Exception, match="boredom"):
        lm.generate_until(make_requests([bad]))


def test_an_interrupted_run_resumes_from_the_journal(tiny_lm_factory, test_docs, tmp_path):
    """Replies finished before a failure are kept; a rerun makes only the missing ones."""
    docs = test_docs[:12]
    journal = tmp_path / "run.journal.jsonl"
    failing = create_controller("tests.plugins_for_tests:RecordingController")
    failing.fail_on = "sadness"
    lm = tiny_lm_factory(controller=failing, batch_size=2, journal=str(journal))
    with pytest.raises(RuntimeError):
        lm.generate_until(make_requests(docs))
    assert len(journal.read_text().splitlines()) == 2  # the two anger replies
    with journal.open("a") as f:
        f.write('{"key": "half-written')  # a kill mid-write leaves a partial line

    recorder = create_controller("tests.plugins_for_tests:RecordingController")
    resumed_lm = tiny_lm_factory(controller=recorder, batch_size=2, journal=str(journal))
    resumed = resumed_lm.generate_until(make_requests(docs))
    assert set(recorder.calls) == set(EMOTIONS) - {"anger"}  # anger came from the journal
    fresh = tiny_lm_factory(batch_size=2).generate_until(make_requests(docs))
    assert resumed == fresh
    # The record says how much of the run came from the journal, each doc once: lm-eval pads a
    # short data-parallel rank with copies of its last request, which are not more docs.
    padded = make_requests([*docs, docs[-1]])
    assert resumed_lm.replies == {"generated": 10, "from_journal": 2}
    same = create_controller("tests.plugins_for_tests:RecordingController")
    again = tiny_lm_factory(controller=same, batch_size=2, journal=str(journal))
    again.generate_until(padded)
    assert again.get_model_info()["emobench"]["replies"] == {"generated": 0, "from_journal": 12}


def test_the_journal_separates_emotions_and_controllers(tiny_lm_factory, test_docs, tmp_path):
    journal = tmp_path / "j.jsonl"
    docs = test_docs[:6]  # one situation, six emotions: identical task requests
    tiny_lm_factory(journal=str(journal)).generate_until(make_requests(docs))
    assert len(journal.read_text().splitlines()) == 6
    recorder = create_controller("tests.plugins_for_tests:RecordingController")
    tiny_lm_factory(controller=recorder, journal=str(journal)).generate_until(make_requests(docs))
    assert set(recorder.calls) == set(EMOTIONS)  # another controller: nothing reused


def test_the_journal_separates_model_settings_that_change_replies(
    tiny_lm_factory, test_docs, tmp_path, caplog
):
    """A shorter context (or a revision, an adapter) gives other replies: nothing is reused.
    A batch size only changes how fast they come."""
    journal = tmp_path / "j.jsonl"
    docs = test_docs[:6]

    def calls(**settings) -> set[str]:
        recorder = create_controller("tests.plugins_for_tests:RecordingController")
        lm = tiny_lm_factory(controller=recorder, journal=str(journal), **settings)
        lm.generate_until(make_requests(docs))
        return set(recorder.calls)

    assert calls() == set(EMOTIONS)
    assert calls(batch_size=3) == set()
    with caplog.at_level(logging.WARNING, logger="emobench"):
        assert calls(max_length=512) == set(EMOTIONS)
    # Not silently: the replies that are there and not reused are counted.
    said = [r.getMessage() for r in caplog.records if "under other settings" in r.getMessage()]
    ending = (
        ": 1 reply in the journal made under other settings (model, controller arguments or "
        "code, generation settings) made again"
    )
    assert len(said) == 6 and all(m.endswith(ending) for m in said), said


def test_device_defaults_to_cpu_without_a_gpu(tiny_lm_factory):
    lm = tiny_lm_factory(device=None)  # no device given: emobench chooses
    assert lm.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_scope_that_leaves_a_hook_behind_is_refused(tiny_lm_factory, test_docs):
    lm = tiny_lm_factory(controller="tests.plugins_for_tests:LeakyController")
    with pytest.raises(EmoBenchError, match=r"LeakyController' left 1 hook\(s\) on the model"):
        lm.generate_until(make_requests(test_docs[:1]))


def test_a_controller_is_prepared_with_the_model_and_its_tokenizer(tiny_lm_factory, test_docs):
    controller = create_controller("tests.plugins_for_tests:TokenizerController")
    lm = tiny_lm_factory(controller=controller)
    assert controller.prepared == [(lm.model, lm.tokenizer)]
    (reply,) = lm.generate_until(make_requests(test_docs[:1]))
    assert isinstance(reply, str) and len(controller.prepared) == 1


def test_the_speed_benchmark_builds_requests_the_model_accepts(
    tiny_lm_factory, test_docs, monkeypatch
):
    """benchmarks/speed.py times the model on requests of its own making: they must be the
    task's, or the model refuses them as a prompt lm-eval changed."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    import speed

    replies = tiny_lm_factory().generate_until(speed.requests(test_docs[:2], GEN_KWARGS))
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)
    bad = [dataclasses.replace(speed.requests(test_docs[:1], GEN_KWARGS)[0], arguments=("", {}))]
    with pytest.raises(EmoBenchError, match="lm-eval changed the prompt of doc"):
        tiny_lm_factory().generate_until(bad)


def test_rebuilding_a_runs_prompts_prepares_its_controller(tiny_llama_dir, test_docs):
    """`score --fluency` rebuilds each prompt with the run's controller: prepared, as in a run."""
    from emobench.scoring.fluency import measure_saved

    (ppl,) = measure_saved(
        test_docs[:1],
        ["I am fine."],
        {"pretrained": str(tiny_llama_dir), "device": "cpu"},
        "tests.plugins_for_tests:TokenizerController",
    )
    assert ppl is not None and ppl >= 1.0
