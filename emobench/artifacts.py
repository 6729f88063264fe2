"""Artifacts (emotion directions, circuits): safetensors tensors + JSON metadata, never pickle.

The metadata names the model (and a hash of its weights), its shape, the hook points and the
recipe; loading an artifact into a model it was not built for fails with a clear message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from emobench import __version__
from emobench.errors import EmoBenchError


def weights_hash(model: torch.nn.Module, sample: int = 4096) -> str:
    """A hash of every parameter's name, shape and a strided sample of its values.

    Sampling keeps this fast for billion-parameter models; any two different checkpoints
    differ in the sampled values in practice.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        picked = flat[:: max(1, flat.numel() // sample)].to(torch.float32).cpu().contiguous()
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
    }


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write DIR/tensors.safetensors and DIR/meta.json."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous().cpu() for k, v in tensors.items()}, str(out / "tensors.safetensors")
    )
    meta = {**meta, "emobench_version": __version__}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load(
    path: str | Path, model: torch.nn.Module | None = None, kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an artifact; with `kind`, refuse another kind; with `model`, refuse it unless it was
    built for that model."""
    src = Path(path)
    meta = read_meta(src, kind)
    if model is not None:
        check_model(meta, model, src)
    return load_file(str(src / "tensors.safetensors")), meta


def read_meta(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """An artifact's metadata, checked to be of `kind` (the tensors are not read)."""
    src = Path(path)
    meta_file, tensor_file = src / "meta.json", src / "tensors.safetensors"
    if not meta_file.is_file() or not tensor_file.is_file():
        raise EmoBenchError(
            f"{src}: not an emobench artifact (needs meta.json and tensors.safetensors)"
        )
    meta = json.loads(meta_file.read_text())
    if kind is not None and meta.get("kind") != kind:
        raise EmoBenchError(
            f"{src} holds {meta.get('kind', 'an unnamed kind')!r}, not {kind!r}; "
            f"{rebuild_hint(meta, kind)}"
        )
    return meta


def rebuild_hint(meta: dict[str, Any], kind: str | None = None) -> str:
    """How to rebuild an artifact, from the command its own metadata records."""
    command = meta.get("command") if meta.get("kind") == kind or kind is None else None
    command = command or f"emobench discover {(kind or 'directions').split('-')[-1]} --out DIR"
    return f"rebuild it with `{command} --model_args pretrained=<this model>`"


def check_model(meta: dict[str, Any], model: torch.nn.Module, where: Path | str) -> None:
    built = meta.get("model", {})
    here = model_fingerprint(model)
    for key in ("num_hidden_layers", "hidden_size", "weights_sha256"):
        if built.get(key) != here[key]:
            raise EmoBenchError(
                f"{where} was built for {built.get('name', '?')} ({key} {built.get(key)!r}), "
                f"not for this model ({key} {here[key]!r}); {rebuild_hint(meta)}"
            )
