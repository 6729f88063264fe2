"""Loading a causal LM the way every emobench command does: the device, the embedded defaults.

`pretrained` is any Hugging Face id or local directory, or an embedded model name
(`embedded:smollm2-135m-instruct`, the default; `embedded:gemma3-270m`), which resolves to a
converted copy in the user cache with no network (emobench.embedded).
"""

from __future__ import annotations

from typing import Any

import torch

from emobench import embedded


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def model_name(pretrained: str | None) -> str:
    """The name a run records: what the user passed, or the embedded default."""
    return pretrained or embedded.DEFAULT_PRETRAINED


def model_path(pretrained: str | None) -> str:
    """What transformers loads: an embedded model's cached directory, else `pretrained` as given."""
    if embedded.is_embedded(pretrained):
        return str(embedded.resolve(pretrained))
    return str(pretrained)


def load_model(model_args: dict[str, Any]) -> tuple[torch.nn.Module, Any, str]:
    """(model in eval mode on its device, tokenizer, recorded name) from `--model_args`-style
    settings: pretrained=, dtype=, device=."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pretrained = model_args.get("pretrained")
    path = model_path(pretrained)
    kwargs = {}
    if "dtype" in model_args:
        kwargs["dtype"] = getattr(torch, str(model_args["dtype"]))
    device = model_args.get("device") or default_device()
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval().to(device)
    return model, AutoTokenizer.from_pretrained(path), model_name(pretrained)
