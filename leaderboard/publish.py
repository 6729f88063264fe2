"""Publishing runs with their whole generations: `emobench publish RUNS... --to DIR`.

A published table is only as durable as the replies behind it. When the shared classifier is
rebuilt, every published run must be re-scored (`emobench score`), and that needs each reply,
not the few a report shows. So a run is published as its lm-eval results file and its whole
samples log, gzipped (about a twentieth of the size) and without the SEV situation text (the
doc's scenario and event, the prompt built from them, and what a reply copies of them:
third-party data that re-scoring reads from the SEV files again, emobench.scoring.situations),
beside each other under the names lm-eval gave them;
`emobench score`, `emobench leaderboard` and the HTML report read the `.jsonl.gz` as they read
the plain log.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emobench.leaderboard.collect import TASK, read_row, result_files
from emobench.leaderboard.report import samples_log

from emobench import atomic
from emobench.errors import EmoBenchError
from emobench.jsonl import read_jsonl
from emobench.record import read_record
from emobench.scoring.situations import SITUATION_KEYS, redact

log = logging.getLogger("emobench.leaderboard")


def _absent(path: Path, data: bytes) -> bool:
    """True when `path` does not exist, False when it already holds `data`; other content is
    refused, since it would be overwritten."""
    if not path.exists():
        return True
    if path.read_bytes() == data:
        return False
    raise EmoBenchError(
        f"{path} exists with other content; publish to another directory or remove it first"
    )


def _public_line(record: dict[str, Any]) -> dict[str, Any]:
    """A samples line without the SEV text it carries (third-party data, not ours to publish):
    the doc's situation, the prompt built from it, and what the reply copies of it, which
    becomes a reference that re-scoring resolves against the SEV files (scoring.situations)."""
    out = {k: v for k, v in record.items() if k != "arguments"}
    doc = out.get("doc")
    if not isinstance(doc, dict) or not all(k in doc for k in SITUATION_KEYS):
        return out  # published already
    out["resps"] = [[redact(r, doc) for r in resps] for resps in out["resps"]]
    scored = json.loads(out["filtered_resps"][0])
    scored["text"] = redact(scored["text"], doc)
    out["filtered_resps"] = [json.dumps(scored, ensure_ascii=False)]
    out["doc"] = {k: v for k, v in doc.items() if k not in SITUATION_KEYS}
    return out


def _published_log(source: Path) -> bytes:
    """`source` as published: its lines without the SEV text, gzipped with no name or time in
    the header, so the same log gives the same bytes and publishing again changes nothing."""
    lines = []
    for where, record in read_jsonl(source):
        try:
            lines.append(json.dumps(_public_line(record), ensure_ascii=False) + "\n")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise EmoBenchError(f"{where}: not published: {exc}") from exc
    return gzip.compress("".join(lines).encode("utf-8"), compresslevel=9, mtime=0)


def publish(paths: Iterable[str | Path], dest: str | Path) -> list[Path]:
    """Copy each sev_emotion run's results file into `dest` with its samples log gzipped beside
    it; returns the files written. A run without its samples log is refused (nothing could
    re-score it); a re-scored results file is left out with a warning, as its replies are its
    source run's."""
    paths, dest = list(paths), Path(dest)
    files: dict[Path, bytes] = {}
    for path in result_files(paths):
        row = read_row(path)
        if isinstance(row, str):
            log.warning("%s: not published: %s", path, row)
            continue
        results = json.loads(path.read_text(encoding="utf-8"))
        if (read_record(results) or {}).get("rescored_from"):
            log.warning(
                "%s: not published: a re-scored run; publish the run it was scored from, then "
                "re-score the published log: emobench score %s/samples_%s_<stamp>.jsonl.gz "
                "--classifier NAME --results %s/results_<stamp>_NAME.json",
                path,
                dest,
                TASK,
                dest,
            )
            continue
        samples, note = samples_log(path, results)
        if samples is None:
            raise EmoBenchError(
                f"{path}: not published: {note} A published run keeps every reply, so that a "
                "rebuilt classifier can re-score it."
            )
        files[dest / path.name] = path.read_bytes()
        gz_name = samples.name if samples.suffix == ".gz" else f"{samples.name}.gz"
        files[dest / gz_name] = _published_log(samples)
    if not files:
        raise EmoBenchError(
            f"no {TASK} run to publish under {', '.join(map(str, paths))}; pass --output_path "
            "directories of runs made with --log_samples, or their results_*.json files"
        )
    # Every name is checked before anything is written: a refusal leaves `dest` as it was.
    new = [target for target, data in files.items() if _absent(target, data)]
    for target in new:
        atomic.write_bytes(target, files[target])
    return new
