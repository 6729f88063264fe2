"""Collect emobench results files into leaderboard rows, and split them into rankings.

A ranking holds only rows that can be compared: the same classifier (name and head hash) and
the same kind of run (full, or cut short with --limit or --samples to the same docs). A partial
run is never ranked against full runs or runs that read other docs (the task's `docs_sha256`;
for a --limit run written before it, the hash of the first n docs, which is what it read);
rows scored by different classifiers never share a ranking, and the default classifier's ranking
comes first.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emobench import EMOTIONS, VALENCES
from emobench.classify import DEFAULT_CLASSIFIER
from emobench.errors import EmoBenchError
from emobench.jsonl import read_json_file
from emobench.record import (
    finite,
    foreign_record,
    given_args,
    model_label,
    read_record,
    task_extras,
)
from emobench.scoring.metrics import docs_digest, task_metrics
from emobench.scoring.rescore import SAMPLES_SUFFIXES, run_stamp

log = logging.getLogger("emobench.leaderboard")

TASK = "sev_emotion"
COLUMNS = [
    "ranking",
    "rank",
    "model",
    "controller",
    "controller_args",
    "classifier",
    "n",
    "partial",
    "docs",
    "acc",
    "acc_match",
    "acc_qa",
    "macro_f1",
    "gate_pass",
    "relevance",
    "ppl",
    *[f"acc_{e}" for e in EMOTIONS],
    *[f"acc_{v}" for v in VALENCES],
    "wall_seconds",
    "replies_from_journal",
    "date",
    "file",
]


def result_files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(p.rglob("results_*.json"))
        else:
            raise EmoBenchError(
                f"{p} does not exist; pass an --output_path directory of an emobench run "
                "or a results_*.json file"
            )
    return found


def row_from_results(results: dict[str, Any], source: str = "") -> dict[str, Any] | None:
    if TASK not in results.get("results", {}):
        return None
    # A run of another lm-eval model (stock `--model hf`) has no record: it ranks as unsteered.
    info = read_record(results) or foreign_record(results, TASK)
    metrics = task_metrics(results, TASK)
    size = (results.get("n-samples") or {}).get(TASK) or {}
    extras = task_extras(results, TASK)
    qa = extras.get("quality_adjusted") or {}
    controller = info.get("controller", {})
    return {
        "model": model_label(results, info.get("model", "?")),
        "controller": controller.get("name", "?"),
        # The settings that ran: a controller's resolved defaults (spec "effective") over the
        # arguments not at their default (older records: as given); the full spec stays in the
        # results.
        "controller_args": json.dumps(
            {**_changed(controller, info), **(controller.get("effective") or {})},
            sort_keys=True,
        ),
        "classifier": _classifier_name(info.get("classifier", {})),
        "n": size.get("effective"),
        # Fewer docs than the task has (--limit, or a subset of samples): not a full run.
        "partial": _partial(size, results),
        # Which docs a partial run read (a full run reads them all); None in older results.
        "docs": _docs(results, size.get("effective")),
        **{k: finite(metrics.get(k)) for k in COLUMNS if k.startswith("acc")},
        "macro_f1": finite(extras.get("macro_f1")),
        # Quality-adjusted accuracy: correct AND through the model's quality gate (emobench.gate).
        "acc_qa": finite(qa.get("acc_qa")),
        "gate_pass": finite(qa.get("gate_pass")),
        "relevance": finite(metrics.get("relevance")),
        "ppl": finite(metrics.get("ppl")),
        "wall_seconds": finite(_number(results.get("total_evaluation_time_seconds"))),
        # A resumed run's wall time covers only the replies it generated.
        "replies_from_journal": _count(_field(info.get("replies"), "from_journal")),
        "date": results.get("date"),
        "file": source,
    }


def _changed(controller: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    changed = controller.get("changed")
    return dict(changed) if isinstance(changed, dict) else given_args(controller, info)


def _field(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    """lm-eval writes the wall time as a string."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _partial(size: dict[str, Any], results: dict[str, Any]) -> bool:
    limit = (results.get("config") or {}).get("limit")
    effective, original = size.get("effective"), size.get("original")
    short = isinstance(effective, int) and isinstance(original, int) and effective < original
    return bool(short or limit not in (None, 0))


