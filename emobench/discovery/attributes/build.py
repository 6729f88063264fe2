"""`emobench discover attributes`: which MLP neurons carry which human attribute of emotion
concepts (Li et al., iScience 2024), on any decoder.

What a concept's representation is here: the activation of every MLP neuron (the input of each
block's down projection, all layers) at the concept's word, in short sentences that name it
(TEMPLATES), averaged over the sentences. Words in fixed frames, rather than texts that express the
emotion, because the question is what the model knows about the *concept*, and because the
emotion-inference task that the ablations are tested on reads GoEmotions texts: neurons picked
from those same texts would be tested on what picked them.

Per neuron, the RDM over the 27 concepts is compared with each attribute's human RDM (Spearman);
a Mantel permutation test gives p-values, Benjamini-Hochberg over neurons the discoveries per
attribute. The artifact (safetensors + meta.json, as the other discoveries) holds the
correlations, p-values, discoveries and the neuron ranking per attribute that `ablate` reads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from emobench import artifacts
from emobench.discovery.activations import forward_batch, prepare
from emobench.discovery.attributes.concepts import load_concepts
from emobench.discovery.attributes.rsa import (
    benjamini_hochberg,
    fewest_discoveries,
    mantel_pvalues,
    neuron_rdms,
    spearman,
)
from emobench.hooks import hook_points, hooked

log = logging.getLogger(__name__)

KIND = "emotion-attributes"
COMMAND = "emobench discover attributes --out DIR"
# Frames that end on the concept word, so that the last token has read the whole word.
TEMPLATES = (
    "A feeling of {word}",
    "The emotion called {word}",
    "She was overcome by {word}",
    "What he felt was {word}",
    "They spoke with obvious {word}",
    "This story is about {word}",
    "A face full of {word}",
    "I know the experience of {word}",
)
# How many neurons per attribute `ablate` may take from the ranking (the artifact stays small).
RANKED = 2000
# Permutations of the Mantel test: Benjamini-Hochberg over ~46,000 neurons at q = 0.05 can then
# pass an attribute with 93 or more neurons at the p-value floor (1,000 would need 921).
PERMUTATIONS = 10_000


def concept_activations(
    model: torch.nn.Module, tokenizer: Any, words: tuple[str, ...], batch_size: int = 32
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """(concepts, neurons) mean MLP-neuron activation at the concept word over TEMPLATES, and
    (layer, width) of each block's neuron slice, in order."""
    points = hook_points(model)
    prompts = [t.format(word=w) for w in words for t in TEMPLATES]
    widths = [p.d_ff for p in points]
    out = torch.zeros(len(prompts), sum(widths))
    offsets = [sum(widths[:i]) for i in range(len(widths))]
    rows = slice(0, 0)

    def pre_hook(layer: int):
        lo, hi = offsets[layer], offsets[layer] + widths[layer]

        def hook(module, args):
            out[rows, lo:hi] = args[0][:, -1].detach().float().cpu()

        return hook

    prepare(tokenizer)
    pre = {p.mlp_down: pre_hook(p.index) for p in points}
    with torch.inference_mode(), hooked(model, forward_pre=pre):
        for start in tqdm(range(0, len(prompts), batch_size), desc="Concept activations"):
            rows = slice(start, min(len(prompts), start + batch_size))
            forward_batch(model, tokenizer, prompts[rows])
    means = out.view(len(words), len(TEMPLATES), -1).mean(dim=1)
    return means, [(p.index, w) for p, w in zip(points, widths, strict=True)]


