"""Artifacts (emotion directions, circuits): safetensors tensors + JSON metadata, never pickle.

The metadata names the model (and a hash of its weights), its shape, the hook points and the
recipe; loading an artifact into a model it was not built for fails with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from emobench import __version__
from emobench.errors import EmoBenchError
from emobench.jsonl import json_error

META = "meta.json"
TENSORS = "tensors.safetensors"


def weights_hash(model: torch.nn.Module, sample: int = 4096, exact: bool = False) -> str:
    """A hash of every parameter's name, shape and a strided sample of its values.

    Sampling keeps this fast for billion-parameter models; any two different checkpoints
    differ in the sampled values in practice. The sampled values are rounded to bfloat16 first,
    so one checkpoint loaded in float32 or in bfloat16 hashes the same and its artifacts serve
    both; `exact` hashes them unrounded, as artifacts made before that rule recorded.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        picked = flat[:: max(1, flat.numel() // sample)]
        if not exact and picked.is_floating_point():
            picked = picked.to(torch.bfloat16)
        picked = picked.to(torch.float32).cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(picked.numpy().tobytes())
    return digest.hexdigest()


def model_fingerprint(model: torch.nn.Module) -> dict[str, Any]:
    config = model.config
    return {
        "model_type": getattr(config, "model_type", type(model).__name__),
        "num_hidden_layers": int(config.num_hidden_layers),
        "hidden_size": int(config.hidden_size),
        "weights_sha256": weights_hash(model),
        "weights_sha256_exact": weights_hash(model, exact=True),
    }


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write DIR/tensors.safetensors and DIR/meta.json, so that DIR never looks complete unless
    it is: each file is written whole under a temporary name first, the old meta.json (which
    makes a folder an artifact) goes before the new tensors take their name, and the new
    meta.json comes last. A discovery killed at any point leaves either the old artifact, or a
    folder without meta.json (refused as "not an emobench artifact"), or the new artifact."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "emobench_version": __version__}
    tensor_tmp = _temp_name(out, TENSORS)
    meta_tmp = _temp_name(out, META)
    try:
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tensor_tmp))
        # safetensors recreates the file private (0600); an artifact is shipped and shared, so
        # it gets the mode of any new file here, as meta.json has.
        os.chmod(tensor_tmp, meta_tmp.stat().st_mode & 0o777)
        meta_tmp.write_text(json.dumps(meta, indent=2) + "\n")
        # Flushed to disk before the renames: a crash must not leave the final names on empty
        # files. Once per discovery, so the cost does not matter.
        for tmp in (tensor_tmp, meta_tmp):
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
        (out / META).unlink(missing_ok=True)
        os.replace(tensor_tmp, out / TENSORS)
        os.replace(meta_tmp, out / META)
    finally:
        tensor_tmp.unlink(missing_ok=True)
        meta_tmp.unlink(missing_ok=True)
    return out


def _temp_name(folder: Path, name: str) -> Path:
    """A new empty file beside `name` (created like any other file, so the umask sets its mode,
    where mkstemp would make it private)."""
    tmp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.open("x").close()
    return tmp


def load(
    path: str | Path, model: torch.nn.Module | None = None, kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an artifact; with `kind`, refuse another kind; with `model`, refuse it unless it was
    built for that model."""
    src = Path(path)
    meta = read_meta(src, kind)
    if model is not None:
        check_model(meta, model, src)
    try:
        tensors = load_file(str(src / TENSORS))
    except (SafetensorError, OSError) as exc:  # changed since read_meta checked it
        raise _bad_tensors(src, meta, kind, exc) from exc
    return tensors, meta


def read_meta(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """An artifact's metadata, checked to be of `kind`, beside a readable safetensors file.

    Controllers call this before any model loads, so a damaged artifact fails at once; the
    tensors file's header is parsed (which checks that the file covers every tensor it
    declares), its tensors are not read.
    """
    src = Path(path)
    meta_file, tensor_file = src / META, src / TENSORS
    if not meta_file.is_file() or not tensor_file.is_file():
        raise EmoBenchError(
            f"{src}: not an emobench artifact (needs {META} and {TENSORS}); "
            f"{rebuild_hint({}, kind)}"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmoBenchError(
            f"{meta_file}: not valid JSON ({_reason(exc)}); {rebuild_hint({}, kind)}"
        ) from exc
    if not isinstance(meta, dict):
        raise EmoBenchError(
            f"{meta_file}: expected a JSON object, got {type(meta).__name__}; "
            f"{rebuild_hint({}, kind)}"
        )
    if kind is not None and meta.get("kind") != kind:
        raise EmoBenchError(
            f"{src} holds {meta.get('kind', 'an unnamed kind')!r}, not {kind!r}; "
            f"{rebuild_hint(meta, kind)}"
        )
    try:
        with safe_open(str(tensor_file), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise _bad_tensors(src, meta, kind, exc) from exc
    return meta


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return json_error(exc)
    return str(exc)


def _bad_tensors(
    src: Path, meta: dict[str, Any], kind: str | None, exc: Exception
) -> EmoBenchError:
    detail = str(exc).removeprefix("Error while deserializing header: ")
    return EmoBenchError(
        f"{src / TENSORS}: truncated or not a safetensors file ({detail}); "
        f"{rebuild_hint(meta, kind)}"
    )


def rebuild_hint(meta: dict[str, Any], kind: str | None = None) -> str:
    """How to rebuild an artifact, from the command its own metadata records."""
    command = meta.get("command") if meta.get("kind") == kind or kind is None else None
    command = command or f"emobench discover {(kind or 'directions').split('-')[-1]} --out DIR"
    return f"rebuild it with `{command} --model_args pretrained=<this model>`"


def check_model(meta: dict[str, Any], model: torch.nn.Module, where: Path | str) -> None:
    """Refuse an artifact built on other weights. The bfloat16-rounded hash lets one checkpoint
    serve both precisions; a float32 model is also held to the exact hash when the artifact has
    one, so a fine-tune whose changes are below bfloat16's resolution is not taken for its base."""
    built = meta.get("model", {})
    here = model_fingerprint(model)
    checks = ["num_hidden_layers", "hidden_size", "weights_sha256"]
    if built.get("weights_sha256_exact") and next(model.parameters()).dtype == torch.float32:
        checks.append("weights_sha256_exact")
    for key in checks:
        if built.get(key) == here[key]:
            continue
        if key == "weights_sha256" and built.get(key) == here["weights_sha256_exact"]:
            continue  # an artifact recorded with the unrounded hash, on the same weights
        raise EmoBenchError(
            f"{where} was built for {built.get('name', '?')} ({key} {built.get(key)!r}), "
            f"not for this model ({key} {here[key]!r}); {rebuild_hint(meta)}"
        )
