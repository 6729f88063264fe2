"""`prompt`: ask for the emotion in the system message (METHOD.md, controller 1)."""

from __future__ import annotations

from typing import Any

from emobench.controller import Controller
from emobench.errors import EmoBenchError

SYSTEM_TEMPLATE = "Always reply in {emotion}.\nKeep the reply to at most two sentences."


class PromptController(Controller):
    name = "prompt"

    def __init__(self, template: str = SYSTEM_TEMPLATE) -> None:
        if "{emotion}" not in template:
            raise EmoBenchError(
                f"prompt: template={template!r} must contain the placeholder {{emotion}} "
                "(for example template='Reply in {emotion}.')"
            )
        self.template = template

    def messages(self, doc: dict[str, Any], messages: list[dict[str, str]]) -> list[dict[str, str]]:
        system = {"role": "system", "content": self.template.format(emotion=doc["target_emotion"])}
        return [system, *(m for m in messages if m["role"] != "system")]
