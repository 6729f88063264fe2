"""Knocking out exactly an attribute's discoveries (`ablate discoveries=true`, `analyze
attributes --neurons discoveries`), on a tiny model's artifact whose masks name known neurons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from emobench.controller import create_controller
from emobench.errors import EmoBenchError
from tests.helpers import emobench, last_line

# Flat neuron ids (layer 0 holds 0-127, layer 1 128-255 in the tiny Llama).
PLANTED = {"valence": [3, 70, 130, 200, 255], "arousal": [5, 6, 140]}


def _plant(found: Path, out: Path, planted: dict[str, list[int]]) -> Path:
    """A copy of a real artifact whose discovery masks name `planted`, and nothing else."""
    shutil.copytree(found, out)
    tensors = load_file(out / "tensors.safetensors")
    meta = json.loads((out / "meta.json").read_text())
    mask = torch.zeros_like(tensors["significant"])
    for attribute, ids in planted.items():
        mask[meta["attributes"].index(attribute), ids] = 1
    tensors["significant"] = mask
    save_file(tensors, out / "tensors.safetensors")
    return out


@pytest.fixture(scope="module")
def planted(tiny_lm_factory, tmp_path_factory) -> tuple[object, Path]:
    """A real discovery on the tiny model (20 permutations: no discoveries of its own), with
    the masks of two attributes set to known neurons."""
    from emobench.discovery.attributes import discover_attributes

    lm = tiny_lm_factory()
    found = tmp_path_factory.mktemp("attributes") / "found"
    discover_attributes(lm.model, lm.tokenizer, "tiny", found, permutations=20, batch_size=16)
    out = _plant(found, found.parent / "planted", PLANTED)
    return lm, out


def test_ablate_zeroes_every_discovery_and_its_control_keeps_the_layers(planted) -> None:
    lm, path = planted
    ctrl = create_controller("ablate", attribute="valence", discoveries="true", artifact=path)
    assert ctrl.chosen(lm.model) == {0: [3, 70], 1: [2, 72, 127]}
    control = create_controller(
        "ablate", attribute="valence", discoveries="true", random=1, artifact=path
    )
    drawn = control.chosen(lm.model)
    assert {k: len(v) for k, v in drawn.items()} == {0: 2, 1: 3}
    assert not set(drawn[0]) & {3, 70} and not set(drawn[1]) & {2, 72, 127}
    assert ctrl.spec()["effective"] == {
        "attribute": "valence",
        "top": None,
        "discoveries": True,
        "random": None,
    }
    # 100 of layer 0's 128 neurons leave too few others for a control of the same size.
    crowded_dir = _plant(path, path.parent / "crowded", {"control": list(range(100))})
    crowded = create_controller(
        "ablate", attribute="control", discoveries="true", random=1, artifact=crowded_dir
    )
    with pytest.raises(EmoBenchError, match="layer 0 has 100 of the set's 128 neurons"):
        crowded.chosen(lm.model)
    none = create_controller("ablate", attribute="fear-face", discoveries="true", artifact=path)
    with pytest.raises(EmoBenchError, match=r"'fear-face' has no discoveries in .*top=N"):
        none.chosen(lm.model)
    with pytest.raises(EmoBenchError, match="top=5 would be ignored"):
        create_controller("ablate", attribute="valence", discoveries=True, top=5, artifact=path)
    said = "ablate: discoveries=maybe: not a yes/no value; use discoveries=true"
    with pytest.raises(EmoBenchError, match=said):
        create_controller("ablate", attribute="valence", discoveries="maybe", artifact=path)


def test_the_analysis_of_discoveries_leaves_out_the_attributes_without_any(
    planted, tmp_path
) -> None:
    from emobench.analysis.attributes import analyze_attributes

    lm, path = planted
    meta = json.loads((path / "meta.json").read_text())
    lm.controller = create_controller("none")
    result = analyze_attributes(
        lm, path, tmp_path / "out", meta, limit=2, seeds=1, neurons="discoveries"
    )
    assert {a: r["neurons"] for a, r in result["attributes"].items()} == {
        "valence": 5,
        "arousal": 3,
    }
    assert all(r["significant_in_top"] is None for r in result["attributes"].values())
    assert result["top"] is None
    assert result["without_discoveries"] == [a for a in meta["attributes"] if a not in PLANTED]
    assert result["importance_vs_excess_drop"] == {"spearman": None, "p": None}  # two points
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "knock-out of each attribute's discoveries (" in summary
    assert "| valence |" in summary and "| fear-face |" not in summary


def test_the_command_refuses_top_beside_discoveries(planted, tmp_path) -> None:
    _, path = planted
    proc = emobench(
        *["analyze", "attributes", str(path), "--out", str(tmp_path / "x")],
        *["--neurons", "discoveries", "--top", "10"],
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--neurons discoveries knocks out every discovery" in last_line(proc)
