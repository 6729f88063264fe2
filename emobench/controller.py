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
import functools
import hashlib
import inspect
import json
import math
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

import torch

from emobench import __version__, artifacts
from emobench.data import file_sha256
from emobench.errors import EmoBenchError
from emobench.registry import CONTROLLERS, create


class Controller:
    """Base class: no rewriting, no hooks, no generation overrides (the unsteered baseline)."""

    name: str = "base"
    # The argument that sets how hard the controller pushes (steer's alpha, circuit's lam), or
    # None: sweeps plot accuracy and quality against it.
    strength: str | None = None
    # Values of the strength knob (and other arguments) that `emobench bench` sweeps on the train
    # split when the controller has no recommended setting; None: run as constructed.
    sweep_grid: ClassVar[dict[str, list[Any]] | None] = None
    # False for controllers that need arguments no default can supply (an ablation's neuron
    # set): `emobench bench` leaves them out.
    main_job: bool = True
    # Filled in by emobench.registry.create: the arguments this instance was built with
    # (defaults filled in), and those the user gave.
    args: dict[str, Any]
    given: dict[str, Any]
    registry_name: str

    def messages(self, doc: dict[str, Any], messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """The chat for this doc; `messages` holds the neutral system turn and the user turn."""
        return messages

    def prepare(self, model: Any, tokenizer: Any) -> None:
        """Called once with the loaded model and its tokenizer, before any request: the place
        to look up token ids or build what every scope will need."""

    @contextlib.contextmanager
    def scope(self, model: Any, emotion: str) -> Iterator[None]:
        """Steer `model` toward `emotion` for the duration of the block; undo it on every exit."""
        yield

    def task_scope(self, model: Any) -> contextlib.AbstractContextManager[None]:
        """The controller's effect on requests that have no target emotion (log-likelihood
        tasks such as emotion inference). A controller that only works through a target emotion
        (its own `scope` or `messages`) cannot run them: it is refused rather than run as if it
        were `none`. Override this (ablations do) to take part."""
        self._needs_no_target("log-likelihood tasks")
        return contextlib.nullcontext()

    def refuse_untargeted(self, tasks: str) -> None:
        """Raise, before any request runs, if `tasks` (which have no target emotion) would be
        refused: a controller that overrides `task_scope` answers for itself when it runs."""
        if type(self).task_scope is Controller.task_scope:
            self._needs_no_target(tasks)

    def _needs_no_target(self, tasks: str) -> None:
        base = Controller
        if type(self).scope is not base.scope or type(self).messages is not base.messages:
            raise EmoBenchError(
                f"controller {self.spec()['name']!r} acts through a target emotion (its prompt "
                f"or hooks), and the requests of {tasks} have none; run those with a "
                "controller that does not need one (none, ablate), in a run of their own"
            )

    def generation_kwargs(self) -> dict[str, Any]:
        """Overrides for the task's generation settings (for example a repetition penalty)."""
        return {}

    def spec(self) -> dict[str, Any]:
        """A JSON-safe record of what ran: written to results and leaderboard rows."""
        return {
            "name": getattr(self, "registry_name", self.name),
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "args": dict(getattr(self, "args", {})),
            "given": dict(getattr(self, "given", {})),
            "changed": dict(getattr(self, "changed", {})),
            "generation_kwargs": self.generation_kwargs(),
            "emobench_version": __version__,
            # In the journal's key too: replies of the code before an edit are not handed to the
            # code after it (a plugin under development, installed editable).
            "code_sha256": code_sha256(type(self)),
        }


@functools.cache
def code_sha256(cls: type) -> str | None:
    """A short hash of the source file that defines a controller class (None without one)."""
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def finite_number(controller: str, name: str, value: Any) -> float:
    """A controller's numeric argument as a float, refused (naming it) unless finite: a NaN
    strength would empty every reply and still produce a leaderboard row."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EmoBenchError(
            f"{controller}: {name}={value!r} is not a number (for example {name}=1.5)"
        ) from None
    if not math.isfinite(number):
        raise EmoBenchError(f"{controller}: {name} must be a finite number, got {value}")
    return number


def whole_number(controller: str, name: str, value: Any) -> int:
    """A controller's integer argument, refused (naming it) unless it is a whole number:
    int(2.7) would run 2 while the record says 2.7."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # exact: a float would round a large seed
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    number = finite_number(controller, name, value)
    if not number.is_integer():
        raise EmoBenchError(
            f"{controller}: {name}={value!r} is not a whole number (for example {name}=3)"
        )
    return int(number)


class ArtifactController(Controller):
    """A controller that loads what a discovery built (directions, a circuit) from an artifact.

    Subclasses name the artifact `kind` they read and the folder of the one shipped for the
    embedded default model; they get the path (`artifact=` or the shipped one), the artifact's
    `recommended.json` (settings chosen by a sweep on the train split), a load cached per model
    and checked for kind and model, and the artifact's sha256 in `spec()`.
    """

    kind: str = ""
    shipped: str = ""  # folder under controllers/artifacts/smollm2-135m-instruct/

    def __init__(self, artifact: str | None = None) -> None:
        self.artifact = artifact
        self._loaded: tuple[int, dict[str, torch.Tensor], dict[str, Any]] | None = None
        self._sha256: str | None = None
        if artifact is not None:
            artifacts.read_meta(self.artifact_path(), self.kind)  # fail before any model loads

    def artifact_path(self) -> Path:
        if self.artifact:
            return Path(self.artifact)
        root = files("emobench.controllers") / "artifacts" / "smollm2-135m-instruct"
        return Path(str(root / self.shipped))

    def recommended(self) -> dict[str, Any]:
        """The artifact's recommended settings ({} when it has none)."""
        path = self.artifact_path() / "recommended.json"
        if not path.is_file():
            return {}
        try:
            return dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise EmoBenchError(f"{path}: not a JSON object ({exc}); fix or delete it") from exc

    def load_artifact(self, model: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The artifact's tensors and metadata, read once per model and refused for another."""
        if self._loaded is None or self._loaded[0] != id(model):
            tensors, meta = artifacts.load(self.artifact_path(), model, kind=self.kind)
            self._loaded = (id(model), tensors, meta)
        return self._loaded[1], self._loaded[2]

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        tensors = self.artifact_path() / "tensors.safetensors"
        if self._sha256 is None and tensors.is_file():
            self._sha256 = file_sha256(tensors)  # once: spec() is asked for often
        spec["artifact"] = {"path": str(self.artifact_path()), "sha256": self._sha256}
        return spec


def create_controller(name: str, **kwargs: Any) -> Controller:
    controller = create(CONTROLLERS, name, **kwargs)
    if not isinstance(controller, Controller):
        # Duck typing would also work, but a clear error beats an AttributeError mid-run.
        raise TypeError(
            f"controller {name!r} is a {type(controller).__name__}, not an emobench Controller"
        )
    return controller
