"""`emobench analyze attributes ARTIFACT --out DIR`: does knocking out an attribute's neurons hurt
emotion inference more than knocking out as many random neurons, and does the harm follow how much
the attribute matters to humans? (Li et al., iScience 2024, the causal test.)

For every attribute: the emotion-inference task (an lm-eval multiple-choice task, default
`goemotions_inference_ekman`) runs with the attribute's neurons zeroed (`ablate`), and with `seeds`
random sets of the same size and the same count per layer. The neurons are either its top `top`
by rho, discoveries or not (the report says how many of them the discovery found significant), or
with `--neurons discoveries` exactly its discoveries (the permutation test at the artifact's FDR;
an attribute without any is left out and named). Per doc, the probability the
model gives the gold emotion among the choices is compared, paired, between the attribute's
ablation and the mean of the random ones (Wilcoxon signed-rank). The attributes' excess accuracy
drops (attribute minus random) are then rank-correlated with each attribute's importance in human
similarity space (artifact `attribute_importance`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr, wilcoxon

from emobench.controller import Controller, create_controller
from emobench.discovery.attributes.build import STALE, tested_by_permutations
from emobench.errors import EmoBenchError
from emobench.model import EmoBenchLM

log = logging.getLogger(__name__)

DEFAULT_TASK = "goemotions_inference_ekman"
NEURONS = ("top", "discoveries")


def gold_probabilities(samples: list[dict[str, Any]]) -> dict[int, tuple[float, bool]]:
    """{doc_id: (probability of the gold choice among the choices, correct)} from lm-eval's
    samples of a multiple-choice task."""
    out = {}
    for s in samples:
        lls = np.array([float(r[0]) for r in s["filtered_resps"]])
        probs = np.exp(lls - lls.max())
        probs /= probs.sum()
        gold = int(s["target"])
        out[int(s["doc_id"])] = (float(probs[gold]), bool(np.argmax(lls) == gold))
    return out


@functools.lru_cache(maxsize=1)
def _task_manager() -> Any:
    """Indexing lm-eval's task folders takes seconds: once per process, not once per condition."""
    from lm_eval.tasks import TaskManager

    from emobench.run import task_dir

    return TaskManager(include_path=task_dir())


def check_task(task: str) -> None:
    """Refuse, before any run, a --task that is not one multiple-choice task: the analysis
    compares each doc's gold-label probability, which a tag of several tasks or a generation
    task does not give."""
    manager = _task_manager()
    inference = "goemotions_inference, goemotions_inference_ekman"
    if task not in manager.all_subtasks:
        what = "a tag of several tasks" if task in manager.all_tags else "not an lm-eval task"
        raise EmoBenchError(
            f"--task {task}: {what}; give one multiple-choice task, e.g. {inference}"
        )
    # The task index says a task's output type without building its dataset.
    entry = getattr(manager, "task_index", {}).get(task)
    kind = (getattr(entry, "cfg", None) or {}).get("output_type", "multiple_choice")
    if kind != "multiple_choice":
        raise EmoBenchError(
            f"--task {task}: a {kind} task; the analysis reads each label's log-likelihood, so "
            f"give a multiple-choice task, e.g. {inference}"
        )


def evaluate(lm: EmoBenchLM, controller: Controller, task: str, limit: int | None) -> dict:
    from lm_eval import simple_evaluate

    lm.controller = controller
    controller.prepare(lm.model, lm.tokenizer)
    results = simple_evaluate(
        model=lm,
        tasks=[task],
        limit=limit,
        log_samples=True,
        task_manager=_task_manager(),
        verbosity="WARNING",
    )
    return gold_probabilities(results["samples"][task])


def _accuracy(per_doc: dict[int, tuple[float, bool]]) -> float:
    return float(np.mean([c for _, c in per_doc.values()]))


