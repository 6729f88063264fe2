"""A per-run journal of finished generations, so an interrupted run resumes where it stopped.

lm-eval's own --use_cache keys replies on the request text, which is the same for the six target
emotions of one situation (only the controller differs), so it would hand one emotion's reply to
another. The journal keys on the doc key and a fingerprint of everything that shapes the reply
(model, its precision and model arguments that change replies, controller spec, generation
settings), one JSON line per reply, appended as each is made.

Each reply is appended with a single `os.write` of one complete line on an O_APPEND descriptor:
the kernel places every such write at the current end of the file, whole, so two processes
sharing a journal never interleave partial lines. A run killed mid-write can still leave a last
line without its newline (a torn line); opening the journal repairs that before anything is
appended, so the next reply starts on a line of its own.

Processes of one data-parallel run (torchrun, accelerate launch) share a journal: each takes
an exclusive advisory lock around its repair and its appends, so one rank's repair can never
cut a line another rank is writing.

No fsync: the journal only saves work. A killed process loses nothing that reached `os.write`
(the page cache outlives it); only a power cut or kernel crash can lose recent lines, and then
the torn-line repair keeps the file readable and the lost replies are simply generated again,
while an fsync per reply would add a disk round trip to every generation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; appends stay whole lines all the same
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _record(line: bytes) -> dict[str, Any] | None:
    """The journal record on one line, or None when the line is not one."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(rec, dict) or not {"key", "fp", "text"} <= rec.keys():
        return None
    return rec


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[tuple[str, str], str] = {}
        self._keys: set[str] | None = None  # the docs with any reply, built when first asked
        if self.path.is_file():
            self._load(self._repair())

    def _repair(self) -> bytes:
        """The journal's bytes, after making sure the file ends with a complete line.

        A last line without its newline is a write that a killed run did not finish: it is cut
        off (its reply is generated again), or, when it is a whole record that only lacks the
        newline, terminated. Either way the next append starts on a fresh line, and the repair
        happens once, so later runs open a clean file without a warning.
        """
        with self.path.open("rb+") as handle, _locked(handle.fileno()):
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return data
            cut = data.rfind(b"\n") + 1
            lineno = data.count(b"\n", 0, cut) + 1
            if _record(data[cut:]) is not None:
                handle.write(b"\n")
                handle.flush()  # inside the lock: another rank appends right after
                log.warning("%s:%d: journal line lacked its newline; added it", self.path, lineno)
                return data + b"\n"
            handle.truncate(cut)
        log.warning(
            "%s:%d: removed a journal line cut short by an interrupted run "
            "(its reply will be generated again)",
            self.path,
            lineno,
        )
        return data[:cut]

    def _load(self, data: bytes) -> None:
        for lineno, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            rec = _record(line)
            if rec is None:
                log.warning(
                    "%s:%d: unreadable journal line skipped (its reply will be generated again)",
                    self.path,
                    lineno,
                )
                continue
            self.entries[(rec["key"], rec["fp"])] = rec["text"]
        log.info("journal %s: %d finished replies", self.path, len(self.entries))

    def get(self, key: str, fp: str) -> str | None:
        return self.entries.get((key, fp))

    def under_other_settings(self, key: str, fp: str) -> bool:
        """Whether the doc has a reply here made under other settings only (so not reused)."""
        if (key, fp) in self.entries:
            return False
        if self._keys is None:
            self._keys = {k for k, _ in self.entries}
        return key in self._keys

    def add(self, key: str, fp: str, text: str) -> None:
        line = json.dumps({"key": key, "fp": fp, "text": text}, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, _APPEND_FLAGS, 0o644)
        try:
            with _locked(fd):
                # One write call for the whole line (unbuffered, so nothing is left to flush).
                # A regular file takes it whole; the loop only matters if the kernel ever
                # returns short (a signal, or a full disk, where the next write raises OSError).
                view = memoryview(line.encode("utf-8"))
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self.entries[(key, fp)] = text
        if self._keys is not None:
            self._keys.add(key)


def kw_key(gen_kwargs: dict[str, Any]) -> str:
    """Generation settings as a key: the same settings in another order are the same key."""
    return json.dumps(gen_kwargs, sort_keys=True, default=str)


class JournalHook:
    """Receives each reply as HFLM finishes it and appends it to the journal under its doc key."""

    def __init__(
        self, journal: Journal, keys: dict[tuple[str, str], list[tuple[str, str]]]
    ) -> None:
        self.journal = journal
        self.keys = keys
        self.unmatched = 0

    def add_partial(self, attr: str, req: tuple, res: Any) -> None:
        queue = self.keys.get((req[0], kw_key(req[1])))
        if not queue:
            # A reply the journal cannot place is still returned; it is only not resumable.
            self.unmatched += 1
            return
        key, fp = queue.pop(0)
        self.journal.add(key, fp, res)
