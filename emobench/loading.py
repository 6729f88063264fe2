"""Loading a causal LM the way every emobench command does: the device, the embedded defaults.

`pretrained` is any Hugging Face id or local directory, or an embedded model name
(`embedded:smollm2-135m-instruct`, the default; `embedded:gemma3-270m`), which resolves to a
converted copy in the user cache with no network (emobench.embedded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from emobench import embedded
from emobench.errors import EmoBenchError


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def model_name(pretrained: str | None) -> str:
    """The name a run records: what the user passed, or the embedded default."""
    return pretrained or embedded.DEFAULT_PRETRAINED


def check_pretrained(pretrained: str | None) -> None:
    """Refuse a local path that is not there, before anything loads. A Hugging Face id is
    `name` or `org/name`; anything else (absolute, ./, ../, ~, or more than one slash) can only
    be a directory, and transformers would report it as a malformed repo id."""
    if pretrained is None or embedded.is_embedded(pretrained):
        return
    text = str(pretrained)
    local = text.startswith(("/", ".", "~")) or text.count("/") > 1
    try:
        found = Path(text).expanduser().is_dir()
    except RuntimeError:  # "~someone" for a user this machine does not have
        found = False
    if local and not found:
        raise EmoBenchError(
            f"pretrained={text}: no such directory; pass a model directory (with its "
            "config.json), a Hugging Face id such as HuggingFaceTB/SmolLM2-135M-Instruct, or "
            f"{embedded.DEFAULT_PRETRAINED}"
        )


def model_path(pretrained: str | None) -> str:
    """What transformers loads: an embedded model's cached directory, else `pretrained` as given."""
    check_pretrained(pretrained)
    if embedded.is_embedded(pretrained):
        return str(embedded.resolve(pretrained))
    # transformers does not expand "~" itself.
    return str(Path(str(pretrained)).expanduser())


# Model settings that change the weights, which this loader cannot apply: a run with them
# would read one model and discover on another.
_NOT_APPLIED = ("peft", "delta", "gguf_file")


def location(model_args: dict[str, Any]) -> dict[str, str]:
    """Where in a model's repository its weights are: revision=, subfolder= (as given)."""
    return {k: str(model_args[k]) for k in ("revision", "subfolder") if model_args.get(k)}


def load_model(model_args: dict[str, Any]) -> tuple[torch.nn.Module, Any, str]:
    """(model in eval mode on its device, tokenizer, recorded name) from `--model_args`-style
    settings: pretrained=, revision=, subfolder=, tokenizer=, dtype=, device=. An adapter or
    delta (peft=, delta=, gguf_file=) is refused rather than left out."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if given := [k for k in _NOT_APPLIED if model_args.get(k) not in (None, "")]:
        raise EmoBenchError(
            f"--model_args {given[0]}={model_args[given[0]]}: this command loads the model "
            "without adapters or deltas, so it would read the plain model; merge it into a "
            "model directory first (for peft: merge_and_unload(), then save_pretrained(DIR)) and "
            "pass pretrained=DIR"
        )
    pretrained = model_args.get("pretrained")
    path = model_path(pretrained)
    where = location(model_args)
    kwargs: dict[str, Any] = dict(where)
    if "dtype" in model_args:
        kwargs["dtype"] = getattr(torch, str(model_args["dtype"]))
    device = model_args.get("device") or default_device()
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval().to(device)
    tokenizer_from = model_args.get("tokenizer") or path
    tokenizer_where = {} if model_args.get("tokenizer") else where
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, **tokenizer_where)
    return model, tokenizer, model_name(pretrained)
