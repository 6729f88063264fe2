"""A per-run journal of finished generations, so an interrupted run resumes where it stopped.

lm-eval's own --use_cache keys replies on the request text, which is the same for the six target
emotions of one situation (only the controller differs), so it would hand one emotion's reply to
another. The journal keys on the doc key and a fingerprint of everything that shapes the reply
(model, controller spec, generation settings), one JSON line per reply, appended as each is made.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[tuple[str, str], str] = {}
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        with self.path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                try:
                    rec = json.loads(line)
                    self.entries[(rec["key"], rec["fp"])] = rec["text"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    # A run killed mid-write leaves a partial last line: that reply is made again.
                    log.warning(
                        "%s:%d: unreadable journal line skipped (regenerated)", self.path, lineno
                    )
        log.info("journal %s: %d finished replies", self.path, len(self.entries))

    def get(self, key: str, fp: str) -> str | None:
        return self.entries.get((key, fp))

    def add(self, key: str, fp: str, text: str) -> None:
        self.entries[(key, fp)] = text
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(
                json.dumps({"key": key, "fp": fp, "text": text}, ensure_ascii=False) + "\n"
            )
