"""A sentence encoder (tuning.bases) with its top layers fine-tuned and a linear head on the
mean-pooled output.

Only the top layers are trained, so the bottom ones run once over the training texts and their
output is reused every epoch and every fold: on a 2-core CPU that is what makes cross-validating
a fine-tuned encoder affordable. The shipped artifact holds the trained layers and the head only
(float16 on disk, float32 in use) and names the base weights by hash; loading it on a different
base fails rather than scoring with a mismatched encoder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from emobench.classify.encoder import length_sorted_batches
from emobench.classify.tuning import bases
from emobench.data import file_sha256
from emobench.errors import DataError

MAX_TOKENS = 128  # replies and comments are far shorter; longer texts are truncated


def load_base(where: str | Path = "minilm") -> tuple[Any, Any]:
    """(tokenizer, model) of a base encoder in float32 eval mode: a key of tuning.bases (its
    offline weights), or a local encoder folder (BERT-style or MPNet) to compare recipes on."""
    from transformers import AutoModel, AutoTokenizer

    path = bases.get(where).path() if isinstance(where, str) else where
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).float().eval()


def additive_mask(lengths: torch.Tensor, width: int, dtype: torch.dtype) -> torch.Tensor:
    """The (batch, 1, 1, width) additive attention mask of right-padded sequences."""
    keep = torch.arange(width)[None, :] < lengths[:, None]
    return torch.zeros(keep.shape, dtype=dtype).masked_fill(~keep, torch.finfo(dtype).min)[
        :, None, None, :
    ]


def run_layers(
    layers: Sequence[Any], encoder: Any, hidden: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """Right-padded `hidden` (rows of `lengths` tokens) through `layers` of `encoder`. MPNet adds
    a relative position bias, which its encoder computes once per pass, to every layer's
    attention; without it the layers would run as if word order did not matter. BERT-style
    encoders (MiniLM) have none."""
    mask = additive_mask(lengths, hidden.shape[1], hidden.dtype)
    extra = {}
    if hasattr(encoder, "compute_position_bias"):
        extra["position_bias"] = encoder.compute_position_bias(hidden)
    for layer in layers:
        out = layer(hidden, attention_mask=mask, **extra)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def mean_pool(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    keep = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).to(hidden.dtype)
    return (hidden * keep[..., None]).sum(1) / lengths[:, None].to(hidden.dtype)


class TunedEncoder(torch.nn.Module):
    """The base encoder's top `tuned` layers and a linear head over `labels`."""

    def __init__(self, base: Any, tuned: int, labels: Sequence[str], dropout: float = 0.1) -> None:
        super().__init__()
        layers = base.encoder.layer
        if not 1 <= tuned <= len(layers):
            raise ValueError(f"tuned={tuned}: the encoder has {len(layers)} layers")
        self.first = len(layers) - tuned
        self.top = torch.nn.ModuleList(layers[self.first :])
        self.labels = tuple(labels)
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(base.config.hidden_size, len(self.labels))
        # Held outside the module tree: only the top layers and the head are trained and saved,
        # but an MPNet encoder's position bias is needed by every pass.
        self._encoder = (base.encoder,)

    def encode(self, hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The top layers' output from the bottom layers' `hidden` (batch, width, dim)."""
        return run_layers(self.top, self._encoder[0], hidden, lengths)

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits from the bottom layers' output `hidden` (batch, width, dim), right-padded."""
        return self.head(self.dropout(mean_pool(self.encode(hidden, lengths), lengths)))

    def tensors(self) -> dict[str, torch.Tensor]:
        """What ships: the trained layers under their base names, and the head."""
        out = {
            f"encoder.layer.{self.first + i}.{k}": v.detach().clone()
            for i, layer in enumerate(self.top)
            for k, v in layer.state_dict().items()
        }
        out["head.weight"] = self.head.weight.detach().clone()
        out["head.bias"] = self.head.bias.detach().clone()
        return out


@torch.inference_mode()
def bottom_states(
    tokenizer: Any, base: Any, first: int, texts: Sequence[str], batch_size: int = 64
) -> list[torch.Tensor]:
    """Each text's hidden states after the base's first `first` layers, unpadded (n_i, dim)."""
    out: list[torch.Tensor | None] = [None] * len(texts)
    batches = length_sorted_batches(
        tokenizer, texts, batch_size, MAX_TOKENS, "Encoding (frozen layers)", progress=True
    )
    for idx, batch in batches:
        lengths = batch["attention_mask"].sum(1)
        hidden = base.embeddings(input_ids=batch["input_ids"])
        hidden = run_layers(base.encoder.layer[:first], base.encoder, hidden, lengths)
        for row, i in enumerate(idx):
            out[i] = hidden[row, : int(lengths[row])].clone()
    return out  # type: ignore[return-value]


def save(model: TunedEncoder, path: Path, card: dict[str, Any]) -> str:
    """Write the artifact (float16) and its card (JSON beside it); returns the weights' sha256."""
    tensors = {k: v.to(torch.float16).contiguous() for k, v in model.tensors().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"labels": json.dumps(list(model.labels))})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(json.dumps({**card, "sha256": digest}, indent=2) + "\n")
    return digest


