"""Controllers used by the tests through the 'module:Class' plugin path (real code, not mocks)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from emobench.controllers.prompt import PromptController

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


class LeakyController(Controller):
    """Attaches a hook in its scope and never removes it: the model wrapper must refuse that."""

    name = "leaky"

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        decoder_layers(model)[0].register_forward_hook(lambda module, inputs, output: None)
        yield


class MarkerController(Controller):
    """Puts the doc key in the system message, to check what prompt each request received."""

    name = "marker"

    def messages(self, doc, messages):
        return [{"role": "system", "content": f"MARK {doc['key']}"}, *messages[1:]]


class ScrambleController(Controller):
    """Adds a large constant to the first block's output: steered text differs from unsteered."""

    name = "scramble"

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        layer0 = next(n for n, m in model.named_modules() if m is decoder_layers(model)[0])

        def hook(module, inputs, output):
            if isinstance(output, tuple):
                return (output[0] + 5.0, *output[1:])
            return output + 5.0

        with hooked(model, forward={layer0: hook}):
            yield


# Classifiers for discovery's --accepted_only (appended: imported here to keep the edit local).
import numpy as np  # noqa: E402

from emobench import EMOTIONS  # noqa: E402
from emobench.classify import Classifier  # noqa: E402


class GroupCycleClassifier(Classifier):
    """Reads no text: labels the i-th text of a call EMOTIONS[i % 6], except the last text of
    every odd group of six, which it calls neutral.

    Discovery classifies all replies in one call, in doc order (whole groups, six emotions in
    EMOTIONS order), so this accepts groups 0, 2, 4, ... and rejects groups 1, 3, 5, ...: a random
    model's text cannot pass a real classifier, and the filter itself is what is under test.
    """

    name = "group-cycle"
    labels = (*EMOTIONS, "neutral")

    def predict_proba(self, texts):
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for i in range(len(texts)):
            group, pos = divmod(i, len(EMOTIONS))
            probs[i, len(EMOTIONS) if group % 2 and pos == len(EMOTIONS) - 1 else pos] = 1.0
        return probs


class NeutralClassifier(Classifier):
    """Calls every text neutral: no group passes --accepted_only."""

    name = "all-neutral"
    labels = (*EMOTIONS, "neutral")

    def predict_proba(self, texts):
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        probs[:, -1] = 1.0
        return probs


class ScopedPromptController(PromptController):
    """The prompt controller with a scope of its own (empty): its requests stay in per-emotion
    groups, where the stock prompt controller's are batched across emotions."""

    name = "scoped-prompt"

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        yield


class KnobController(Controller):
    """A controller with a strength knob and a sweep grid but no recommended setting: the main
    job must sweep it on the train split before its test run."""

    name = "knob"
    strength = "gain"
    sweep_grid: ClassVar[dict[str, list[Any]]] = {"gain": [0, 2]}

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def messages(self, doc: dict[str, Any], messages: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.gain <= 0:
            return messages
        shout = {"role": "system", "content": f"Reply with strong {doc['target_emotion']}."}
        return [shout, *messages[1:]]


class DeferringPromptController(PromptController):
    """Overrides task_scope only to hand it back to the base class: still refused there."""

    name = "deferring-prompt"

    def task_scope(self, model: Any):
        return super().task_scope(model)


class BrokenInitController(Controller):
    """Imports fine, fails to construct: a plugin with a bug in its constructor."""

    name = "broken-init"

    def __init__(self, level: str = "x") -> None:
        self.level = int(level)


class TokenizerController(Controller):
    """Reads the tokenizer once, before any request (Controller.prepare)."""

    name = "tokenizer"

    def __init__(self) -> None:
        self.prepared: list[tuple[Any, Any]] = []

    def prepare(self, model: Any, tokenizer: Any) -> None:
        self.prepared.append((model, tokenizer))

    def messages(self, doc: dict[str, Any], messages: list[dict[str, str]]) -> list[dict[str, str]]:
        ((_, tokenizer),) = self.prepared
        ids = tokenizer(doc["target_emotion"], add_special_tokens=False)["input_ids"]
        system = {"role": "system", "content": f"Token ids of the emotion: {ids}."}
        return [system, *messages[1:]]


class LibraryErrorController(Controller):
    """A constructor whose error is raised inside a library it calls."""

    name = "library-error"

    def __init__(self, spec: str = "{") -> None:
        import json

        self.spec_ = json.loads(spec)
