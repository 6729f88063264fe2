"""`emobench analyze circuit ARTIFACT --out DIR`: does the circuit carry the emotion?

METHOD.md's validation, on prompts of the SEV *train* split, for the model the artifact names:

- **ablation**: zero the k highest-scoring neurons (down-projection input) or heads (their slice
  of the output-projection input), k in KS, at every position, on the prompting prompts of an
  emotion; measure the drop of <final hidden state, v_ref(emotion)> at the last prompt token.
  The same k drawn at random over all layers (several seeds) is the control: a circuit that
  matters drops the projection far more than random units do.
- **enhancement**: the `circuit` controller's edit (lambda x difference vectors on the circuit's
  units) on neutral prompts raises the projection; the same edit on random units with the same
  per-layer counts is the control.
- **generations** (optional, `--generate N`): the prompting controller's replies on N situations
  with no ablation, with the top-16 neurons and heads ablated, and with 16 random ones, scored
  by the shared classifier.
- from the artifact alone: sublayer importance per layer, and the cosine similarity of the
  emotion directions across layers and across emotions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from emobench import EMOTIONS, artifacts
from emobench.chat import base_messages, render
from emobench.controller import create_controller
from emobench.controllers.circuit import circuit_edits, modulation_hooks
from emobench.data import load_docs
from emobench.discovery.activations import encode, position_ids, prepare
from emobench.discovery.circuit.capture import decoder
from emobench.hooks import BlockPoints, hook_points, hooked

log = logging.getLogger(__name__)

KS = (1, 2, 4, 8, 16)
KINDS = ("neurons", "heads")


def final_projection(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: list[str],
    v: torch.Tensor,
    batch_size: int,
    pre_hooks: dict[str, Callable[..., Any]] | None = None,
) -> torch.Tensor:
    """<final hidden state at the last prompt token, v> per prompt, under `pre_hooks`."""
    prepare(tokenizer)
    device = next(model.parameters()).device
    run = decoder(model)
    out = []
    with torch.inference_mode(), hooked(model, forward_pre=pre_hooks or {}):
        for start in range(0, len(prompts), batch_size):
            enc = encode(tokenizer, prompts[start : start + batch_size]).to(device)
            h = run(**enc, position_ids=position_ids(enc["attention_mask"]), use_cache=False)
            out.append(h.last_hidden_state[:, -1].float().cpu() @ v.float())
    return torch.cat(out)


def zeroing_hooks(
    points: list[BlockPoints], units: list[tuple[int, int]], kind: str
) -> dict[str, Callable[..., Any]]:
    """Forward pre-hooks that zero (layer, unit) neurons or heads at every position."""
    by_layer: dict[int, list[int]] = {}
    for layer, unit in units:
        by_layer.setdefault(layer, []).append(unit)
    hooks = {}
    for layer, chosen in by_layer.items():
        p = points[layer]
        if kind == "neurons":
            index = torch.tensor(chosen)
        else:
            index = torch.cat(
                [torch.arange(p.head_slice(h).start, p.head_slice(h).stop) for h in chosen]
            )

        def hook(module, args, index=index):
            x = args[0].clone()
            x[..., index.to(x.device)] = 0
            return (x, *args[1:])

        hooks[p.mlp_down if kind == "neurons" else p.attn_out] = hook
    return hooks


def top_units(scores: torch.Tensor, k: int) -> list[tuple[int, int]]:
    """The k highest (layer, unit) of a (layer, units) score table, over all layers."""
    flat = torch.argsort(scores.flatten(), descending=True, stable=True)[:k]
    width = scores.shape[1]
    return [(int(i) // width, int(i) % width) for i in flat]


def random_units(shape: tuple[int, int], k: int, seed: int) -> list[tuple[int, int]]:
    gen = torch.Generator().manual_seed(seed)
    flat = torch.randperm(shape[0] * shape[1], generator=gen)[:k]
    return [(int(i) // shape[1], int(i) % shape[1]) for i in flat]


def random_masks(mask: torch.Tensor, seed: int) -> torch.Tensor:
    """A (layer, units) bool mask with the same count per layer as `mask`, units at random."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros_like(mask)
    for layer, row in enumerate(mask):
        out[layer, torch.randperm(row.numel(), generator=gen)[: int(row.sum())]] = True
    return out


