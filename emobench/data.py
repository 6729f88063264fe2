"""SEV (Scenario-Event with Valence): resolve the split files, validate them, expand them to docs.

One skeleton line holds a scenario and three events (positive, neutral, negative). An item is
(skeleton, valence); a doc is (item, target emotion): 160 x 3 x 6 = 2,880 docs per split.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emobench import EMOTIONS, VALENCES
from emobench.errors import DataError
from emobench.jsonl import read_jsonl
from emobench.paths import cache_dir

SPLIT_FILES = {"train": "train.jsonl", "test": "test.jsonl"}
# The upstream repository names the files differently from the split names used here.
UPSTREAM_BASE = "https://raw.githubusercontent.com/Aurora-cx/EmotionCircuits-LLM/main/data/"
UPSTREAM_FILES = {"train": "sev.jsonl", "test": "test_set.jsonl"}
REQUIRED_FIELDS = ("theme", "scenario", "event", "skeleton_id")


@dataclass(frozen=True)
class Skeleton:
    skeleton_id: str
    theme: str
    scenario: str
    events: dict[str, str]


def user_message(scenario: str, event: str) -> str:
    """The user turn of every SEV prompt (METHOD.md)."""
    return f"{scenario}\n{event}"


def doc_key(skeleton_id: str, valence: str, emotion: str) -> str:
    return f"{skeleton_id}__{valence}__{emotion}"


def _check_split(split: str) -> None:
    if split not in SPLIT_FILES:
        raise DataError(f"unknown SEV split {split!r}; use one of: {', '.join(SPLIT_FILES)}")


def resolve_split(split: str) -> Path:
    """Find a split file: $EMOBENCH_SEV_DIR, then the user cache, then the upstream raw file."""
    return local_split(split) or _download(split, cache_dir() / "sev" / SPLIT_FILES[split])


def local_split(split: str) -> Path | None:
    """A split file on this machine ($EMOBENCH_SEV_DIR, then the user cache), or None; a
    $EMOBENCH_SEV_DIR without it is an error, never a download."""
    _check_split(split)
    name = SPLIT_FILES[split]
    if env := os.environ.get("EMOBENCH_SEV_DIR"):
        folder = Path(env).expanduser()
        if not folder.is_dir():
            raise DataError(
                f"EMOBENCH_SEV_DIR={env}: "
                f"{'not a directory' if folder.exists() else 'no such directory'}; point it at "
                f"a directory holding {' and '.join(SPLIT_FILES.values())} (for example "
                "../shared/sev)"
            )
        path = folder / name
        if not path.is_file():
            raise DataError(
                f"EMOBENCH_SEV_DIR={env} has no {name}; point it at a directory holding "
                f"{' and '.join(SPLIT_FILES.values())} (for example ../shared/sev)"
            )
        return path
    cached = cache_dir() / "sev" / name
    return cached if cached.is_file() else None


def _download(split: str, dest: Path) -> Path:
    url = UPSTREAM_BASE + UPSTREAM_FILES[split]
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            payload = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DataError(
            f"SEV {split} split not found locally and the download of {url} failed ({exc}); "
            f"set EMOBENCH_SEV_DIR to a directory holding {SPLIT_FILES[split]}"
        ) from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".part")
    partial.write_bytes(payload)
    # Validate before the file takes its final name, so a bad download is never cached.
    try:
        load_skeletons(partial)
    except DataError as exc:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"the download of {url} is not the SEV {split} split ({exc}); nothing was cached: "
            f"set EMOBENCH_SEV_DIR to a directory holding {SPLIT_FILES[split]}"
        ) from exc
    partial.replace(dest)
    return dest


def _nonempty_str(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _validate(record: dict[str, Any], where: str, seen: dict[str, str]) -> Skeleton:
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise DataError(
            f"{where}: missing field(s) {', '.join(missing)}; "
            f"every line needs {', '.join(REQUIRED_FIELDS)}"
        )
    for field in ("theme", "scenario", "skeleton_id"):
        if not _nonempty_str(record[field]):
            raise DataError(f"{where}: field {field!r} must be a non-empty string")
    event = record["event"]
    if not isinstance(event, dict):
        raise DataError(f"{where}: field 'event' must be an object with keys {', '.join(VALENCES)}")
    if set(event) != set(VALENCES):
        unknown = [repr(v) for v in event if v not in VALENCES]
        absent = [repr(v) for v in VALENCES if v not in event]
        problems = ([f"unknown valence(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"no {', '.join(absent)}"] if absent else []
        )
        raise DataError(
            f"{where}: 'event' has {' and '.join(problems)}; expected exactly the keys "
            f"{', '.join(VALENCES)}"
        )
    for valence in VALENCES:
        if not _nonempty_str(event[valence]):
            raise DataError(f"{where}: event[{valence!r}] must be a non-empty string")
    sid = record["skeleton_id"]
    if sid in seen:
        raise DataError(
            f"{where}: duplicate skeleton_id {sid!r} (first seen at {seen[sid]}); "
            "every skeleton_id must be unique"
        )
    seen[sid] = where
    return Skeleton(sid, record["theme"], record["scenario"], {v: event[v] for v in VALENCES})


def load_skeletons(path: str | Path) -> list[Skeleton]:
    """Read and validate a SEV jsonl file; any bad line raises DataError('file:line: ...')."""
    seen: dict[str, str] = {}
    return [_validate(record, where, seen) for where, record in read_jsonl(path)]


def expand(skeletons: list[Skeleton]) -> Iterator[dict[str, str]]:
    """Docs in a stable order: skeleton (file order), then valence, then emotion."""
    for sk in skeletons:
        for valence in VALENCES:
            for emotion in EMOTIONS:
                yield {
                    "key": doc_key(sk.skeleton_id, valence, emotion),
                    "skeleton_id": sk.skeleton_id,
                    "theme": sk.theme,
                    "valence": valence,
                    "target_emotion": emotion,
                    "scenario": sk.scenario,
                    "event": sk.events[valence],
                }


def load_docs(split: str) -> list[dict[str, str]]:
    return list(expand(load_skeletons(resolve_split(split))))


def file_sha256(path: str | Path) -> str:
    """Read in 1 MiB chunks: model weights run to hundreds of MB."""
    sha = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()
