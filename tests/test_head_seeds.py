"""benchmarks/head_seeds.py: recipes that differ only in their training rows share the frozen
layers' output through --states, and a states file made for other texts is never reused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "head_seeds.py"


@pytest.fixture(scope="module")
def head_seeds():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import head_seeds

        yield head_seeds
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_states_file_is_reused_for_the_same_texts_only(tmp_path, head_seeds) -> None:
    from emobench.classify.tuning import model

    tokenizer, base = model.load_base("minilm")
    texts = ["My hands will not stop shaking.", "Wait, the bus came early?!"]
    cache = str(tmp_path / "states.safetensors")
    made = head_seeds.frozen_states(tokenizer, base, "minilm", 2, texts, cache)
    # No encoder the second time: the states can only come from the file.
    read = head_seeds.frozen_states(None, None, "minilm", 2, texts, cache)
    assert len(read) == 2 and all(torch.equal(a, b) for a, b in zip(made, read, strict=True))
    assert [s.shape[1] for s in read] == [base.config.hidden_size] * 2
    for other in (texts[::-1], [*texts, "a third"]):
        with pytest.raises(SystemExit, match="made for other texts"):
            head_seeds.frozen_states(tokenizer, base, "minilm", 2, other, cache)
    with pytest.raises(SystemExit, match="made for other texts, base or tuned layers"):
        head_seeds.frozen_states(tokenizer, base, "minilm", 3, texts, cache)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--skip_aside", "happiness:anger"], "--skip_aside needs --asides"),
        (["--asides", "--skip_aside", "joy:anger"], "--skip_aside joy:anger: give NAMED:REPLY"),
    ],
)
def test_skip_aside_is_refused_without_asides_or_with_an_unknown_emotion(args, message) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
