"""`emobench`: an lm-eval HFLM that runs every request under a controller.

Requests are grouped by their doc's target emotion; each group is generated inside
``controller.scope(model, emotion)`` (which may install hooks) from the prompt the controller
builds, and results come back in the original order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from emobench import EMOTIONS, loading
from emobench.chat import base_messages, render
from emobench.controller import Controller, create_controller
from emobench.errors import EmoBenchError
from emobench.hooks import hook_count
from emobench.journal import Journal, fingerprint
from emobench.scoring import fluency

log = logging.getLogger(__name__)


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


def _kw_key(gen_kwargs: dict[str, Any]) -> str:
    return json.dumps(gen_kwargs, sort_keys=True, default=str)


class _JournalHook:
    """Receives each reply as HFLM finishes it and appends it to the journal under its doc key."""

    def __init__(
        self, journal: Journal, keys: dict[tuple[str, str], list[tuple[str, str]]]
    ) -> None:
        self.journal = journal
        self.keys = keys

    def add_partial(self, attr: str, req: tuple, res: Any) -> None:
        queue = self.keys.get((req[0], _kw_key(req[1])))
        if queue:
            key, fp = queue.pop(0)
            self.journal.add(key, fp, res)


@register_model("emobench")
class EmoBenchLM(HFLM):
    def __init__(
        self,
        pretrained: str | None = None,
        controller: str | Controller = "none",
        controller_args: dict[str, Any] | str | None = None,
        journal: str | None = None,
        device: str | None = None,
        measure_fluency: bool = True,
        **kwargs: Any,
    ) -> None:
        self.pretrained_name = loading.model_name(pretrained)
        super().__init__(
            pretrained=loading.model_path(pretrained),
            device=device or loading.default_device(),
            **kwargs,
        )
        if isinstance(controller, Controller):
            self.controller = controller
        else:
            self.controller = create_controller(
                controller, **parse_controller_args(controller_args)
            )
        self.journal = Journal(journal) if journal else None
        self.measure_fluency = (
            measure_fluency
            if isinstance(measure_fluency, bool)
            else (str(measure_fluency).lower() not in ("false", "0", "no"))
        )

    # ---- prompts -------------------------------------------------------------------------
    def _rewrite(self, request: Instance) -> Instance:
        doc = request.doc
        messages = self.controller.messages(doc, base_messages(doc))
        context, extra_stop = render(self.tokenizer, messages)
        gen_kwargs = {**dict(request.args[1]), **self.controller.generation_kwargs()}
        if extra_stop:
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            gen_kwargs["until"] = until + [s for s in extra_stop if s not in until]
        return dataclasses.replace(request, arguments=(context, gen_kwargs))

    def _fingerprints(self, requests: list[Instance]) -> list[str]:
        """Journal fingerprints: one per distinct generation settings, not one per request
        (a controller's spec may hash an artifact file)."""
        controller = self.controller.spec()
        by_kwargs: dict[str, str] = {}
        fps = []
        for req in requests:
            key = _kw_key(req.args[1])
            if key not in by_kwargs:
                by_kwargs[key] = fingerprint(
                    {
                        "model": self.pretrained_name,
                        "controller": controller,
                        "gen_kwargs": req.args[1],
                    }
                )
            fps.append(by_kwargs[key])
        return fps

    @contextlib.contextmanager
    def _journaled(self, rewritten: list[Instance], fps: list[str]) -> Iterator[None]:
        if self.journal is None:
            yield
            return
        keys: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for req, fp in zip(rewritten, fps, strict=True):
            keys.setdefault((req.args[0], _kw_key(req.args[1])), []).append((req.doc["key"], fp))
        inner = self.cache_hook
        self.cache_hook = _JournalHook(self.journal, keys)
        try:
            yield
        finally:
            self.cache_hook = inner

    # ---- generation ----------------------------------------------------------------------
    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        groups: dict[str | None, list[int]] = {}
        for i, req in enumerate(requests):
            doc = req.doc if isinstance(req.doc, dict) else {}
            emotion = doc.get("target_emotion")
            if emotion is not None and emotion not in EMOTIONS:
                raise EmoBenchError(
                    f"doc {doc.get('key', i)!r} has target_emotion {emotion!r}; "
                    f"known emotions: {', '.join(EMOTIONS)}"
                )
            groups.setdefault(emotion, []).append(i)

        results: list[str | None] = [None] * len(requests)
        for emotion, idxs in groups.items():
            originals = [requests[i] for i in idxs]
            if emotion is None:
                # Not an emobench doc (another lm-eval task): generate it unsteered, as HFLM would.
                log.warning("%d request(s) without a target_emotion run unsteered", len(idxs))
                outs = super().generate_until(originals, disable_tqdm)
            else:
                log.info(
                    "controller %s: %s (%d requests)",
                    self.controller.spec()["name"],
                    emotion,
                    len(idxs),
                )
                outs = self._generate_group(emotion, originals, disable_tqdm)
            for i, text in zip(idxs, outs, strict=True):
                results[i] = text
        return results  # type: ignore[return-value]

    def _generate_group(
        self, emotion: str, requests: list[Instance], disable_tqdm: bool
    ) -> list[str]:
        rewritten = [self._rewrite(r) for r in requests]
        fps = self._fingerprints(rewritten)
        outs: list[str | None] = [None] * len(requests)
        if self.journal is not None:
            for j, (req, fp) in enumerate(zip(rewritten, fps, strict=True)):
                outs[j] = self.journal.get(req.doc["key"], fp)
        todo = [j for j, o in enumerate(outs) if o is None]
        if len(todo) < len(requests):
            log.info(
                "%s: %d of %d replies taken from the journal",
                emotion,
                len(requests) - len(todo),
                len(requests),
            )
        if todo:
            pending = [rewritten[j] for j in todo]
            hooks_before = hook_count(self.model)
            with (
                self.controller.scope(self.model, emotion),
                self._journaled(pending, [fps[j] for j in todo]),
            ):
                made = super().generate_until(pending, disable_tqdm)
            if (left := hook_count(self.model) - hooks_before) != 0:
                # Every later group, and the fluency pass, would run through a stale hook.
                raise EmoBenchError(
                    f"controller {self.controller.spec()['name']!r} left {left} hook(s) on the "
                    f"model after its scope for {emotion!r}; a scope must remove every hook it "
                    "adds on every exit (emobench.hooks.hooked does)"
                )
            for j, text in zip(todo, made, strict=True):
                outs[j] = text
        if self.measure_fluency:
            self._measure_fluency(rewritten, outs, disable_tqdm)  # type: ignore[arg-type]
        return outs  # type: ignore[return-value]

    def _measure_fluency(
        self, rewritten: list[Instance], outs: list[str], disable_tqdm: bool
    ) -> None:
        """Perplexity of each reply under the unsteered model (outside the controller's scope),
        handed to the task's scoring filter through emobench.fluency."""
        try:
            batch = int(self.batch_size)
        except (TypeError, ValueError):
            batch = 16
        ppl = fluency.perplexities(
            self.model,
            self.tokenizer,
            [r.args[0] for r in rewritten],
            outs,
            batch_size=batch,
            max_length=self.max_length,
            progress=not disable_tqdm,
            encode_context=self.tok_encode,
        )
        for req, text, value in zip(rewritten, outs, ppl, strict=True):
            fluency.remember(req.doc["key"], text, value)
