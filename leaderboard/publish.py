"""Publishing runs with their whole generations: `emobench publish RUNS... --to DIR`.

A published table is only as durable as the replies behind it. When the shared classifier is
rebuilt, every published run must be re-scored (`emobench score`), and that needs each reply,
not the few a report shows. So a run is published as its lm-eval results file and its whole
samples log, gzipped (about a fifth of the size), beside each other under the names lm-eval gave
them; `emobench score`, `emobench leaderboard` and the HTML report read the `.jsonl.gz` as they
read the plain log.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from emobench.leaderboard.collect import TASK, read_row, result_files
from emobench.leaderboard.report import samples_log

from emobench import atomic
from emobench.errors import EmoBenchError
from emobench.record import read_record

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


def _gzipped(source: Path) -> bytes:
    """`source` gzipped with no name or time in the header: the same log gives the same bytes,
    so publishing again changes nothing in a repository."""
    raw = source.read_bytes()
    if source.suffix == ".gz":
        return raw
    return gzip.compress(raw, compresslevel=9, mtime=0)


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
        files[dest / gz_name] = _gzipped(samples)
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