def analyze_attributes(
    lm: EmoBenchLM,
    artifact: str | Path,
    out: str | Path,
    meta: dict[str, Any],
    task: str = DEFAULT_TASK,
    limit: int | None = 140,
    top: int = 100,
    seeds: int = 3,
    neurons: str = "top",
) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if neurons not in NEURONS:
        raise EmoBenchError(f"--neurons {neurons}: one of {', '.join(NEURONS)}")
    discoveries = neurons == "discoveries"
    started, done = time.perf_counter(), 0

    def run(what: str, controller: Controller) -> dict[int, tuple[float, bool]]:
        nonlocal done
        log.info("condition %d of %d: %s", done + 1, total, what)
        result = evaluate(lm, controller, task, limit)
        done += 1
        left = (time.perf_counter() - started) / done * (total - done)
        log.info("condition %d of %d done; about %.0f min left", done, total, left / 60)
        return result

    check_task(task)
    # The artifact meets the model before the baseline run, not one run into the analysis.
    first = {"attribute": meta["attributes"][0], "top": top, "artifact": str(artifact)}
    probe = create_controller("ablate", **first)
    probe.chosen(lm.model)
    tensors, _ = probe.load_artifact(lm.model)  # read by chosen() above: not loaded again
    if not tested_by_permutations(meta):
        if discoveries:
            raise EmoBenchError(f"--neurons discoveries: {artifact} was {STALE}")
        log.warning("%s was %s", artifact, STALE)
        tensors = {k: v for k, v in tensors.items() if k != "significant"}
    sets = _neuron_sets(tensors, meta, discoveries, top)
    without = [a for a in meta["attributes"] if a not in sets]
    if not sets:
        raise EmoBenchError(f"--neurons discoveries: no attribute has any in {artifact}")
    # Every condition is a run of the task with its own progress bar: say which one it is.
    total = 1 + len(sets) * (1 + seeds)
    base = run("no ablation", create_controller("none"))
    docs = sorted(base)
    rows: dict[str, Any] = {}
    for attribute, size in sets.items():
        args = {"attribute": attribute, "artifact": str(artifact)}
        args.update({"discoveries": "true"} if discoveries else {"top": top})
        what = f"its {size} discoveries" if discoveries else f"its top {top}"
        ablated = run(f"{attribute}: {what}", create_controller("ablate", **args))
        randoms = [
            run(
                f"{attribute}: random {size}, seed {s}",
                create_controller("ablate", **args, random=s),
            )
            for s in range(1, seeds + 1)
        ]
        p_attr = np.array([ablated[d][0] for d in docs])
        p_rand = np.array([[r[d][0] for d in docs] for r in randoms]).mean(axis=0)
        diff = p_rand - p_attr
        test = wilcoxon(diff, zero_method="zsplit") if np.any(diff != 0) else None
        rand_accs = [_accuracy(r) for r in randoms]
        rows[attribute] = {
            "accuracy": _accuracy(ablated),
            "random_accuracy": float(np.mean(rand_accs)),
            "random_accuracies": rand_accs,
            "drop": _accuracy(base) - _accuracy(ablated),
            "random_drop": _accuracy(base) - float(np.mean(rand_accs)),
            "gold_probability": float(p_attr.mean()),
            "random_gold_probability": float(p_rand.mean()),
            "wilcoxon_p": None if test is None else float(test.pvalue),
            # How many of the knocked-out neurons the discovery found significant (FDR).
            "significant_in_top": None
            if discoveries
            else _significant_in_top(tensors, meta, attribute, top),
            "neurons": size,
        }
        rows[attribute]["excess_drop"] = rows[attribute]["drop"] - rows[attribute]["random_drop"]
    importance = meta["attribute_importance"]["values"]
    names = list(rows)
    excess = [rows[a]["excess_drop"] for a in names]
    # Fewer than four attributes give no rank correlation worth a number (three give p >= 0.33).
    rho, p_rho = math.nan, math.nan
    if len(names) > 3:
        corr = spearmanr([importance[a] for a in names], excess)
        rho, p_rho = corr.statistic, corr.pvalue
    result = {
        "artifact": str(artifact),
        "model": meta["model"].get("name"),
        "task": task,
        "docs": len(docs),
        "limit": limit,
        "top": None if discoveries else top,
        "neurons": neurons,
        "without_discoveries": without if discoveries else [],
        "seeds": seeds,
        "baseline_accuracy": _accuracy(base),
        "attributes": rows,
        "importance": importance,
        "importance_vs_excess_drop": {
            "spearman": None if math.isnan(rho) else float(rho),
            "p": None if math.isnan(p_rho) else float(p_rho),
        },
    }
    (out / "analysis.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, out / "ablation.png")
    (out / "summary.md").write_text(summary(result))
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    from emobench.analysis.plots import _pyplot

    plt = _pyplot()
    names = list(result["attributes"])
    rows = [result["attributes"][a] for a in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    x = np.arange(len(names))
    left.bar(x - 0.2, [100 * r["drop"] for r in rows], 0.4, label="attribute's neurons")
    left.bar(x + 0.2, [100 * r["random_drop"] for r in rows], 0.4, label="random, same layers")
    left.set_xticks(x, names, rotation=60, ha="right")
    left.set_ylabel("accuracy drop (points)")
    left.set_title(f"{result['task']}: knock-out of {_knocked_out(result, short=True)}", fontsize=9)
    left.legend()
    imp = [result["importance"][a] for a in names]
    right.scatter(imp, [100 * r["excess_drop"] for r in rows])
    for a, xi, yi in zip(names, imp, [100 * r["excess_drop"] for r in rows], strict=True):
        right.annotate(a, (xi, yi), fontsize=7)
    right.set_xlabel("importance in human similarity space (Spearman with judgements)")
    right.set_ylabel("excess drop over random (points)")
    corr = result["importance_vs_excess_drop"]["spearman"]
    right.set_title("importance vs harm" + ("" if corr is None else f" (rho = {corr:.2f})"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _neuron_sets(
    tensors: dict[str, Any], meta: dict[str, Any], discoveries: bool, top: int
) -> dict[str, int]:
    """{attribute: how many neurons its knock-out zeroes}, for the attributes that have any."""
    if not discoveries:
        return dict.fromkeys(meta["attributes"], top)
    counts = tensors["significant"].sum(dim=1).tolist()
    return {a: int(n) for a, n in zip(meta["attributes"], counts, strict=True) if n > 0}


def _significant_in_top(
    tensors: dict[str, Any], meta: dict[str, Any], attribute: str, top: int
) -> int | None:
    """How many of the attribute's top `top` neurons by rho are discoveries (None when the
    artifact's discoveries are not to be trusted)."""
    if "significant" not in tensors:
        return None
    k = list(meta["attributes"]).index(attribute)
    return int(tensors["significant"][k][tensors["ranking"][k, :top].long()].sum())


def _or_na(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _knocked_out(result: dict[str, Any], short: bool = False) -> str:
    if result.get("neurons") != "discoveries":
        return f"each attribute's top {result['top']} neurons by rho"
    without = [] if short else result.get("without_discoveries") or []
    left_out = f" ({', '.join(without)}: none, left out)" if without else ""
    return f"each attribute's discoveries{left_out}"


def summary(result: dict[str, Any]) -> str:
    corr = result["importance_vs_excess_drop"]
    discoveries = result.get("neurons") == "discoveries"
    lines = [
        f"# Attribute neurons and emotion inference: {result['model']}",
        "",
        f"Task `{result['task']}`, {result['docs']} docs; knock-out of {_knocked_out(result)} "
        f"against {result['seeds']} random sets of the same size and layer counts. Baseline "
        f"accuracy {_pct(result['baseline_accuracy'])} %.",
        "",
        "| attribute | importance | neurons | of them discoveries | acc % | random acc % | "
        "excess drop (points) | Wilcoxon p |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a, r in result["attributes"].items():
        p = "" if r["wilcoxon_p"] is None else f"{r['wilcoxon_p']:.3g}"
        size = r.get("neurons", result["top"])
        found = size if discoveries else r.get("significant_in_top")
        lines.append(
            f"| {a} | {result['importance'][a]:.3f} | {size} | {_or_na(found)} | "
            f"{_pct(r['accuracy'])} | "
            f"{_pct(r['random_accuracy'])} | {100 * r['excess_drop']:+.1f} | {p} |"
        )
    rho = "n/a" if corr["spearman"] is None else f"{corr['spearman']:.3f} (p = {corr['p']:.3g})"
    lines += ["", f"Spearman correlation of importance with excess drop: {rho}.", ""]
    return "\n".join(lines)