def analyze_circuit(
    model: torch.nn.Module,
    tokenizer: Any,
    artifact: str | Path,
    out: str | Path,
    groups: int = 8,
    seeds: int = 5,
    generate: int = 0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Run the analyses; write analysis.json, summary.md and the plots into `out`."""
    from emobench.analysis import plots
    from emobench.controllers.circuit import CircuitController

    tensors, meta = artifacts.load(artifact, model, kind="emotion-circuit")
    points = hook_points(model)
    docs = load_docs("train")[: groups * len(EMOTIONS)]
    if len(docs) < groups * len(EMOTIONS):
        log.warning("--groups %d: the train split has %d; using them all", groups, len(docs) // 6)
    groups = len(docs) // len(EMOTIONS)
    prompter = create_controller("prompt")
    v_ref = tensors["v_ref"]
    scores = {"neurons": tensors["neuron_scores"], "heads": tensors["head_scores"]}
    result: dict[str, Any] = {
        "artifact": str(artifact),
        "model": meta["model"]["name"],
        "docs": {"split": "train", "groups": groups, "per_emotion": groups},
        "ks": list(KS),
        "seeds": seeds,
    }

    ablation: dict[str, Any] = {kind: {} for kind in KINDS}
    enhancement: dict[str, Any] = {}
    circuit = CircuitController(artifact=str(artifact))
    todo = len(EMOTIONS) * (len(KINDS) * len(KS) * (1 + seeds) + 2 + seeds)
    bar = tqdm(total=todo, desc="Validating the circuit", unit="pass")
    for e, emotion in enumerate(EMOTIONS):
        mine = [d for d in docs if d["target_emotion"] == emotion]
        prompted = [render(tokenizer, prompter.messages(d, base_messages(d)))[0] for d in mine]
        neutral = [render(tokenizer, base_messages(d))[0] for d in mine]
        base = final_projection(model, tokenizer, prompted, v_ref[e], batch_size)
        for kind in KINDS:
            rows = ablation[kind].setdefault(emotion, {"top": [], "random": []})
            for k in KS:
                hooks = zeroing_hooks(points, top_units(scores[kind][e], k), kind)
                hit = final_projection(model, tokenizer, prompted, v_ref[e], batch_size, hooks)
                rows["top"].append(float((base - hit).mean()))
                drops = []
                for seed in range(seeds):
                    units = random_units(tuple(scores[kind][e].shape), k, seed)
                    hooks = zeroing_hooks(points, units, kind)
                    hit = final_projection(model, tokenizer, prompted, v_ref[e], batch_size, hooks)
                    drops.append(float((base - hit).mean()))
                rows["random"].append(drops)
                bar.update(1 + seeds)
        plain = final_projection(model, tokenizer, neutral, v_ref[e], batch_size)
        with circuit.scope(model, emotion):
            lifted = final_projection(model, tokenizer, neutral, v_ref[e], batch_size)
        random_lifts = []
        for seed in range(seeds):
            edits = circuit_edits(
                tensors,
                e,
                circuit.lam[emotion],
                points[0].head_dim,
                head_mask=random_masks(tensors["head_mask"][e], seed),
                neuron_mask=random_masks(tensors["neuron_mask"][e], seed),
            )
            hooks = modulation_hooks(model, points, edits, circuit.positions == "all")
            moved = final_projection(model, tokenizer, neutral, v_ref[e], batch_size, hooks)
            random_lifts.append(float((moved - plain).mean()))
        enhancement[emotion] = {
            "baseline": float(plain.mean()),
            "circuit": float((lifted - plain).mean()),
            "random": random_lifts,
        }
        bar.update(2 + seeds)
    bar.close()
    result["ablation"] = ablation
    result["enhancement"] = {"lam": dict(circuit.lam), "by_emotion": enhancement}
    if generate:
        result["generations"] = _generations(
            model, tokenizer, tensors, points, generate, batch_size
        )
    result["sublayer_importance"] = tensors["sublayer_importance"].tolist()
    result["direction_cosines"] = _cosines(tensors["post_block"])

    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    (target / "analysis.json").write_text(json.dumps(result, indent=1) + "\n")
    plots.ablation(result, target / "ablation.png")
    plots.importance(tensors["sublayer_importance"], target / "sublayer_importance.png")
    plots.cosines(tensors["post_block"], target / "direction_cosines.png")
    (target / "summary.md").write_text(summary(result))
    return result


def _generations(
    model: torch.nn.Module,
    tokenizer: Any,
    tensors: dict[str, torch.Tensor],
    points: list[BlockPoints],
    situations: int,
    batch_size: int,
    k: int = 16,
) -> dict[str, Any]:
    """Classifier accuracy of the prompting controller's replies with no ablation, with each
    emotion's top-k neurons and heads zeroed, and with k random ones (seed 0)."""
    from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
    from emobench.discovery.directions import prompted_replies

    clf = get_classifier(DEFAULT_CLASSIFIER)
    docs = load_docs("train")[-situations * len(EMOTIONS) :]  # away from the projection docs
    if len(docs) < situations * len(EMOTIONS):
        log.warning("--generate %d: the train split has %d situations", situations, len(docs) // 6)
    situations = len(docs) // len(EMOTIONS)
    out: dict[str, Any] = {"situations": situations, "k": k, "classifier": clf.spec()["name"]}
    for condition in ("none", "top", "random"):
        replies = []
        for e, emotion in enumerate(EMOTIONS):
            mine = [d for d in docs if d["target_emotion"] == emotion]
            hooks: dict[str, Any] = {}
            for kind, scores in (
                ("neurons", tensors["neuron_scores"]),
                ("heads", tensors["head_scores"]),
            ):
                if condition == "top":
                    hooks |= zeroing_hooks(points, top_units(scores[e], k), kind)
                elif condition == "random":
                    hooks |= zeroing_hooks(points, random_units(tuple(scores[e].shape), k, 0), kind)
            with hooked(model, forward_pre=hooks):
                replies += [
                    (d, r)
                    for d, r in zip(
                        mine, prompted_replies(model, tokenizer, mine, batch_size), strict=True
                    )
                ]
        labels = [v["label"] for v in clf.classify([r for _, r in replies])]
        hits = [lab == d["target_emotion"] for (d, _), lab in zip(replies, labels, strict=True)]
        out[condition] = {
            "accuracy": sum(hits) / len(hits),
            "per_emotion": {
                e: sum(
                    h for (d, _), h in zip(replies, hits, strict=True) if d["target_emotion"] == e
                )
                / situations
                for e in EMOTIONS
            },
        }
    return out


def _cosines(directions: torch.Tensor) -> dict[str, Any]:
    """(emotion, layer, hidden) unit directions: cosines across emotions (per layer, averaged)
    and across layers (per emotion, averaged)."""
    across_emotions = torch.einsum("eld,fld->lef", directions, directions)
    across_layers = torch.einsum("eld,emd->elm", directions, directions)
    return {
        "across_emotions_mean_over_layers": across_emotions.mean(0).tolist(),
        "across_layers_mean_over_emotions": across_layers.mean(0).tolist(),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summary(result: dict[str, Any]) -> str:
    """A short Markdown report of analysis.json."""
    lines = [
        f"# Circuit validation: {result['model']}",
        "",
        f"Artifact `{result['artifact']}`; prompts: {result['docs']['per_emotion']} SEV train "
        f"situations per emotion; random controls: {result['seeds']} seeds.",
        "",
        "## Ablation: drop of <final hidden state, v_ref> (mean over emotions)",
        "",
        "| units | k | top-k drop | random-k drop (mean over seeds) | top / random |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        rows = result["ablation"][kind]
        for i, k in enumerate(result["ks"]):
            top = _mean([rows[e]["top"][i] for e in EMOTIONS])
            rnd = _mean([_mean(rows[e]["random"][i]) for e in EMOTIONS])
            ratio = f"{top / rnd:.1f}" if abs(rnd) > 1e-9 else "n/a"
            lines.append(f"| {kind} | {k} | {top:.3f} | {rnd:.3f} | {ratio} |")
    enh = result["enhancement"]["by_emotion"]
    lines += [
        "",
        "## Enhancement: rise of <final hidden state, v_ref> on neutral prompts",
        "",
        "| emotion | circuit edit | same edit on random units (mean over seeds) |",
        "|---|---:|---:|",
        *[f"| {e} | {enh[e]['circuit']:.3f} | {_mean(enh[e]['random']):.3f} |" for e in EMOTIONS],
    ]
    gen = result.get("generations")
    if gen:
        lines += [
            "",
            f"## Generations: classifier accuracy of prompted replies ({gen['situations']} "
            f"situations x 6 emotions, {gen['classifier']})",
            "",
            "| condition | accuracy % |",
            "|---|---:|",
            f"| no ablation | {100 * gen['none']['accuracy']:.1f} |",
            f"| top-{gen['k']} neurons and heads ablated | {100 * gen['top']['accuracy']:.1f} |",
            f"| {gen['k']} random neurons and heads ablated | "
            f"{100 * gen['random']['accuracy']:.1f} |",
        ]
    lines += [
        "",
        "Plots: `ablation.png`, `sublayer_importance.png`, `direction_cosines.png`; every "
        "number in `analysis.json`.",
        "",
    ]
    return "\n".join(lines)
