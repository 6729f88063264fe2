"""How many attribute neurons does chance find? The discovery's test on scrambled concepts.

    EMOBENCH_SEV_DIR=../shared/sev python benchmarks/attribute_null.py ARTIFACT \
        [--shuffles 1] [--permutations N] [--fdr Q]

Reads the concept activations an `emobench discover attributes` artifact holds (27 concepts x
every MLP neuron), assigns them to the concepts in a random order (seeded, one draw per
--shuffles), and runs the same test: per neuron, the Spearman correlation of its concept
distances with each attribute's human ones, the Mantel permutation p-value, Benjamini-Hochberg,
and the max statistic. With the concepts scrambled no neuron can carry an attribute, so every
discovery is a false one: a valid test finds none, or nearly none, where the artifact's own
counts come from its real concepts. Printed: per attribute, the artifact's counts beside the
scrambled runs'.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from emobench.discovery.attributes.build import PERMUTATIONS, STALE, tested_by_permutations
from emobench.discovery.attributes.concepts import load_concepts
from emobench.discovery.attributes.rsa import (
    benjamini_hochberg,
    mantel_pvalues,
    neuron_rdms,
    spearman,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", help="a folder written by `emobench discover attributes`")
    parser.add_argument("--shuffles", type=int, default=1)
    parser.add_argument("--permutations", type=int, default=None)
    parser.add_argument("--fdr", type=float, default=0.05)
    args = parser.parse_args()
    folder = Path(args.artifact)
    meta = json.loads((folder / "meta.json").read_text())
    acts = load_file(str(folder / "tensors.safetensors"))["concept_activations"]
    concepts = load_concepts()
    permutations = args.permutations or PERMUTATIONS
    rows = {a: [c["significant"], c.get("max_statistic")] for a, c in meta["counts"].items()}
    for shuffle in range(args.shuffles):
        order = torch.randperm(acts.shape[0], generator=torch.Generator().manual_seed(shuffle))
        rdms = neuron_rdms(acts[order])
        rho = spearman(rdms, concepts.attribute_rdms)
        p, p_max = mantel_pvalues(rdms, concepts.attribute_rdms, rho, permutations, shuffle)
        fdr = (benjamini_hochberg(p, args.fdr) & (rho > 0)).sum(dim=0)
        beyond = ((p_max <= args.fdr) & (rho > 0)).sum(dim=0)
        for k, attribute in enumerate(concepts.attributes):
            rows[attribute] += [int(fdr[k]), int(beyond[k])]
    from tabulate import tabulate

    headers = ["attribute", "real: FDR", "real: max stat."]
    for shuffle in range(args.shuffles):
        headers += [f"scrambled {shuffle}: FDR", f"scrambled {shuffle}: max stat."]
    print(
        f"{meta['model']['name']}: {acts.shape[1]:,} neurons, {permutations:,} permutations, "
        f"q = alpha = {args.fdr}"
    )
    if not tested_by_permutations(meta):
        print(f"The 'real' columns are the artifact's own: it was {STALE}.")
    print(tabulate([[a, *r] for a, r in rows.items()], headers=headers, intfmt=","))


if __name__ == "__main__":
    main()
