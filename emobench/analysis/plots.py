"""The analyses' figures (matplotlib, written as PNG without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from emobench import EMOTIONS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    return plt


def ablation(result: dict[str, Any], path: Path) -> None:
    """Drop of the emotion projection against k: the circuit's top units vs random units."""
    plt = _pyplot()
    ks = result["ks"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, kind in zip(axes, ("neurons", "heads"), strict=True):
        rows = result["ablation"][kind]
        for emotion in EMOTIONS:
            ax.plot(ks, rows[emotion]["top"], color="tab:red", alpha=0.25, linewidth=1)
        top = torch.tensor([rows[e]["top"] for e in EMOTIONS]).mean(0).numpy()
        rnd = torch.tensor([rows[e]["random"] for e in EMOTIONS])  # (E, k, seeds)
        mean, spread = rnd.mean((0, 2)).numpy(), rnd.mean(0).std(-1).numpy()
        ax.plot(ks, top, color="tab:red", marker="o", label="top-k by score (mean of emotions)")
        ax.errorbar(
            ks,
            mean,
            yerr=spread,
            color="tab:gray",
            marker="s",
            capsize=3,
            label="random k (mean, sd over seeds)",
        )
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel(f"{kind} ablated (k)")
        ax.set_ylabel("drop of <final hidden, v_ref>")
        ax.set_title(f"Ablating {kind}")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.legend(fontsize=8)
    fig.suptitle(result["model"])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def importance(values: torch.Tensor, path: Path) -> None:
    """(emotion, layer, 2) sublayer importance as two heatmaps: attention, MLP."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    limit = float(values.abs().max()) or 1.0
    for ax, (i, name) in zip(axes, enumerate(("attention", "MLP")), strict=True):
        image = ax.imshow(
            values[:, :, i].numpy(), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit
        )
        ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
        ax.set_title(f"{name} sublayer importance")
        fig.colorbar(image, ax=ax)
    axes[-1].set_xlabel("layer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cosines(directions: torch.Tensor, path: Path) -> None:
    """Cosine similarity of the unit emotion directions: across emotions (mean over layers) and
    across layers (mean over emotions)."""
    plt = _pyplot()
    emotions = torch.einsum("eld,fld->lef", directions, directions).mean(0).numpy()
    layers = torch.einsum("eld,emd->elm", directions, directions).mean(0).numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    image = left.imshow(emotions, cmap="RdBu_r", vmin=-1, vmax=1)
    left.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    left.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    left.set_title("across emotions (mean over layers)")
    fig.colorbar(image, ax=left)
    image = right.imshow(layers, cmap="RdBu_r", vmin=-1, vmax=1)
    right.set_xlabel("layer")
    right.set_ylabel("layer")
    right.set_title("across layers (mean over emotions)")
    fig.colorbar(image, ax=right)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
