"""Controllers used by the tests through the 'module:Class' plugin path (real code, not mocks)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from emobench.controller import Controller
from emobench.hooks import decoder_layers, hooked


class RecordingController(Controller):
    """Installs a real forward hook per scope and records which emotion each forward pass saw."""

    name = "recording"

    def __init__(self) -> None:
        # Set after construction, so a failing and a healthy instance share one spec.
        self.fail_on: str | None = None
        self.calls: list[str] = []

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        layer0 = next(n for n, m in model.named_modules() if m is decoder_layers(model)[0])

        def hook(module, inputs, output):
            self.calls.append(emotion)
            if emotion == self.fail_on:
                raise RuntimeError(f"boom in {emotion}")

        with hooked(model, forward={layer0: hook}):
            yield


class MarkerController(Controller):
    """Puts the doc key in the system message, to check what prompt each request received."""

    name = "marker"

    def messages(self, doc, messages):
        return [{"role": "system", "content": f"MARK {doc['key']}"}, *messages[1:]]
