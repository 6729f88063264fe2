"""`emobench`: an lm-eval HFLM that runs every request under a controller.

Requests are grouped by their doc's target emotion; each group is generated inside
``controller.scope(model, emotion)`` (which may install hooks) from the prompt the controller
builds, and results come back in the original order. A controller that keeps the base class's
empty scope (``none``, ``prompt``) has nothing per emotion on the model, so its requests form
one group: full batches across emotions instead of six short tails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from emobench import EMOTIONS, decode, loading
from emobench.chat import base_messages, render
from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.controller import Controller, create_controller
from emobench.data import user_message
from emobench.errors import EmoBenchError
from emobench.hooks import hook_count
from emobench.journal import Journal, JournalHook, fingerprint, kw_key
from emobench.model_args import flag, parse_controller_args, unknown_argument
from emobench.record import reply_settings, run_record
from emobench.reply import Reply
from emobench.scoring import fluency
from emobench.scoring.gate import describe, gate_for

log = logging.getLogger(__name__)

# The group key of requests generated together across target emotions (unscoped controllers).
ALL_EMOTIONS = "all emotions"
FLUENCY_BATCH_CAP = 4


def _cpu_data_parallel(device: str) -> bool:
    """True when a launcher (torchrun, accelerate launch) started several processes that run on
    the CPU: the shared process state is then set up for CPU ranks (gloo) before HFLM's
    Accelerator reads it, which would otherwise see no GPU and run each process alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not str(device).startswith("cpu"):
        return False
    from datetime import timedelta

    from accelerate import PartialState

    # HFLM asks for the same year-long timeout, but only the first set-up counts: ranks that
    # find their replies in a journal can be far ahead of the others at the final gather.
    PartialState(cpu=True, timeout=timedelta(weeks=52))
    return True


def _prompt_changed(key: Any) -> EmoBenchError:
    return EmoBenchError(
        f"lm-eval changed the prompt of doc {key!r} (--system_instruction, "
        "--apply_chat_template, --num_fewshot, a task's description, or a request built by "
        "hand): the emobench model "
        "builds each SEV chat from the doc itself, so the change would be recorded but never "
        "sent; drop it, and ask for a system turn through a controller (--controller prompt "
        "--controller_args 'template=... {emotion} ...')"
    )


