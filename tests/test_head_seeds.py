"""benchmarks/head_seeds.py: recipes that differ only in their training rows share the frozen
layers' output through --states, a states file made for other inputs is never reused, and
--skip_aside leaves out exactly the aside copies it names."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from emobench.classify.tuning.data import LABELS, Examples

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "head_seeds.py"


@pytest.fixture(scope="module")
def head_seeds() -> Iterator[ModuleType]:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import head_seeds

        yield head_seeds
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_states_file_is_reused_for_the_same_inputs_only(tmp_path, head_seeds) -> None:
    from emobench.classify.tuning import model

    tokenizer, base = model.load_base("minilm")
    texts = ["My hands will not stop shaking.", "Wait, the bus came early?!"]
    cache = str(tmp_path / "states.safetensors")
    made = head_seeds.frozen_states(tokenizer, base, 2, texts, cache)
    assert not list(tmp_path.glob("*.partial"))
    # No tokenizer the second time: the states can only come from the file.
    read = head_seeds.frozen_states(None, base, 2, texts, cache)
    assert len(read) == 2 and all(torch.equal(a, b) for a, b in zip(made, read, strict=True))
    assert [s.shape[1] for s in read] == [base.config.hidden_size] * 2
    for other in (texts[::-1], [*texts, "a third"]):
        with pytest.raises(SystemExit, match="made for other texts"):
            head_seeds.frozen_states(None, base, 2, other, cache)
    with pytest.raises(SystemExit, match="made for other texts, base weights or tuned layers"):
        head_seeds.frozen_states(None, base, 3, texts, cache)
    with torch.no_grad():
        base.encoder.layer[1].output.dense.bias[0] += 1.0
    with pytest.raises(SystemExit, match="base weights"):
        head_seeds.frozen_states(None, base, 2, texts, cache)


def test_training_rows_leave_out_only_the_named_asides(head_seeds) -> None:
    def target(main: str, named: str | None = None) -> np.ndarray:
        row = np.zeros(len(LABELS), dtype=np.float32)
        row[LABELS.index(main)] = 0.75 if named else 1.0
        if named:
            row[LABELS.index(named)] = 0.25
        return row

    rows = [
        ("written", "anger", target("anger"), 1),
        ("aside", "anger", target("anger", "happiness"), 1),
        ("aside", "anger", target("anger", "sadness"), 2),
        ("aside", "fear", target("fear", "happiness"), 3),
        ("aside", "anger", target("anger", "happiness"), 0),
        ("goemotions", "happiness", target("happiness"), 4),
    ]
    ex = Examples(
        [f"text {i}" for i in range(len(rows))],
        np.stack([r[2] for r in rows]),
        [r[0] for r in rows],
        np.array([r[3] for r in rows]),
        [r[1] for r in rows],
        np.array([-1, 0, 0, -1, 0, -1]),
    )
    assert head_seeds.training_rows(ex, [], []).tolist() == [0, 1, 2, 3, 5]
    assert head_seeds.training_rows(ex, [], [("happiness", "anger")]).tolist() == [0, 2, 3, 5]
    assert head_seeds.training_rows(ex, ["aside"], []).tolist() == [0, 5]
    with pytest.raises(ValueError, match="never names its reply's own emotion"):
        head_seeds.training_rows(ex, [], [("anger", "anger")])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--skip_aside", "happiness:anger"], "--skip_aside needs --asides"),
        (["--asides", "--skip_aside", "joy:anger"], "--skip_aside joy:anger: give NAMED:REPLY"),
        (["--asides", "--skip_aside", "anger:anger"], "two different emotions"),
        (["--seeds", "3", "--soup"], "--soup needs two seeds or more, not --seeds '3'"),
    ],
)
def test_wrong_arguments_are_refused_before_any_work(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
