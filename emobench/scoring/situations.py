"""The SEV situation text in a run's samples log: kept out of a published log, and put back.

A doc's scenario and event, and the prompt built from them, are third-party data, and a small
model often restates them in its reply. `emobench publish` drops them from each doc and replaces
every run of MIN_SPAN or more characters that a reply shares with its own situation by a
reference to it (⟦e:i:j⟧ for characters i to j of the event, ⟦s:i:j⟧ of the scenario).
Re-scoring reads the situations from the SEV files again by the doc's key, since relevance is
measured against them, and restores each reply exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from emobench.errors import DataError

SITUATION_KEYS = ("theme", "scenario", "event")
# Shorter shared runs are ordinary phrases ("the team's new"), not a copy of the situation.
MIN_SPAN = 24
_REF = re.compile(r"⟦([es]):(\d+):(\d+)⟧")
_FIELDS = {"e": "event", "s": "scenario"}


def restore(text: str, doc: Mapping[str, Any]) -> str:
    """`text` with every reference replaced by the situation text it stands for."""
    return _REF.sub(lambda m: str(doc[_FIELDS[m[1]]])[int(m[2]) : int(m[3])], text)


def reference_parts(text: str) -> list[tuple[str, str]]:
    """`text` cut into ("text", ...) and ("ref", "event 57-134") parts, to show a published
    reply without the situation text its references stand for."""
    parts: list[tuple[str, str]] = []
    at = 0
    for m in _REF.finditer(text):
        if m.start() > at:
            parts.append(("text", text[at : m.start()]))
        parts.append(("ref", f"{_FIELDS[m[1]]} {m[2]}-{m[3]}"))
        at = m.end()
    if at < len(text):
        parts.append(("text", text[at:]))
    return parts


def redact(text: str, doc: Mapping[str, Any]) -> str:
    """`text` with each run of MIN_SPAN or more characters it shares with the doc's event or
    scenario replaced by a reference, longest first; `restore` gives `text` back."""
    if _REF.search(text):
        raise ValueError(f"{doc.get('key')}: the reply already holds a reference like ⟦e:0:1⟧")
    out = text
    for tag, field in _FIELDS.items():
        source = str(doc[field])
        while True:
            match = SequenceMatcher(None, out, source, autojunk=False).find_longest_match(
                0, len(out), 0, len(source)
            )
            if match.size < MIN_SPAN:
                break
            ref = f"⟦{tag}:{match.b}:{match.b + match.size}⟧"
            out = out[: match.a] + ref + out[match.a + match.size :]
    if restore(out, doc) != text:
        raise ValueError(f"{doc.get('key')}: the redacted reply does not restore exactly")
    return out


def restore_situations(samples: list[dict[str, Any]], path: str | Path) -> None:
    """Give the docs of a published log (`doc`, `text` per sample) their situations back from
    the SEV files, and their replies the text the references stand for."""
    lacking = [s for s in samples if not all(k in s["doc"] for k in SITUATION_KEYS)]
    if not lacking:
        return
    from emobench.data import SPLIT_FILES, load_docs

    wanted = {str(s["doc"].get("key")) for s in lacking}
    known: dict[str, dict[str, Any]] = {}
    for split in ("test", *(s for s in SPLIT_FILES if s != "test")):
        known |= {d["key"]: d for d in load_docs(split) if d["key"] in wanted}
        if wanted <= known.keys():
            break
    if missing := sorted(wanted - known.keys()):
        raise DataError(
            f"{path}: {len(missing)} docs without their situation text (e.g. {missing[0]!r}) "
            "are in neither SEV split; point EMOBENCH_SEV_DIR at the SEV data the run used"
        )
    for sample in lacking:
        full = known[str(sample["doc"]["key"])]
        sample["doc"] = {**sample["doc"], **{k: full[k] for k in SITUATION_KEYS}}
        sample["text"] = restore(sample["text"], sample["doc"])