@register_model("emobench")
class EmoBenchLM(HFLM):
    def __init__(
        self,
        pretrained: str | None = None,
        controller: str | Controller = "none",
        controller_args: dict[str, Any] | str | None = None,
        classifier: str | None = None,
        journal: str | None = None,
        device: str | None = None,
        measure_fluency: bool | str = True,
        fast_decode: bool | str = True,
        **kwargs: Any,
    ) -> None:
        # Everything a bad argument can break is built before the model loads.
        if isinstance(controller, Controller):
            self.controller = controller
        else:
            self.controller = create_controller(
                controller, **parse_controller_args(controller_args)
            )
        self.classifier_name = classifier or DEFAULT_CLASSIFIER
        self.classifier_spec = get_classifier(self.classifier_name).spec()
        self.pretrained_name = loading.model_name(pretrained)
        self.gate = gate_for(self.pretrained_name)
        self.journal = Journal(journal) if journal else None
        # Docs generated and taken from the journal, by key (lm-eval pads a short rank with copies
        # of its last request): summed over ranks into the record, as a resumed run's wall time
        # covers only what it generated. Generation seconds go beside it: equal records per setting.
        self._done: dict[str, set[str]] = {"generated": set(), "from_journal": set()}
        self._unkeyed = 0
        self._seconds = 0.0
        self.replies = {"generated": 0, "from_journal": 0}
        self.generation_seconds = 0.0
        self.measure_fluency = flag("measure_fluency", measure_fluency)
        self.fast_decode = flag("fast_decode", fast_decode)
        # A revision, an adapter or a shorter context gives other replies: another journal key.
        self.reply_settings = reply_settings(kwargs)
        device = device or loading.default_device()
        cpu_ranks = _cpu_data_parallel(device)
        try:
            super().__init__(pretrained=loading.model_path(pretrained), device=device, **kwargs)
        except TypeError as exc:
            own = [p for p in inspect.signature(EmoBenchLM).parameters if p != "kwargs"]
            # HFLM's own parameters (lm-eval passes batch_size and others) are never the typo.
            hflm = inspect.signature(HFLM.__init__).parameters
            error = unknown_argument(exc, {k: v for k, v in kwargs.items() if k not in hflm}, own)
            if error is None:
                raise
            raise error from exc
        self.controller.prepare(self.model, self.tokenizer)
        if cpu_ranks and getattr(self, "accelerator", None) is not None:
            # HFLM splits requests across processes only when it counts several GPUs; on CPU
            # every launched process would otherwise run the whole task.
            self._rank = self.accelerator.process_index
            self._world_size = self.accelerator.num_processes

    def get_model_info(self) -> dict[str, Any]:
        """lm-eval's model-info hook: its result lands in the results file's `config`, so the
        record of what ran travels with every run, whichever command started it."""
        record = run_record(
            self.pretrained_name,
            self.controller.spec(),
            self.classifier_spec,
            describe(self.gate),
            self.measure_fluency,
        )
        return {
            **super().get_model_info(),
            "emobench": {**record, "replies": dict(self.replies)},
            "emobench_generation_seconds": self.generation_seconds,
        }

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
            key = kw_key(req.args[1])
            if key not in by_kwargs:
                settings = {
                    "model": self.pretrained_name,
                    "controller": controller,
                    "gen_kwargs": req.args[1],
                }
                if self.model.dtype != torch.float32:
                    # Other precisions give other replies; float32 keeps its older fingerprints.
                    settings["dtype"] = str(self.model.dtype)
                if self.reply_settings:
                    settings["model_args"] = self.reply_settings
                by_kwargs[key] = fingerprint(settings)
            fps.append(by_kwargs[key])
        return fps

    @contextlib.contextmanager
    def _journaled(self, rewritten: list[Instance], fps: list[str]) -> Iterator[None]:
        if self.journal is None:
            yield
            return
        keys: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for req, fp in zip(rewritten, fps, strict=True):
            keys.setdefault((req.args[0], kw_key(req.args[1])), []).append((req.doc["key"], fp))
        inner = self.cache_hook
        self.cache_hook = hook = JournalHook(self.journal, keys)
        try:
            yield
        finally:
            self.cache_hook = inner
        if hook.unmatched:
            log.warning(
                "%d repl(ies) could not be matched to a doc and were not journaled: an "
                "interrupted run would generate them again (journal %s)",
                hook.unmatched,
                self.journal.path,
            )

    # ---- generation ----------------------------------------------------------------------
    def _model_generate(
        self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any
    ) -> torch.Tensor:
        """Greedy requests go through emobench.decode (finished replies leave the batch); any
        other decoding goes to transformers' generate as in HFLM."""
        processors = (
            decode.plan(self.model, context.shape[1], generation_kwargs)
            if self.fast_decode
            else None
        )
        if processors is None or "attention_mask" not in generation_kwargs:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        with torch.autocast(
            device_type=self.device.type,
            dtype=self.mixed_precision_dtype,
            enabled=self.mixed_precision_dtype is not None,
        ):
            return decode.greedy(
                self.model,
                self.tokenizer,
                context,
                generation_kwargs["attention_mask"],
                max_new_tokens=max_length - context.shape[1],
                stop=stop,
                pad_token_id=self.tokenizer.pad_token_id,
                processors=processors,
            )

    # ---- log-likelihood tasks (no target emotion: emotion inference) ------------------------
    @contextlib.contextmanager
    def _task_scope(self) -> Iterator[None]:
        hooks_before = hook_count(self.model)
        with self.controller.task_scope(self.model):
            yield
        if (left := hook_count(self.model) - hooks_before) != 0:
            raise EmoBenchError(
                f"controller {self.controller.spec()['name']!r} left {left} hook(s) on the model "
                "after its task scope; a scope must remove every hook it adds on every exit"
            )

    def loglikelihood(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        with self._task_scope():
            return super().loglikelihood(requests, disable_tqdm)

    def loglikelihood_rolling(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[float]:
        with self._task_scope():
            return super().loglikelihood_rolling(requests, disable_tqdm)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        started = time.perf_counter()
        groups: dict[str | None, list[int]] = {}
        for i, req in enumerate(requests):
            doc = req.doc if isinstance(req.doc, dict) else {}
            scored_by = doc.get("classifier", self.classifier_name)
            if scored_by != self.classifier_name:
                raise EmoBenchError(
                    f"the task scores with classifier {scored_by!r} (--metadata) but the model "
                    f"records {self.classifier_name!r} (model_args classifier=); name it once"
                )
            emotion = doc.get("target_emotion")
            if emotion is not None and emotion not in EMOTIONS:
                raise EmoBenchError(
                    f"doc {doc.get('key', i)!r} has target_emotion {emotion!r}; "
                    f"known emotions: {', '.join(EMOTIONS)}"
                )
            if emotion is not None and req.args[0] != user_message(doc["scenario"], doc["event"]):
                raise _prompt_changed(doc.get("key", i))
            groups.setdefault(emotion, []).append(i)
        if not self._scoped() and len(groups) > 1:
            merged = [i for emotion, idxs in groups.items() if emotion is not None for i in idxs]
            groups = {k: v for k, v in groups.items() if k is None}
            groups[ALL_EMOTIONS] = merged

        results: list[str | None] = [None] * len(requests)
        for emotion, idxs in groups.items():
            originals = [requests[i] for i in idxs]
            if emotion is None:
                # Not an emobench doc (another lm-eval task): generate it unsteered, as HFLM would.
                log.warning("%d request(s) without a target_emotion run unsteered", len(idxs))
                outs = super().generate_until(originals, disable_tqdm)
                self._unkeyed += len(idxs)
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
        self._seconds += time.perf_counter() - started
        mine = [len(self._done["generated"]) + self._unkeyed, len(self._done["from_journal"])]
        seconds = self._seconds
        accelerator = getattr(self, "accelerator", None)
        if self.world_size > 1 and accelerator is not None:
            # Every rank calls this; only rank 0 writes the record, with all ranks' counts.
            mine_t = torch.tensor([*mine, seconds], dtype=torch.float64, device=accelerator.device)
            ranks = accelerator.gather(mine_t).view(-1, 3)
            mine, seconds = ranks[:, :2].sum(0).tolist(), float(ranks[:, 2].max())
        self.replies = {"generated": int(mine[0]), "from_journal": int(mine[1])}
        self.generation_seconds = round(seconds, 2)
        return results  # type: ignore[return-value]

    def _scoped(self) -> bool:
        return type(self.controller).scope is not Controller.scope

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
        for j, req in enumerate(rewritten):
            if (key := req.doc.get("key")) is None:
                self._unkeyed += 1
            else:
                self._done["generated" if outs[j] is None else "from_journal"].add(key)
        if len(todo) < len(requests):
            log.info(
                "%s: %d of %d replies taken from the journal",
                emotion,
                len(requests) - len(todo),
                len(requests),
            )
        if self.journal is not None and (
            other := sum(
                self.journal.under_other_settings(rewritten[j].doc["key"], fps[j]) for j in todo
            )
        ):
            log.warning(
                "%s: %s in the journal made under other settings (model, controller arguments "
                "or code, generation settings) made again",
                emotion,
                "1 reply" if other == 1 else f"{other} replies",
            )
        if todo:
            pending = [rewritten[j] for j in todo]
            hooks_before = hook_count(self.model)
            scope = (
                self.controller.scope(self.model, emotion)
                if emotion != ALL_EMOTIONS
                else contextlib.nullcontext()
            )
            with (
                scope,
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
        texts: list[str] = outs  # type: ignore[assignment]
        ppl = self._perplexities(rewritten, texts, disable_tqdm)
        return [Reply(t, ppl=p, gate=self.gate) for t, p in zip(texts, ppl, strict=True)]

    def _perplexities(
        self, rewritten: list[Instance], outs: list[str], disable_tqdm: bool
    ) -> list[float | None]:
        """Perplexity of each reply under the unsteered model (outside the controller's scope);
        None for every reply when fluency is not measured."""
        if not self.measure_fluency:
            return [None] * len(outs)
        try:
            batch = int(self.batch_size)
        except (TypeError, ValueError):
            batch = 16
        # Scoring is a prefill, compute-bound at any batch on a CPU: small batches waste the
        # least on padding (4 was fastest of 4-32 on SEV replies) and bound the logits' memory.
        batch = min(batch, FLUENCY_BATCH_CAP)
        return fluency.perplexities(
            self.model,
            self.tokenizer,
            [r.args[0] for r in rewritten],
            outs,
            batch_size=batch,
            max_length=self.max_length,
            progress=not disable_tqdm,
            encode_context=self.tok_encode,
        )
