"""The emobench model's own arguments as `--model_args` hands them over (strings, or what
lm-eval's parser made of them), and a clear refusal of an argument nobody takes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emobench.errors import EmoBenchError

YES = ("true", "1", "yes", "on")
NO = ("false", "0", "no", "off")


def plain_value(text: str) -> Any:
    """A command-line value as the type it spells: JSON numbers, booleans, null, lists, objects;
    anything else stays the string it is (so `template=Sound {emotion}.` keeps its braces)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_controller_args(raw: Any) -> dict[str, Any]:
    """Controller arguments arrive as a dict (emobench CLI) or a JSON string (--model_args)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EmoBenchError(f"controller_args must be a JSON object, got {raw!r}") from exc
        if isinstance(value, dict):
            return value
    raise EmoBenchError(f"controller_args must be a JSON object, got {raw!r}")


def flag(name: str, value: Any, given_by: str = "--model_args") -> bool:
    """A yes/no argument (of the model, or of `given_by`, e.g. a controller); anything else is
    refused, as a misspelt `off` must not mean on."""
    text = str(value).lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise EmoBenchError(
        f"{given_by} {name}={value}: not a yes/no value; use {name}=true or {name}=false"
    )


def unknown_argument(
    exc: TypeError, given: Mapping[str, Any], own: list[str]
) -> EmoBenchError | None:
    """The clear error for a --model_args key that reached the model class's constructor (a typo
    of one of emobench's own, say), or None when `exc` is about something else."""
    message = str(exc)
    if "unexpected keyword argument" not in message:
        return None
    unknown = [key for key in given if f"'{key}'" in message]
    if not unknown:
        return None
    return EmoBenchError(
        f"--model_args {unknown[0]}: not an argument of the emobench model ({', '.join(own)}), "
        f"of lm-eval's hf model, or of the model class ({message})"
    )
