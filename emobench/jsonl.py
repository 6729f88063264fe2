"""Reading JSON-lines files with errors that name the file and line.

Blank lines are skipped, as most JSON-lines readers do (an editor's trailing empty line, or a
blank line between records, holds no record); line numbers in errors stay the file's own. A file
whose name ends in `.gz` is read through gzip (published runs keep their samples logs that way).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from emobench.errors import DataError


def json_error(exc: json.JSONDecodeError, with_line: bool = True) -> str:
    """Where and why JSON failed to parse, as a phrase: "Expecting value at line 1 column 5"."""
    at = "" if exc.msg.endswith(" at") else " at"  # "Unterminated string starting at"
    where = f"line {exc.lineno} column {exc.colno}" if with_line else f"column {exc.colno}"
    return f"{exc.msg}{at} {where}"


def read_json_file(path: Path) -> tuple[Any, str | None]:
    """A whole JSON file's value and None, or None and why it could not be read (a phrase)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({json_error(exc)})"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({exc})"


def open_bytes(path: Path) -> IO[bytes]:
    """`path` for reading bytes, through gzip when its name ends in `.gz`."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_jsonl(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ("file:line", object) for each non-blank line; bad input raises DataError."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; expected a JSON-lines file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        yield from _records(path)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: not a whole gzip file ({exc or type(exc).__name__}); copy it again, "
            "or drop the .gz from its name if it is plain JSON lines"
        ) from exc


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    seen = False
    # Bytes, decoded line by line, so that bad UTF-8 is reported with its line number.
    with open_bytes(path) as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{where}: not UTF-8 text (byte {exc.start + 1} of the line); "
                    "save the file as UTF-8"
                ) from exc
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
            if not line.strip():
                continue
            seen = True
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                # The last line without its newline that does not parse: a cut-off copy.
                hint = (
                    "the file ends in the middle of this line, so it looks truncated: copy it again"
                    if not line.endswith("\n")
                    else "each line must be one complete JSON object"
                )
                raise DataError(
                    f"{where}: not valid JSON ({json_error(exc, with_line=False)}); {hint}"
                ) from exc
            if not isinstance(record, dict):
                raise DataError(
                    f"{where}: expected a JSON object, got {type(record).__name__}; "
                    "each line must be one JSON object"
                )
            yield where, record
    if not seen:
        raise DataError(f"{path}: the file is empty; expected one JSON object per line")
