"""The end-of-run table of expression accuracy, from an lm-eval results dict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from emobench import EMOTIONS, VALENCES
from emobench.record import foreign_record, given_args, read_record, task_extras
from emobench.scoring.metrics import task_metrics


def percent(value: float | None) -> str:
    """A share as a percentage with two decimals; blank when there is no value."""
    return "" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def run_table(results: Mapping[str, Any], task: str = "sev_emotion", fmt: str = "simple") -> str:
    m = task_metrics(results, task)
    info = read_record(results) or foreign_record(results, task)
    n = results.get("n-samples", {}).get(task, {}).get("effective")
    extra = task_extras(results, task)
    rows = [["overall", percent(m.get("acc")), n if n is not None else ""]]
    # An emotion's replies are its row of the confusion matrix; the situations' counts are not
    # in lm-eval's results (a --limit run need not cover every slice).
    conf = extra.get("confusion") or {}
    per = {
        lab: sum(r) for lab, r in zip(conf.get("labels", []), conf.get("matrix", []), strict=True)
    }
    rows += [[f"  {e}", percent(m.get(f"acc_{e}")), per.get(e, "")] for e in EMOTIONS]
    rows += [[f"  {v} situations", percent(m.get(f"acc_{v}")), ""] for v in VALENCES]
    controller = info.get("controller", {})
    args = given_args(controller, info)
    title = (
        f"{task}: expression accuracy (%) | model {info.get('model', '?')} | "
        f"controller {controller.get('name', '?')}{' ' + str(args) if args else ''} | "
        f"classifier {info.get('classifier', {}).get('name', '?')}"
    )
    quality = [
        ("relevance to the situation (cosine)", "relevance", lambda v: f"{v:.3f}"),
        ("distinct-2 (x100)", "distinct_2", percent),
        ("longest repeated n-gram (words)", "longest_repeat", lambda v: f"{v:.2f}"),
        ("cut off, no closing punctuation %", "truncated", percent),
        ("at most two sentences %", "two_sentences", percent),
        ("words per reply", "words", lambda v: f"{v:.1f}"),
        ("perplexity under the unsteered model (geo. mean)", "ppl", lambda v: f"{v:.2f}"),
    ]
    rows_q = [
        [label, show(m[key])] for label, key, show in quality if key in m and not math.isnan(m[key])
    ]
    if "macro_f1" in extra:
        rows.append(["macro-F1 (x100)", percent(extra["macro_f1"]), n if n is not None else ""])
    rows += adjusted_rows(extra.get("quality_adjusted") or {}, n)
    table = tabulate(
        rows,
        headers=["slice", "accuracy %", "n"],
        tablefmt=fmt,
        colalign=("left", "right", "right"),
        disable_numparse=True,
    )
    if rows_q:
        table += "\n\nreply quality (mean over replies)\n" + tabulate(
            rows_q, headers=["measure", "value"], tablefmt=fmt, disable_numparse=True
        )
    if "confusion" in extra:
        table += "\n\n" + confusion_table(extra["confusion"], fmt)
    return f"{title}\n{table}"


def adjusted_rows(qa: Mapping[str, Any], n: Any = "") -> list[list[Any]]:
    """Quality-adjusted accuracy and the gate's pass rates, when a gate was calibrated."""
    value = qa.get("acc_qa")
    if value is None or math.isnan(value):
        return []
    n = "" if n is None else n
    rows = [["quality-adjusted accuracy", percent(value), n]]
    rows += [[f"  {e} (quality-adjusted)", percent(qa.get(f"acc_qa_{e}")), ""] for e in EMOTIONS]
    rows.append(["replies through the quality gate", percent(qa.get("gate_pass")), n])
    checks = (("fluent", "fluent"), ("varied", "not repetitive"), ("on_topic", "on topic"))
    for key, label in checks:
        rows.append([f"  {label}", percent(qa.get(key)), ""])
    return rows


def confusion_table(conf: Mapping[str, Any], fmt: str = "simple") -> str:
    matrix = [[lab, *row] for lab, row in zip(conf["labels"], conf["matrix"], strict=True)]
    body = tabulate(matrix, headers=["target \\ predicted", *conf["labels"]], tablefmt=fmt)
    return f"confusion (rows: target, columns: predicted)\n{body}"


def score_table(result: Mapping[str, Any], source: str = "", fmt: str = "simple") -> str:
    """The table for `emobench score`: slices, macro-F1, agreement and the confusion matrix."""
    rows = [["overall", percent(result["acc"])]]
    rows += [[f"  {e}", percent(result[f"acc_{e}"])] for e in EMOTIONS]
    rows += [[f"  {v} situations", percent(result[f"acc_{v}"])] for v in VALENCES]
    rows.append(["macro-F1 (x100)", percent(result["macro_f1"])])
    rows += [r[:2] for r in adjusted_rows(result.get("quality_adjusted") or {})]
    agreement = result.get("agreement_with_run")
    if agreement:
        rows.append(
            [f"Cohen's kappa vs {agreement['classifier']}", f"{agreement['cohen_kappa']:.3f}"]
        )
    head = f"{source}: n={result['n']}, classifier {result['classifier']['name']}"
    table = tabulate(rows, headers=["slice", "accuracy %"], tablefmt=fmt, disable_numparse=True)
    return f"{head}\n{table}\n\n{confusion_table(result['confusion'], fmt)}"