def discover_attributes(
    model: torch.nn.Module,
    tokenizer: Any,
    model_name: str,
    out: str | Path,
    permutations: int = PERMUTATIONS,
    fdr: float = 0.05,
    seed: int = 0,
    batch_size: int = 32,
) -> Path:
    out = Path(out)
    concepts = load_concepts()
    acts, layers = concept_activations(model, tokenizer, concepts.names, batch_size)
    rdms = neuron_rdms(acts)
    rho = spearman(rdms, concepts.attribute_rdms)  # (neurons, attributes)
    p, p_max = mantel_pvalues(rdms, concepts.attribute_rdms, rho, permutations, seed)
    significant = benjamini_hochberg(p, fdr) & (rho > 0)
    # Beyond every neuron's chance: the max statistic at the same rate.
    beyond = (p_max <= fdr) & (rho > 0)
    fewest = fewest_discoveries(rho.shape[0], permutations, fdr)
    # Specific to an attribute: a discovery for it and for no other attribute.
    specific = significant & (significant.sum(dim=1, keepdim=True) == 1)
    ranking = torch.argsort(rho, dim=0, descending=True)[:RANKED].T.contiguous()  # (attr, k)
    tensors = {
        "concept_activations": acts.contiguous(),
        "spearman": rho.T.contiguous(),  # (attributes, neurons)
        "pvalue": p.T.contiguous(),
        "pvalue_max_statistic": p_max.T.contiguous(),
        "significant_max_statistic": beyond.T.contiguous().to(torch.uint8),
        "significant": significant.T.contiguous().to(torch.uint8),
        "specific": specific.T.contiguous().to(torch.uint8),
        "ranking": ranking.to(torch.int32),
    }
    importance = concepts.importance()
    meta = {
        "kind": KIND,
        "model": {"name": model_name, **artifacts.model_fingerprint(model)},
        "command": COMMAND,
        "hook_points": "input of each block's MLP down projection (the d_ff neurons), "
        "every layer, at the concept word",
        "neurons": {
            "layers": [{"layer": i, "width": w} for i, w in layers],
            "total": int(acts.shape[1]),
        },
        "concepts": list(concepts.names),
        "attributes": list(concepts.attributes),
        "attribute_descriptions": concepts.descriptions,
        "attribute_importance": {
            "by": "Spearman correlation of the attribute's dissimilarities with humans' direct "
            "dissimilarity judgements (avg_dist_subjective_comparison.csv)",
            "values": importance,
        },
        "recipe": {
            "templates": list(TEMPLATES),
            "representation": "mean over templates of the activation at the last token",
            "rdm": "|a_i - a_j| per neuron over the 351 concept pairs (lower.tri order)",
            "test": f"Mantel, {permutations} concept-label permutations, one-sided (rho > 0), "
            f"seed {seed}; p = (permutations at or above the observed rho + 1) / "
            f"({permutations} + 1); Benjamini-Hochberg at q = {fdr} per attribute over all "
            f"neurons, which passes nothing for an attribute with fewer than {fewest} neurons "
            f"at the p-value floor; beside it, the max statistic at {fdr} (the rho beats the "
            "largest rho of any neuron in all but that share of the permutations)",
            "fewest_discoveries": fewest,
            "ranked": f"the top {RANKED} neurons per attribute by rho",
        },
        "counts": {
            a: {
                "significant": int(significant[:, k].sum()),
                "specific": int(specific[:, k].sum()),
                "max_statistic": int(beyond[:, k].sum()),
                "max_rho": round(float(rho[:, k].max()), 4),
            }
            for k, a in enumerate(concepts.attributes)
        },
        "data": concepts.sha256,
    }
    return artifacts.save(out, tensors, meta)


STALE = (
    "built before the test used permutation p-values: its significant counts and masks come from "
    "p-values fitted to a normal, which made false discoveries; run `emobench discover "
    "attributes` again for counts (its neuron ranking by rho is still sound)"
)


def tested_by_permutations(meta: dict[str, Any]) -> bool:
    """Whether an artifact's significant masks come from the permutation p-values (an artifact
    of the earlier recipe records no `fewest_discoveries`)."""
    return "fewest_discoveries" in (meta.get("recipe") or {})


def counts_table(meta_path: Path) -> str:
    """What a discovery found, per attribute: the neurons significant for it (and for it
    alone), and the strongest correlation."""
    from tabulate import tabulate

    meta = json.loads(Path(meta_path).read_text())
    counts = meta["counts"]
    rows = [
        [a, c["significant"], c["specific"], c.get("max_statistic", ""), c["max_rho"]]
        for a, c in counts.items()
    ]
    headers = ["attribute", "significant (FDR)", "specific to it", "max statistic", "max rho"]
    table = tabulate(rows, headers=headers, floatfmt=".3f", intfmt=",")
    if not tested_by_permutations(meta):
        return f"{table}\nThis artifact was {STALE}."
    fewest = meta["recipe"]["fewest_discoveries"]
    return (
        f"{table}\nWith these permutations, an attribute has either no discoveries or at least "
        f"{fewest:,} (the p-value's floor over {meta['neurons']['total']:,} neurons); more "
        "--permutations lower that bar."
    )
