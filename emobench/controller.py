"""The controller contract: how a method of emotion control plugs into a model.

A controller may rewrite the chat messages of a doc, install hooks on the model for one target
emotion, and override generation settings. Keep third-party controllers this small:

    class Shout(Controller):
        name = "shout"
        def messages(self, doc, messages):
            system = {"role": "system", "content": f"Reply in {doc['target_emotion']}!"}
            return [system, *messages[1:]]

and register it in your package's pyproject.toml:

    [project.entry-points."emobench.controllers"]
    shout = "my_package.shout:Shout"
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from emobench import __version__
from emobench.registry import CONTROLLERS, create

# METHOD.md: the system message shared by every controller that does not name the emotion.
NEUTRAL_SYSTEM = "Keep the reply to at most two sentences."


class Controller:
    """Base class: no rewriting, no hooks, no generation overrides (the unsteered baseline)."""

    name: str = "base"
    # Filled in by emobench.registry.create: the arguments this instance was built with.
    args: dict[str, Any]
    registry_name: str

    def messages(self, doc: dict[str, Any], messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """The chat for this doc; `messages` holds the neutral system turn and the user turn."""
        return messages

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        """Steer `model` toward `emotion` for the duration of the block; undo it on every exit."""
        yield

    def generation_kwargs(self) -> dict[str, Any]:
        """Overrides for the task's generation settings (for example a repetition penalty)."""
        return {}

    def spec(self) -> dict[str, Any]:
        """A JSON-safe record of what ran: written to results and leaderboard rows."""
        return {
            "name": getattr(self, "registry_name", self.name),
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "args": dict(getattr(self, "args", {})),
            "generation_kwargs": self.generation_kwargs(),
            "emobench_version": __version__,
        }


def create_controller(name: str, **kwargs: Any) -> Controller:
    controller = create(CONTROLLERS, name, **kwargs)
    if not isinstance(controller, Controller):
        # Duck typing would also work, but a clear error beats an AttributeError mid-run.
        raise TypeError(
            f"controller {name!r} is a {type(controller).__name__}, not an emobench Controller"
        )
    return controller