class TunedHead:
    """Inference with a shipped artifact: the base encoder its card names (tuning.bases), with
    its top layers replaced."""

    def __init__(self, path: Path, batch_size: int = 64) -> None:
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise FileNotFoundError(
                f"fine-tuned head {path} (and its .json) not found; rebuild it with "
                "`emobench train-classifier --head ft` (`--base mpnet` for mpnet-ft)"
            )
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        card_base = self.meta.get("base") or {}
        # Cards from before there was a choice of base name none: they were all MiniLM.
        name = str(card_base.get("name", "minilm"))
        if name not in bases.BASES:
            raise DataError(
                f"{meta_path}: base {name!r} is not one emobench knows ({', '.join(bases.BASES)})"
            )
        self.base = bases.BASES[name]
        retrain = f"rebuild it with `emobench train-classifier --head ft --base {self.base.key}`"
        base_dir = self.base.path()
        if (want := card_base.get("sha256")) and want != (
            have := file_sha256(base_dir / "model.safetensors")
        ):
            raise DataError(
                f"{path}: trained on base weights {want[:12]}, but the installed "
                f"{self.base.hf_id} has {have[:12]}; install it with `{self.base.install}` "
                f"or {retrain}"
            )
        labels = self.meta.get("labels")
        if not isinstance(labels, list) or not labels:
            raise DataError(f"{meta_path}: no `labels` list in the card; {retrain}")
        self.labels = tuple(str(label) for label in labels)
        self.tokenizer, self.model = load_base(base_dir)
        tensors = {k: v.float() for k, v in load_file(str(path)).items()}
        if "head.weight" not in tensors or "head.bias" not in tensors:
            raise DataError(f"{path}: no head.weight/head.bias; {retrain}")
        head_w, head_b = tensors.pop("head.weight"), tensors.pop("head.bias")
        own = self.model.state_dict()
        unknown = sorted(set(tensors) - set(own))
        if unknown:
            raise DataError(
                f"{path}: tensors the base encoder does not have: {unknown[:3]}; {retrain}"
            )
        # A tuned layer must be replaced whole: half a layer from the file and half from the
        # base would score with weights nobody trained together.
        layers = {".".join(k.split(".")[:3]) for k in tensors}
        missing = sorted(
            k for k in own if ".".join(k.split(".")[:3]) in layers and k not in tensors
        )
        want = (self.meta.get("hyperparameters") or {}).get("tuned_layers")
        if missing or (want is not None and len(layers) != want):
            raise DataError(
                f"{path}: the card names {want} tuned layers, the file holds {len(layers)}"
                + (f" and lacks {missing[:3]}" if missing else "")
                + f"; {retrain}"
            )
        self.model.load_state_dict(tensors, strict=False)
        if head_w.shape[0] != len(self.labels):
            raise DataError(
                f"{path}: the head has {head_w.shape[0]} rows but the card names "
                f"{len(self.labels)} labels; {retrain}"
            )
        self.head_w, self.head_b = head_w, head_b
        self.batch_size = batch_size

    @torch.inference_mode()
    def logits(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        batches = length_sorted_batches(
            self.tokenizer, texts, self.batch_size, MAX_TOKENS, "Classifying texts", progress
        )
        for idx, batch in batches:
            hidden = self.model(**batch).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"].sum(1))
            out[idx] = (pooled @ self.head_w.T + self.head_b).numpy()
        return out
