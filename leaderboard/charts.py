"""Charts of the HTML report, drawn with matplotlib's Agg canvas and returned as base64 PNG data
URIs so that the report stays one self-contained file."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from emobench import EMOTIONS

CHANCE = 100 / len(EMOTIONS)
# More bars per emotion than this are unreadable; the table below the chart has every row.
MAX_BARS = 10


def plain(text: str, width: int = 48) -> str:
    """A name from a results file as plain chart text: matplotlib reads `$...$` as mathtext,
    and a malformed formula raises while drawing."""
    text = " ".join(str(text).split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("$", r"\$")


def data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Any:
    # Figure rather than pyplot: no global backend or open-figure state in a library call.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _pct(value: float | None) -> float:
    return math.nan if value is None else 100 * value


def emotion_bars(series: list[tuple[str, list[float | None]]]) -> str:
    """Grouped bars: one group per target emotion, one bar per (label, six accuracies)."""
    fig = _figure(10, 4.2)
    ax = fig.add_subplot()
    shown = series[:MAX_BARS]
    width = 0.8 / max(len(shown), 1)
    for i, (label, values) in enumerate(shown):
        offset = (i - (len(shown) - 1) / 2) * width
        xs = [j + offset for j in range(len(EMOTIONS))]
        ax.bar(xs, [_pct(v) for v in values], width, label=plain(label), color=f"C{i % 10}")
    ax.axhline(CHANCE, color="0.4", linestyle=":", linewidth=1, label="chance (16.7 %)")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_ylim(0, 100)
    ax.set_ylabel("expression accuracy (%)")
    ax.set_xlabel("target emotion")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return data_uri(fig)


MARKERS = ["o", "s", "^", "D", "v", "P"]
LINES = ["-", "--", ":", "-."]


def frontier(
    lines: list[dict[str, Any]], bests: list[dict[str, Any]], controllers: list[str]
) -> str:
    """Accuracy against the share of replies through the quality gate and against perplexity.

    `lines`: {controller, label, points: [{acc, gate_pass, ppl}]} in knob order; `bests`: the
    points each sweep chose, {label, acc, gate_pass, ppl}. One colour per controller."""
    fig = _figure(12, 4.8)
    by_gate, by_ppl = fig.subplots(1, 2, sharey=True)
    colour = {name: f"C{i % 10}" for i, name in enumerate(controllers)}
    variant: dict[str, int] = {}
    for line in lines:
        k = variant[line["controller"]] = variant.get(line["controller"], -1) + 1
        style = {
            "color": colour[line["controller"]],
            "marker": MARKERS[k % len(MARKERS)],
            "linestyle": LINES[k % len(LINES)],
        }
        for ax, key in ((by_gate, "gate_pass"), (by_ppl, "ppl")):
            pts = [p for p in line["points"] if p.get(key) is not None and p.get("acc") is not None]
            xs = [_pct(p[key]) if key == "gate_pass" else p[key] for p in pts]
            ys = [_pct(p["acc"]) for p in pts]
            ax.plot(xs, ys, **style, label=plain(line["label"]))
            if len(pts) > 1:
                # The swept strength beside each point: the line's order alone does not say it.
                for x, y, p in zip(xs, ys, pts, strict=True):
                    ax.annotate(
                        plain(p.get("tag", ""), 8),
                        (x, y),
                        xytext=(4, -10),
                        textcoords="offset points",
                        fontsize=7,
                        color=style["color"],
                    )
    for best in bests:
        for ax, key in ((by_gate, "gate_pass"), (by_ppl, "ppl")):
            if best.get(key) is None or best.get("acc") is None:
                continue
            x = _pct(best[key]) if key == "gate_pass" else best[key]
            y = _pct(best["acc"])
            ax.scatter([x], [y], s=260, marker="*", color="gold", edgecolor="black", zorder=5)
            ax.annotate(
                plain(f"best: {best['label']}", 40),
                (x, y),
                xytext=(6, 8),
                textcoords="offset points",
                fontsize=8,
            )
    by_gate.set_xlabel("replies through the quality gate (%)")
    by_gate.set_xlim(-3, 103)
    by_ppl.set_xlabel("perplexity under the unsteered model (log scale)")
    if any(p.get("ppl") for line in lines for p in line["points"]):
        _log_axis(by_ppl)
    by_gate.set_ylabel("expression accuracy (%)")
    for ax in (by_gate, by_ppl):
        ax.axhline(CHANCE, color="0.4", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    by_ppl.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return data_uri(fig)


def _log_axis(ax: Any) -> None:
    """Log x with plain-number labels at 1-2-5 steps; matplotlib's default labels minor ticks
    in scientific notation, which overlap."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    low, high = ax.get_xlim()
    steps = [m * 10**e for e in range(-1, 5) for m in (1, 2, 5)]
    ax.xaxis.set_major_locator(FixedLocator([s for s in steps if low <= s <= high]))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
