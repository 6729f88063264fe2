"""The end-of-run table of expression accuracy, from an lm-eval results dict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from emobench import EMOTIONS, VALENCES
from emobench.metrics import task_metrics


def _pct(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def run_table(results: Mapping[str, Any], task: str = "sev_emotion", fmt: str = "simple") -> str:
    m = task_metrics(results, task)
    info = results.get("emobench", {})
    n = results.get("n-samples", {}).get(task, {}).get("effective")
    rows = [["overall", _pct(m.get("acc")), n if n is not None else ""]]
    per = n // len(EMOTIONS) if isinstance(n, int) else ""
    rows += [[f"  {e}", _pct(m.get(f"acc_{e}")), per] for e in EMOTIONS]
    per_v = n // len(VALENCES) if isinstance(n, int) else ""
    rows += [[f"  {v} situations", _pct(m.get(f"acc_{v}")), per_v] for v in VALENCES]
    controller = info.get("controller", {})
    args = info.get("controller_args_given") or {}
    title = (
        f"{task}: expression accuracy (%) | model {info.get('model', '?')} | "
        f"controller {controller.get('name', '?')}{' ' + str(args) if args else ''} | "
        f"classifier {info.get('classifier', {}).get('name', '?')}"
    )
    table = tabulate(rows, headers=["slice", "accuracy %", "n"], tablefmt=fmt, colalign=("left", "right", "right"),
                     disable_numparse=True)
    return f"{title}\n{table}"
