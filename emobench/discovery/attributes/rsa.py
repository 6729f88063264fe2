"""Representational similarity per neuron: which neurons' concept geometry follows an attribute.

For one neuron, the dissimilarity of two concepts is the absolute difference of its mean
activations for them; over the 351 concept pairs that is the neuron's RDM. Its Spearman
correlation with an attribute's human RDM says how well the neuron orders concepts as that
attribute does. Significance: a Mantel test (the concepts' labels permuted, so that the
dependence between pairs sharing a concept is kept; the p-value is the share of permutations
that match or beat the observed correlation), then Benjamini-Hochberg over neurons.

A p-value from a normal fitted to each neuron's permutation distribution would go far below
1 / (P + 1), but the permutation tails are heavier than a normal's: on 2,000 noise neurons it
made over a hundred discoveries. The empirical p-value is valid at any P; its floor only means
that Benjamini-Hochberg over N neurons passes nothing unless at least N / (q (P + 1)) neurons
reach it (`fewest_discoveries`), so a discovery over tens of thousands of neurons needs
thousands of permutations. Beside it, the max statistic (Westfall-Young; Nichols & Holmes
2002): a neuron is significant for an attribute when its rho beats the largest rho of *any*
neuron under most permutations. That controls the chance of even one false discovery, and
needs no count of neurons at a floor: an attribute with a handful of strong neurons shows them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import rankdata
from tqdm.auto import tqdm

from emobench.discovery.attributes.concepts import N_CONCEPTS, pair_index


def neuron_rdms(activations: torch.Tensor) -> torch.Tensor:
    """(351, neurons) |a_i - a_j| for the concept pairs in lower.tri order, from (27, neurons)."""
    rows, cols = pair_index()
    return (activations[rows] - activations[cols]).abs()


def _standardised_ranks(x: np.ndarray) -> torch.Tensor:
    """Column-wise ranks (ties averaged), centred and scaled to unit norm: a Pearson
    correlation of two such columns is their Spearman correlation."""
    r = torch.from_numpy(rankdata(x, axis=0)).float()
    r -= r.mean(dim=0, keepdim=True)
    norm = r.norm(dim=0, keepdim=True)
    return r / torch.where(norm > 0, norm, torch.ones_like(norm))


def spearman(neurons: torch.Tensor, attributes: np.ndarray) -> torch.Tensor:
    """(neurons, attributes) Spearman correlations of neuron RDMs with attribute RDMs. A neuron
    whose RDM is constant (never active) correlates 0 with everything."""
    zn = _standardised_ranks(neurons.numpy())
    za = _standardised_ranks(attributes)
    return zn.T @ za


def _permuted_rdms(attribute_rdms: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """The attribute RDMs with the concepts relabelled by `perm`."""
    rows, cols = pair_index()
    full = np.zeros((N_CONCEPTS, N_CONCEPTS, attribute_rdms.shape[1]))
    full[rows, cols] = attribute_rdms
    full[cols, rows] = attribute_rdms
    return full[perm[rows], perm[cols]]


def mantel_pvalues(
    neurons: torch.Tensor,
    attribute_rdms: np.ndarray,
    observed: torch.Tensor,
    permutations: int,
    seed: int,
    chunk: int = 50,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-sided (rho > 0) Mantel p-values per (neuron, attribute): the neuron's own,
    (count(permuted rho >= observed rho) + 1) / (P + 1), and the family-wise one, with the
    largest permuted rho over all neurons in place of the neuron's own."""
    if permutations < 1:
        raise ValueError(f"permutations={permutations}: give 1 or more")
    rng = np.random.default_rng(seed)
    zn = _standardised_ranks(neurons.numpy())
    n_attr = attribute_rdms.shape[1]
    exceed = torch.zeros_like(observed)
    maxima = []  # per permutation, the largest rho of any neuron, per attribute
    done = 0
    with tqdm(total=permutations, desc="Mantel permutations", unit="perm") as bar:
        while done < permutations:
            take = min(chunk, permutations - done)
            permuted = np.concatenate(
                [_permuted_rdms(attribute_rdms, rng.permutation(N_CONCEPTS)) for _ in range(take)],
                axis=1,
            )
            corr = (zn.T @ _standardised_ranks(permuted)).view(-1, take, n_attr)
            exceed += (corr >= observed[:, None, :] - 1e-7).sum(dim=1)
            maxima.append(corr.amax(dim=0))
            done += take
            bar.update(take)
    largest = torch.cat(maxima).sort(dim=0).values  # (P, attributes), ascending
    beaten = torch.stack(
        [
            len(largest) - torch.searchsorted(largest[:, a].contiguous(), observed[:, a] - 1e-7)
            for a in range(n_attr)
        ],
        dim=1,
    )
    return (exceed + 1) / (permutations + 1), (beaten.float() + 1) / (permutations + 1)


def fewest_discoveries(neurons: int, permutations: int, q: float) -> int:
    """The fewest discoveries Benjamini-Hochberg at `q` can make over `neurons` p-values whose
    floor is 1 / (permutations + 1): k passes only if 1 / (P + 1) <= q k / N."""
    return math.ceil(neurons / (q * (permutations + 1)) - 1e-9)


def benjamini_hochberg(p: torch.Tensor, q: float) -> torch.Tensor:
    """Boolean mask of discoveries at false discovery rate `q`, per column (attribute)."""
    n = p.shape[0]
    order = torch.argsort(p, dim=0)
    sorted_p = torch.gather(p, 0, order)
    bound = q * torch.arange(1, n + 1, dtype=p.dtype)[:, None] / n
    passed = sorted_p <= bound
    # The largest k with p_(k) <= q k / n: every smaller p is a discovery too.
    last = torch.where(
        passed.any(dim=0),
        n - 1 - torch.argmax(passed.flip(0).int(), dim=0),
        torch.full((p.shape[1],), -1),
    )
    ranks = torch.empty_like(order)
    ranks.scatter_(0, order, torch.arange(n)[:, None].expand_as(order))
    return ranks <= last[None, :]