def _docs(results: dict[str, Any], n: Any) -> str | None:
    block = (results.get("results") or {}).get(TASK) or {}
    digest = block.get("docs_sha256,classify")
    if isinstance(digest, str):
        return digest[:12]
    # Results written before the task reported it: a --limit run read the first n docs.
    if (results.get("config") or {}).get("limit") not in (None, 0) and isinstance(n, int):
        keys = _test_keys()
        if keys is not None and 0 < n <= len(keys):
            return docs_digest(keys[:n])[:12]
    return None


@functools.lru_cache(maxsize=1)
def _test_keys() -> tuple[str, ...] | None:
    """The test split's doc keys in lm-eval's order, or None where the split is not on this
    machine (a leaderboard never downloads it)."""
    from emobench.data import expand, load_skeletons, local_split

    try:
        path = local_split("test")
        return None if path is None else tuple(d["key"] for d in expand(load_skeletons(path)))
    except EmoBenchError:
        return None


def _classifier_name(spec: dict[str, Any]) -> str:
    """Name plus the head's hash, so runs scored by different heads are never merged."""
    sha = (spec.get("head") or {}).get("sha256")
    return f"{spec.get('name', '?')}@{sha[:8]}" if sha else spec.get("name", "?")


def read_row(path: Path) -> dict[str, Any] | str:
    """The leaderboard row of one results file, or why the file has none."""
    if path.name.startswith("samples_") and path.name.endswith(SAMPLES_SUFFIXES):
        # lm-eval names a run's samples log and results file with one time stamp.
        beside = sorted(path.parent.glob(f"*_{run_stamp(path)}.json"))
        return "a samples log, not a results file; pass its run's " + (
            str(beside[0]) if beside else "results_*.json"
        )
    results, problem = read_json_file(path)
    if problem:
        return problem
    if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
        return "not an lm-eval results file (no 'results' object)"
    if TASK not in results["results"]:
        return f"lm-eval results without {TASK}"
    try:
        return row_from_results(results, str(path)) or f"no {TASK} results"
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return f"malformed {TASK} results ({type(exc).__name__}: {exc})"


def collect(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """One row per (model, controller + args, classifier, docs read): the newest run wins. Rows
    come in rankings (`ranking`, `rank`): full runs first, each classifier on its own, best first.

    A path that does not exist is an error; a file that holds no emobench results (damaged,
    or another task's) is skipped with a warning that names it and says why.
    """
    newest: dict[tuple, dict[str, Any]] = {}
    for path in result_files(paths):
        row = read_row(path)
        if isinstance(row, str):
            log.warning("%s: skipped: %s", path, row)
            continue
        key = (
            *(row[k] for k in ("model", "controller", "controller_args", "classifier", "n")),
            row["docs"] if row["partial"] else None,
        )
        if key not in newest or (row["date"] or 0) >= (newest[key]["date"] or 0):
            newest[key] = row
    return ranked(list(newest.values()))


def ranking_of(row: dict[str, Any]) -> str:
    if not row["partial"]:
        return f"{TASK}, scored by {row['classifier']}, full runs"
    # Runs of one size that read other docs (--samples) are told apart by their docs' hash.
    which = f"docs {row['docs']}" if row["docs"] else "docs not recorded"
    return (
        f"{TASK}, scored by {row['classifier']}, partial runs of {row['n']} docs ({which}), "
        "not comparable with other docs"
    )


def ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped into rankings (full before partial, larger partial runs first, then the
    default classifier before others) and ranked within each by expression accuracy, ties
    sharing a rank; a row without accuracy comes last."""
    ordered = sorted(
        rows,
        key=lambda r: (
            r["partial"],
            -(r["n"] or 0) if r["partial"] else 0,
            (r["docs"] or "") if r["partial"] else "",
            r["classifier"].split("@")[0] != DEFAULT_CLASSIFIER,
            r["classifier"],
            r["acc"] is None,
            -(r["acc"] or 0),
            r["controller"],
        ),
    )
    counts: dict[str, int] = {}
    previous: dict[str, dict[str, Any]] = {}
    for row in ordered:
        row["ranking"] = ranking = ranking_of(row)
        counts[ranking] = counts.get(ranking, 0) + 1
        # Equal accuracy, equal rank (1, 2, 2, 4): the name order of tied rows means nothing.
        before = previous.get(ranking)
        tied = before is not None and row["acc"] is not None and before["acc"] == row["acc"]
        row["rank"] = before["rank"] if tied else counts[ranking]
        previous[ranking] = row
    return ordered


def rankings(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(title, rows) per ranking, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["ranking"], []).append(row)
    return list(out.items())
