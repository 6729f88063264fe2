"""`judge`: an LLM judge over any OpenAI-compatible chat-completions endpoint.

The prompt is the reference study's binary match (docs/METHOD.md, "How the reference scored":
gpt-4o-mini asked whether a text's style matches a target emotion; the wording is that of the
study's labelling script, github.com/Aurora-cx/EmotionCircuits-LLM): a system message naming the
six emotions and asking for tone over content valence, and a user message with the target emotion
and the text, answered with a compact JSON `{"match": 0|1, "reason": ...}`.

Fitting one yes/no question per (text, target) into `Classifier` (which is given texts only):

- each text is asked once per emotion (six requests); the six matches, divided by their sum, are
  the probabilities, and a text matching none is `neutral` (labels: the six emotions + neutral);
- so the reference's own accuracy (the judge said "match" for the target) is `probs[target] > 0`,
  while emobench's accuracy takes the argmax: where the judge accepts several emotions they tie
  and the first in `labels` order wins, so a reply matching anger and disgust counts for anger
  only. That reads the same answers more strictly than the reference, leaning to earlier labels;
- a blank text is `neutral` without a request (there is no style to rate).

Other departures from the reference script, each so that a score cannot be silently wrong:

- temperature 0 by default (the script used the API default, 1.0); `temperature=None` omits it;
- an unparseable answer is retried and then fails with EmoBenchError, where the script scored it
  as "no match"; so do HTTP errors and an unreachable endpoint, after `retries` attempts for the
  transient ones (429, 5xx, timeouts, refused connections);
- the reply may be bare JSON, JSON in a ``` fence (handled by the script too) or JSON inside prose.

Configuration: `base_url` (default $OPENAI_BASE_URL, else https://api.openai.com/v1), `model`
(default $EMOBENCH_JUDGE_MODEL, else gpt-4o-mini), the key from $OPENAI_API_KEY only: it is never
an argument, so it never reaches `spec()` or a run's log. Standard library only (urllib).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from emobench import EMOTIONS
from emobench.classify import Classifier
from emobench.errors import EmoBenchError, PluginLoadError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"

# The reference study's judge prompt (its list of emotions is printed as a Python list there too).
SYSTEM_PROMPT = (
    "You are a careful rater.\n"
    "Given a target emotion and a text,\n"
    "decide if the text's STYLE matches the target emotion among:\n"
    f"{list(EMOTIONS)}\n"
    "Focus on tone/attitude, not content valence."
)
USER_TEMPLATE = (
    "Target emotion: {emotion}\n"
    "Text:\n"
    "{text}\n"
    "Decide if the text's STYLE matches the target emotion.\n"
    "Return a compact JSON with keys exactly:\n"
    "{{\n"
    '"match": <0 or 1>,\n'
    '"reason": <short string>\n'
    "}}"
)

# Worth another attempt: rate limits, server trouble; anything else is the caller's to fix.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class JudgeError(EmoBenchError):
    """The judge endpoint failed or answered something that is not a verdict."""


class _Retryable(JudgeError):
    """A failure that another attempt may not repeat."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # an HTTP Retry-After header, when the server sent one


@dataclass(frozen=True)
class Verdict:
    match: int  # 1: the text's style matches the emotion
    reason: str


def build_messages(emotion: str, text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_TEMPLATE.format(emotion=emotion, text=text)},
    ]


