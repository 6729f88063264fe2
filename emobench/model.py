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

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from emobench import EMOTIONS, embedded
from emobench.chat import base_messages, render
from emobench.controller import Controller, create_controller
from emobench.errors import EmoBenchError

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


class _OriginalArgsCacheHook:
    """Record partial results under the request's original arguments.

    lm-eval's --use_cache looks results up by the arguments the task made; HFLM reports them under
    the prompt the controller rewrote. Translating back keeps an interrupted run resumable.
    """

    def __init__(self, inner: Any, originals: dict[tuple[str, str], list[tuple]]) -> None:
        self.inner = inner
        self.originals = originals

    def add_partial(self, attr: str, req: tuple, res: Any) -> None:
        queue = self.originals.get((req[0], _kw_key(req[1])))
        self.inner.add_partial(attr, queue.pop(0) if queue else req, res)


@register_model("emobench")
class EmoBenchLM(HFLM):
    def __init__(
        self,
        pretrained: str | None = None,
        controller: str | Controller = "none",
        controller_args: dict[str, Any] | str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.pretrained_name = pretrained or embedded.DEFAULT_PRETRAINED
        path = str(embedded.resolve(pretrained)) if embedded.is_embedded(pretrained) else pretrained
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        super().__init__(pretrained=path, device=device, **kwargs)
        if isinstance(controller, Controller):
            self.controller = controller
        else:
            self.controller = create_controller(controller, **parse_controller_args(controller_args))

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

    @contextlib.contextmanager
    def _translated_cache(self, originals: list[Instance], rewritten: list[Instance]) -> Iterator[None]:
        mapping: dict[tuple[str, str], list[tuple]] = {}
        for orig, new in zip(originals, rewritten, strict=True):
            mapping.setdefault((new.args[0], _kw_key(new.args[1])), []).append(orig.args)
        inner = self.cache_hook
        self.cache_hook = _OriginalArgsCacheHook(inner, mapping)
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
                log.info("controller %s: %s (%d requests)", self.controller.spec()["name"], emotion, len(idxs))
                rewritten = [self._rewrite(r) for r in originals]
                with self.controller.scope(self.model, emotion), self._translated_cache(originals, rewritten):
                    outs = super().generate_until(rewritten, disable_tqdm)
            for i, text in zip(idxs, outs, strict=True):
                results[i] = text
        return results  # type: ignore[return-value]
