"""Files written whole: a temporary sibling, then a rename over the final name.

A results file is read by the leaderboard, perhaps while a scoring job is killed mid-write; with
a rename the reader sees the old file or the new one, never half of one, and two writers racing
each leave a whole file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" (not mkstemp, whose files are private): the file gets the
    # mode any new file gets here, and no other writer can be using the same temporary.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after a successful replace
    return path