def request_body(
    model: str, emotion: str, text: str, temperature: float | None = 0.0
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": build_messages(emotion, text)}
    if temperature is not None:
        body["temperature"] = temperature
    return body


def _json_candidates(content: str) -> list[str]:
    text = content.strip()
    found = [m.group(1).strip() for m in _FENCE.finditer(text)]
    found.append(text)
    if m := _OBJECT.search(text):  # JSON with a sentence around it
        found.append(m.group(0))
    return found


def _as_match(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return int(value.strip().lower() in ("1", "true"))
    return None


def parse_content(content: str) -> Verdict:
    """The verdict in an assistant message's text; JudgeError if there is none."""
    for candidate in _json_candidates(content):
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "match" in obj:
            match = _as_match(obj["match"])
            if match is not None:
                return Verdict(match, str(obj.get("reason", "")))
    snippet = content.strip().replace("\n", " ")[:160]
    raise _Retryable(f'judge answer has no {{"match": 0|1}} JSON: {snippet!r}')


def parse_completion(payload: Any) -> Verdict:
    """The verdict in a chat.completions response body (already decoded from JSON)."""
    try:
        message = payload["choices"][0]["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise _Retryable(
            f"not a chat.completions response (no choices[0].message): {str(payload)[:160]!r}"
        ) from exc
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        refusal = message.get("refusal") if isinstance(message, dict) else None
        raise _Retryable(f"judge gave no answer (refusal: {refusal!r})")
    return parse_content(content)


def _redact(url: str) -> str:
    """The URL without user:password@, so that a spec or an error cannot leak credentials."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _error_message(raw: bytes) -> str:
    try:
        err = json.loads(raw)["error"]
        return str(err.get("message", err)) if isinstance(err, dict) else str(err)
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", "replace").strip()[:200]


class JudgeClassifier(Classifier):
    name = "judge"
    labels = (*EMOTIONS, "neutral")

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        workers: int = 4,
        temperature: float | None = 0.0,
    ) -> None:
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise PluginLoadError(
                f"judge: base_url {_redact(url)!r} is not an http(s) URL; pass base_url=... or "
                "set OPENAI_BASE_URL to an OpenAI-compatible endpoint such as "
                f"{DEFAULT_BASE_URL} or http://127.0.0.1:8000/v1"
            )
        self.base_url = url
        self.model = model or os.environ.get("EMOBENCH_JUDGE_MODEL") or DEFAULT_MODEL
        # Read here, kept out of `args`: registry.create records only constructor arguments.
        self._api_key = os.environ.get("OPENAI_API_KEY") or None
        host = urllib.parse.urlsplit(url).hostname or ""
        if self._api_key is None and (host == "openai.com" or host.endswith(".openai.com")):
            raise PluginLoadError(
                f"judge: no API key for {_redact(url)}; set OPENAI_API_KEY, or point "
                "OPENAI_BASE_URL (or base_url=...) at a local OpenAI-compatible server"
            )
        if retries < 0 or workers < 1 or timeout <= 0:
            raise ValueError("judge needs retries >= 0, workers >= 1 and timeout > 0")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.workers = workers
        self.temperature = temperature

    # -- one request -------------------------------------------------------------------------

    def _post(self, body: dict[str, Any]) -> Any:
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(
            url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        where = f"{_redact(url)} (model {self.model})"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _error_message(exc.read())
            if exc.code in RETRY_STATUS:
                raise _Retryable(
                    f"{where}: HTTP {exc.code}: {detail}", exc.headers.get("Retry-After")
                ) from exc
            fix = {
                401: "check OPENAI_API_KEY",
                403: "check OPENAI_API_KEY and the model's access",
                404: "check base_url (it ends in /v1 for most servers) and the model name",
                400: "check the model name; a model that rejects temperature needs "
                "temperature=None",
            }.get(exc.code, "check the endpoint and its logs")
            raise JudgeError(f"{where}: HTTP {exc.code}: {detail}; {fix}") from exc
        except TimeoutError as exc:  # connected, but no answer in time
            raise _Retryable(
                f"{where}: no answer within {self.timeout:g} s; raise timeout=... or check the "
                "server's load"
            ) from exc
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise _Retryable(
                    f"cannot reach {where} within {self.timeout:g} s; check the URL and that "
                    "the server runs, or set OPENAI_BASE_URL (or base_url=...)"
                ) from exc
            raise _Retryable(
                f"cannot reach {where}: {reason}; check that the server runs, or set "
                "OPENAI_BASE_URL (or base_url=...)"
            ) from exc
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise _Retryable(f"{where}: response is not JSON: {raw[:160]!r}") from exc

    def ask(self, emotion: str, text: str) -> Verdict:
        """The judge's verdict on one (emotion, text), retrying transient failures."""
        body = request_body(self.model, emotion, text, self.temperature)
        attempt = 0
        while True:
            try:
                return parse_completion(self._post(body))
            except _Retryable as exc:
                if attempt >= self.retries:
                    raise JudgeError(
                        f"{exc} (after {attempt + 1} attempt(s), target {emotion!r})"
                    ) from exc
                wait = self.backoff * 2**attempt
                if exc.retry_after is not None:
                    # The server knows best when a rate limit lifts; capped so a run cannot hang.
                    with contextlib.suppress(ValueError):
                        wait = max(wait, min(float(exc.retry_after), 60.0))
                time.sleep(wait)
                attempt += 1

    # -- the Classifier interface -------------------------------------------------------------

    def verdicts(self, texts: Sequence[str]) -> list[dict[str, Verdict] | None]:
        """Per text, the verdict for each emotion; None for a blank text (not sent)."""
        jobs = [(i, e) for i, t in enumerate(texts) if t.strip() for e in EMOTIONS]
        out: list[dict[str, Verdict] | None] = [{} if t.strip() else None for t in texts]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(self.ask, emotion, texts[i]) for i, emotion in jobs]
            try:
                for (i, emotion), future in zip(jobs, futures, strict=True):
                    row = out[i]
                    if row is not None:
                        row[emotion] = future.result()
            except BaseException:
                # The first failure stops the run (a score must not count it as "no match");
                # queued requests are dropped rather than all failing the same way.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        neutral = self.labels.index("neutral")
        for i, row in enumerate(self.verdicts(texts)):
            matches = np.array([row[e].match for e in EMOTIONS] if row else [0] * len(EMOTIONS))
            if matches.sum() > 0:
                probs[i, : len(EMOTIONS)] = matches / matches.sum()
            else:
                probs[i, neutral] = 1.0
        return probs

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        # The values actually used (defaults come from the environment); never the key.
        spec["args"].update(base_url=_redact(self.base_url), model=self.model)
        spec["judge"] = {
            "protocol": "openai chat.completions",
            "prompt": "binary match per target emotion (reference study)",
            "api_key_set": self._api_key is not None,
        }
        return spec
