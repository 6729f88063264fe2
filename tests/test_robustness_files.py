"""Files on disk that a crash, a reinstall or a bad copy leaves behind: the journal, the embedded
model's cache key, and artifacts. Real files and real subprocesses throughout."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from emobench import artifacts, atomic
from emobench.embedded import EmbeddedModel, _cache_target, _version_key
from emobench.errors import EmoBenchError
from emobench.journal import Journal
from tests.helpers import ROOT


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]


@pytest.fixture
def emobench_log() -> Iterator[Records]:
    """What emobench logs, caught on its own logger (the CLI may have stopped propagation)."""
    logger = logging.getLogger("emobench")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def journal_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode().splitlines()]


# The journal


def test_a_torn_last_line_is_cut_once_and_the_next_reply_starts_a_fresh_line(
    tmp_path, emobench_log
):
    path = tmp_path / "run.journal.jsonl"
    first = Journal(path)
    first.add("doc1", "fp", "Angry reply.")
    first.add("doc2", "fp", "Sad reply, with a newline\ninside and ünïcödé.")
    torn = json.dumps({"key": "doc3", "fp": "fp", "text": "Half a répl"}, ensure_ascii=False)
    with path.open("ab") as handle:  # what a run killed in the middle of a write leaves
        handle.write(torn.encode()[:-5])  # cut inside the "é"

    reopened = Journal(path)
    assert emobench_log.warnings() == [
        f"{path}:3: removed a journal line cut short by an interrupted run "
        "(its reply will be generated again)"
    ]
    assert reopened.get("doc1", "fp") == "Angry reply."
    assert reopened.get("doc3", "fp") is None  # regenerated, never half a reply
    reopened.add("doc3", "fp", "Whole reply.")

    emobench_log.records.clear()
    again = Journal(path)
    assert emobench_log.warnings() == []  # repaired once, not warned about on every run
    assert again.entries == {
        ("doc1", "fp"): "Angry reply.",
        ("doc2", "fp"): "Sad reply, with a newline\ninside and ünïcödé.",
        ("doc3", "fp"): "Whole reply.",
    }
    assert [r["key"] for r in journal_lines(path)] == ["doc1", "doc2", "doc3"]


def test_a_whole_record_that_only_lacks_its_newline_is_kept(tmp_path, emobench_log):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"key": "doc1", "fp": "fp", "text": "Kept."}))
    journal = Journal(path)
    assert emobench_log.warnings() == [f"{path}:1: journal line lacked its newline; added it"]
    journal.add("doc2", "fp", "Next.")
    assert Journal(path).entries == {("doc1", "fp"): "Kept.", ("doc2", "fp"): "Next."}
    assert len(journal_lines(path)) == 2


def test_two_journals_on_one_file_append_whole_lines(tmp_path, emobench_log):
    path = tmp_path / "shared.jsonl"
    one, two = Journal(path), Journal(path)
    for i in range(40):
        one.add(f"one-{i}", "fp", "a" * (i * 300))  # up to 12 KB: more than one buffer
        two.add(f"two-{i}", "fp", "ü" * (i * 150))
    merged = Journal(path)
    assert emobench_log.warnings() == []
    assert len(merged.entries) == 80
    assert merged.get("one-39", "fp") == "a" * 11700
    assert merged.get("two-39", "fp") == "ü" * 5850


WRITER = textwrap.dedent(
    """
    import sys
    from emobench.journal import Journal

    journal = Journal(sys.argv[1])
    for i in range(200):
        journal.add(f"{sys.argv[2]}-{i}", "fp", sys.argv[2] * 20000)
    """
)


def test_two_processes_appending_at_once_never_interleave(tmp_path, emobench_log):
    """Lines of 20 KB: a buffered writer splits each into several writes that two writers can
    interleave; one write on an O_APPEND descriptor lands whole."""
    path = tmp_path / "shared.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag], cwd=ROOT)
        for tag in ("x", "y")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = journal_lines(path)
    assert len(lines) == 400
    assert {r["text"] for r in lines} == {"x" * 20000, "y" * 20000}
    assert len(Journal(path).entries) == 400
    assert emobench_log.warnings() == []


# Results files rewritten in place

REWRITER = textwrap.dedent(
    """
    import json, sys
    from emobench import atomic
    for i in range(300):
        atomic.write_text(sys.argv[1], json.dumps({"i": i, "pad": "x" * 200000}))
    """
)


def test_a_results_file_being_rewritten_is_always_whole_to_a_reader(tmp_path):
    """A 200 KB file rewritten 300 times while this process reads it: every read parses."""
    path = tmp_path / "results.json"
    atomic.write_text(path, json.dumps({"i": -1}))
    writer = subprocess.Popen([sys.executable, "-c", REWRITER, str(path)], cwd=ROOT)
    seen = set()
    while writer.poll() is None:
        seen.add(json.loads(path.read_text())["i"])
    assert writer.wait() == 0
    assert json.loads(path.read_text())["i"] == 299
    assert len(seen) > 1  # the reads overlapped the rewrites
    assert [f.name for f in tmp_path.iterdir()] == ["results.json"]
    assert path.stat().st_mode & 0o777 != 0o600  # not mkstemp's private mode


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    atomic.write_text(path, '{"old": true}')
    with pytest.raises(UnicodeEncodeError):
        atomic.write_text(path, '{"new": "' + "x" * 100000 + '\ud800"}')  # unencodable at the end
    assert path.read_text() == '{"old": true}'
    assert [f.name for f in tmp_path.iterdir()] == ["results.json"]


# The embedded model's cache key

FAKE = EmbeddedModel(
    name="fake-model", module="fake_wheel", gguf="fake.gguf", install="pip install fake-wheel"
)


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EMOBENCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "site-packages" / "fake_wheel"
    folder.mkdir(parents=True)
    (folder / FAKE.gguf).write_bytes(os.urandom(3 << 20))
    return folder


def sha16(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def bump_mtime(path: Path, seconds: int) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 10**9))


def test_touching_the_gguf_keeps_the_cache_key_and_new_content_changes_it(fake_wheel, tmp_path):
    gguf = fake_wheel / FAKE.gguf
    key = _version_key(FAKE, fake_wheel)
    assert key == sha16(gguf)  # the content, not the file's dates
    sidecar = tmp_path / "cache" / "models" / "fake-model.gguf-sha256.json"
    assert json.loads(sidecar.read_text())["sha256"][:16] == key

    bump_mtime(gguf, 3600)  # a reinstall of the same wheel, or a `touch`
    assert _version_key(FAKE, fake_wheel) == key
    assert json.loads(sidecar.read_text())["stamp"]["mtime_ns"] == gguf.stat().st_mtime_ns
    assert _cache_target(FAKE, fake_wheel) == tmp_path / "cache" / "models" / f"fake-model-{key}"

    time.sleep(0.05)  # past the file system's coarse clock, so the ctime moves
    gguf.write_bytes(os.urandom(3 << 20))  # another model of the same size
    assert _version_key(FAKE, fake_wheel) == sha16(gguf) != key


def test_a_damaged_hash_record_is_hashed_again(fake_wheel, tmp_path):
    sidecar = tmp_path / "cache" / "models" / "fake-model.gguf-sha256.json"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text('{"stamp": ')
    assert _version_key(FAKE, fake_wheel) == sha16(fake_wheel / FAKE.gguf)
    assert json.loads(sidecar.read_text())["sha256"][:16] == sha16(fake_wheel / FAKE.gguf)
    assert [p.name for p in sidecar.parent.iterdir()] == [sidecar.name]  # no temp file left


def test_a_copy_converted_under_the_old_size_and_mtime_key_is_still_used(fake_wheel, tmp_path):
    gguf = fake_wheel / FAKE.gguf
    stat = gguf.stat()
    legacy = tmp_path / "cache" / "models" / f"fake-model-{stat.st_size}-{int(stat.st_mtime)}"
    legacy.mkdir(parents=True)
    (legacy / "config.json").write_text("{}")
    (legacy / "model.safetensors").write_bytes(b"x")
    assert _cache_target(FAKE, fake_wheel) == legacy  # no second conversion of the same file

    bump_mtime(gguf, 60)  # a reinstall: the old name no longer vouches for the file
    key = _version_key(FAKE, fake_wheel)
    assert _cache_target(FAKE, fake_wheel) == tmp_path / "cache" / "models" / f"fake-model-{key}"
    assert legacy.is_dir()  # never deleted


def test_a_missing_gguf_says_how_to_reinstall(fake_wheel):
    (fake_wheel / FAKE.gguf).unlink()
    with pytest.raises(EmoBenchError) as err:
        _version_key(FAKE, fake_wheel)
    assert str(err.value) == (
        f"{fake_wheel / FAKE.gguf} is missing; reinstall with: pip install fake-wheel"
    )


def test_an_assembled_model_is_still_keyed_on_its_stated_sha256(tmp_path):
    spec = EmbeddedModel("fake-split", "fake_split", "joined.gguf", "pip install x", assembled=True)
    (tmp_path / "data").mkdir()
    digest = hashlib.sha256(b"joined").hexdigest()
    sums = f"{'0' * 64}  other.gguf\n{digest}  joined.gguf\n"
    (tmp_path / "data" / "SHA256SUMS").write_text(sums)
    assert _version_key(spec, tmp_path) == digest[:16]


# Artifacts

HINT = (
    "rebuild it with `emobench discover directions --out runs/d "
    "--model_args pretrained=<this model>`"
)


@pytest.fixture
def artifact(tmp_path) -> Path:
    torch.manual_seed(0)
    meta = {
        "kind": "emotion-directions",
        "command": "emobench discover directions --out runs/d",
        "model": {"name": "tiny"},
    }
    return artifacts.save(tmp_path / "art", {"post_block": torch.randn(6, 2, 16)}, meta)


def bad_tensors(art: Path, detail: str) -> str:
    return f"{art}/tensors.safetensors: truncated or not a safetensors file ({detail}); {HINT}"


def test_an_empty_tensors_file_is_refused_before_any_model_loads(artifact):
    (artifact / "tensors.safetensors").write_bytes(b"")
    with pytest.raises(EmoBenchError) as err:
        artifacts.read_meta(artifact, "emotion-directions")
    assert str(err.value) == bad_tensors(artifact, "header too small")


def test_a_truncated_tensors_file_is_refused_by_read_meta_and_load(artifact):
    tensors = artifact / "tensors.safetensors"
    data = tensors.read_bytes()
    tensors.write_bytes(data[: len(data) // 2])
    message = bad_tensors(artifact, "incomplete metadata, file not fully covered")
    with pytest.raises(EmoBenchError) as err:
        artifacts.read_meta(artifact, "emotion-directions")
    assert str(err.value) == message
    with pytest.raises(EmoBenchError) as err:
        artifacts.load(artifact, kind="emotion-directions")
    assert str(err.value) == message


def test_a_meta_json_that_is_not_json_is_refused(artifact):
    (artifact / "meta.json").write_text('{"kind": "emotion-directions", "model": {"name": ')
    with pytest.raises(EmoBenchError) as err:
        artifacts.read_meta(artifact, "emotion-directions")
    assert str(err.value) == (
        f"{artifact}/meta.json: not valid JSON (Expecting value at line 1 column 50); "
        "rebuild it with `emobench discover directions --out DIR "
        "--model_args pretrained=<this model>`"
    )
    (artifact / "meta.json").write_text("[1, 2]")
    with pytest.raises(EmoBenchError, match=r"meta\.json: expected a JSON object, got list"):
        artifacts.read_meta(artifact, "emotion-directions")


def test_an_artifact_of_another_kind_is_refused(artifact):
    with pytest.raises(EmoBenchError) as err:
        artifacts.read_meta(artifact, "emotion-circuit")
    assert str(err.value) == (
        f"{artifact} holds 'emotion-directions', not 'emotion-circuit'; rebuild it with "
        "`emobench discover circuit --out DIR --model_args pretrained=<this model>`"
    )


def test_the_steer_controller_refuses_a_truncated_artifact_when_constructed(artifact):
    from emobench.controller import create_controller

    tensors = artifact / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-1])
    with pytest.raises(EmoBenchError) as err:
        create_controller("steer", artifact=str(artifact))
    assert str(err.value) == bad_tensors(artifact, "incomplete metadata, file not fully covered")


def test_a_failed_save_leaves_the_previous_artifact_whole(artifact):
    before = {p.name: p.read_bytes() for p in artifact.iterdir()}
    shared = torch.zeros(4)
    with pytest.raises(RuntimeError):  # safetensors refuses tensors that share memory
        artifacts.save(artifact, {"a": shared, "b": shared}, {"kind": "emotion-directions"})
    assert {p.name: p.read_bytes() for p in artifact.iterdir()} == before  # and no temp files
    assert artifacts.read_meta(artifact, "emotion-directions")["model"] == {"name": "tiny"}


def test_saving_over_an_artifact_replaces_both_files(artifact):
    artifacts.save(
        artifact, {"post_block": torch.ones(6, 1, 4)}, {"kind": "emotion-directions", "v": 2}
    )
    assert sorted(p.name for p in artifact.iterdir()) == ["meta.json", "tensors.safetensors"]
    tensors, meta = artifacts.load(artifact, kind="emotion-directions")
    assert meta["v"] == 2 and tensors["post_block"].shape == (6, 1, 4)
    # Both files readable by others, as the rest of an installed package (safetensors alone
    # would leave the tensors private).
    modes = {p.name: p.stat().st_mode & 0o777 for p in artifact.iterdir()}
    assert modes["tensors.safetensors"] == modes["meta.json"]
    assert modes["meta.json"] & 0o044


def test_a_folder_whose_save_stopped_before_meta_json_is_not_an_artifact(artifact):
    (artifact / "meta.json").unlink()  # where a killed save stops at worst
    with pytest.raises(EmoBenchError) as err:
        artifacts.read_meta(artifact, "emotion-directions")
    assert str(err.value) == (
        f"{artifact}: not an emobench artifact (needs meta.json and tensors.safetensors); "
        "rebuild it with `emobench discover directions --out DIR "
        "--model_args pretrained=<this model>`"
    )


def test_an_artifact_serves_its_weights_in_float32_and_bfloat16_but_not_other_weights(
    tiny_llama_dir, tmp_path
):
    from transformers import AutoModelForCausalLM

    f32 = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    b16 = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16)
    meta = {"model": {"name": "tiny", **artifacts.model_fingerprint(f32)}}
    artifacts.check_model(meta, f32, tmp_path)
    artifacts.check_model(meta, b16, tmp_path)
    # Artifacts recorded with the unrounded hash still load on the weights they were made on.
    legacy = {"model": {**meta["model"], "weights_sha256": artifacts.weights_hash(f32, exact=True)}}
    artifacts.check_model(legacy, f32, tmp_path)
    with torch.no_grad():  # changes below bfloat16's resolution: only the exact hash sees them
        for param in f32.parameters():
            param.copy_(param.to(torch.bfloat16).to(torch.float32))
    with pytest.raises(EmoBenchError, match="weights_sha256_exact"):
        artifacts.check_model(meta, f32, tmp_path)
    with torch.no_grad():
        f32.model.layers[0].mlp.down_proj.weight.mul_(1.5)
    with pytest.raises(EmoBenchError, match="weights_sha256 "):
        artifacts.check_model(meta, f32, tmp_path)
