"""Turning an SEV doc into the prompt a model sees.

Models with a chat template get it (with the generation prompt). Base models without one get a
documented plain-text format, and generation also stops where the model would start a new turn:

    System: <system message>

    User: <scenario>
    <event>

    Assistant:
"""

from __future__ import annotations

from typing import Any

from emobench.data import user_message

# METHOD.md: the system message shared by every controller that does not name the emotion.
NEUTRAL_SYSTEM = "Keep the reply to at most two sentences."
PLAIN_STOP = ["\nUser:", "\nSystem:"]


def base_messages(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The chat every controller starts from: the neutral system turn, then the user turn."""
    return [
        {"role": "system", "content": NEUTRAL_SYSTEM},
        {"role": "user", "content": user_message(doc["scenario"], doc["event"])},
    ]


def plain_format(messages: list[dict[str, str]]) -> str:
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*parts, "Assistant:"])


def render(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
    """(prompt text, extra stop sequences) for this tokenizer."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, []
    return plain_format(messages), list(PLAIN_STOP)


def wants_special_tokens(tokenizer: Any, prompts: list[str]) -> bool:
    """lm-eval's rule for encoding prompts: the tokenizer's special tokens are added unless the
    prompts already start with the BOS token (chat templates write it; the plain-text format and
    base models such as Gemma-3 without a template do not)."""
    bos = getattr(tokenizer, "bos_token", None)
    return not (bool(bos) and all(p.startswith(bos) for p in prompts))
