"""The LLM `judge` classifier: its prompt is the reference's binary-match question, its parsing is
checked on recorded chat.completions answers, and its HTTP path runs for real against a local
http.server that replays them from tests/data/judge/ (nothing of emobench is mocked)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emobench import EMOTIONS
from emobench.classify import get_classifier
from emobench.classify.judge import (
    SYSTEM_PROMPT,
    JudgeClassifier,
    JudgeError,
    build_messages,
    parse_completion,
    request_body,
)
from emobench.cli import main
from emobench.errors import PluginLoadError
from emobench.registry import CLASSIFIERS, create

JUDGE_DATA = Path(__file__).parent / "data" / "judge"


# -- judge: prompt and parsing -----------------------------------------------------------------


def read_jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (JUDGE_DATA / name).read_text().splitlines()]


EXCHANGES = read_jsonl("exchanges.jsonl")
ERRORS = {e["name"]: e for e in read_jsonl("errors.jsonl")}
ANGRY, BLAND, HAPPY = dict.fromkeys(x["text"] for x in EXCHANGES)
# What each recorded answer says (read off the fixtures by a person, not by the parser).
EXPECTED_MATCH = {(ANGRY, "anger"): 1, (ANGRY, "disgust"): 1, (HAPPY, "happiness"): 1}


def test_prompt_is_the_reference_binary_match() -> None:
    text = "Fine. {Whatever} you {0} say."  # braces must reach the judge untouched
    system, user = build_messages("fear", text)
    assert system["role"] == "system" and user["role"] == "user"
    assert system["content"] == SYSTEM_PROMPT
    assert "['anger', 'sadness', 'happiness', 'fear', 'surprise', 'disgust']" in SYSTEM_PROMPT
    assert "STYLE matches the target emotion" in SYSTEM_PROMPT
    assert "not content valence" in SYSTEM_PROMPT
    assert user["content"].startswith(f"Target emotion: fear\nText:\n{text}\nDecide if")
    assert user["content"].endswith('{\n"match": <0 or 1>,\n"reason": <short string>\n}')
    body = request_body("gpt-4o-mini", "fear", text)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": build_messages("fear", text),
        "temperature": 0.0,
    }
    assert "temperature" not in request_body("m", "fear", text, temperature=None)


def test_recorded_answers_parse() -> None:
    assert len(EXCHANGES) == 18
    for ex in EXCHANGES:
        verdict = parse_completion(ex["response"])
        assert verdict.match == EXPECTED_MATCH.get((ex["text"], ex["emotion"]), 0), ex
        assert verdict.reason
    fenced = next(x for x in EXCHANGES if x["text"] == HAPPY and x["emotion"] == "happiness")
    assert fenced["response"]["choices"][0]["message"]["content"].startswith("```json")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (ERRORS["prose_answer"]["response"], 'no {"match": 0|1} JSON'),
        (ERRORS["refusal"]["response"], "can't help"),
        ({"choices": []}, "not a chat.completions response"),
        ({"error": {"message": "boom"}}, "not a chat.completions response"),
    ],
)
def test_unparseable_answers_fail(payload: Any, message: str) -> None:
    with pytest.raises(JudgeError, match=re.escape(message)):
        parse_completion(payload)


def test_match_must_be_binary() -> None:
    reply = json.loads(json.dumps(EXCHANGES[0]["response"]))
    reply["choices"][0]["message"]["content"] = '{"match": 2, "reason": "very"}'
    with pytest.raises(JudgeError):
        parse_completion(reply)
    reply["choices"][0]["message"]["content"] = '{"match": true, "reason": "yes"}'
    assert parse_completion(reply).match == 1


# -- judge: over HTTP --------------------------------------------------------------------------

_USER = re.compile(r"^Target emotion: (\w+)\nText:\n(.*)\nDecide if", re.DOTALL)


class Replay:
    """Recorded responses by (text, emotion); a list is served in order, its last one repeated."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for ex in EXCHANGES:
            self.answers[(ex["text"], ex["emotion"])] = [ex]
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0
        self.lock = threading.Lock()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        m = _USER.match(body["messages"][1]["content"])
        key = (m.group(2), m.group(1)) if m else ("", "")
        with self.lock:
            queue = self.answers.get(key)
            if not queue:
                return {"status": 400, "headers": {}, "response": {"error": {"message": "?"}}}
            return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def server() -> Iterator[tuple[str, Replay]]:
    replay = Replay()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with replay.lock:
                replay.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
            time.sleep(replay.delay)
            rec = replay.answer(body)
            data = json.dumps(rec["response"]).encode()
            self.send_response(rec["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in rec.get("headers", {}).items():
                self.send_header(name, value)
            self.end_headers()
            # The client may have given up first (the timeout tests): its side is what is checked.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # keep pytest's output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", replay
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "sk-test-do-not-log-me"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


def test_judge_over_http(server: tuple[str, Replay], api_key: str) -> None:
    url, replay = server
    judge = create(CLASSIFIERS, "judge", base_url=url, retries=0, backoff=0.0, workers=3)
    judge.require_labels(EMOTIONS)
    assert judge.labels == (*EMOTIONS, "neutral")
    scored = judge.classify([ANGRY, BLAND, HAPPY, "  "])
    assert [s["label"] for s in scored] == ["anger", "neutral", "happiness", "neutral"]
    # Anger and disgust both matched: they share the probability, and the tie goes to anger.
    assert scored[0]["probs"]["anger"] == scored[0]["probs"]["disgust"] == 0.5
    assert scored[2]["probs"]["happiness"] == 1.0
    for s in scored:
        assert sum(s["probs"].values()) == pytest.approx(1.0)
    # Six questions per non-blank text, none for the blank one, each the reference prompt.
    assert len(replay.requests) == 18
    asked = {(r["body"]["messages"][1]["content"], r["body"]["model"]) for r in replay.requests}
    assert asked == {
        (build_messages(e, t)[1]["content"], "gpt-4o-mini")
        for t in (ANGRY, BLAND, HAPPY)
        for e in EMOTIONS
    }
    assert {r["path"] for r in replay.requests} == {"/v1/chat/completions"}
    assert {r["auth"] for r in replay.requests} == {f"Bearer {api_key}"}
    assert all(r["body"]["temperature"] == 0.0 for r in replay.requests)
    # The spec records what ran, and never the key.
    spec = judge.spec()
    assert spec["args"]["base_url"] == url and spec["args"]["model"] == "gpt-4o-mini"
    assert spec["args"]["retries"] == 0 and spec["judge"]["api_key_set"] is True
    assert api_key not in json.dumps(spec)
    assert api_key not in json.dumps(judge.args)


def test_judge_retries_a_rate_limit(server: tuple[str, Replay], api_key: str) -> None:
    url, replay = server
    replay.answers[(ANGRY, "anger")].insert(0, ERRORS["rate_limit"])
    judge = JudgeClassifier(base_url=url, retries=2, backoff=0.0)
    assert judge.ask("anger", ANGRY).match == 1
    assert len(replay.requests) == 2


def test_judge_gives_up_on_a_lasting_rate_limit(server: tuple[str, Replay], api_key: str) -> None:
    url, replay = server
    replay.answers[(ANGRY, "anger")] = [ERRORS["rate_limit"]]
    judge = JudgeClassifier(base_url=url, retries=1, backoff=0.0)
    with pytest.raises(JudgeError, match=r"HTTP 429: Rate limit reached.*2 attempt\(s\)"):
        judge.ask("anger", ANGRY)
    assert len(replay.requests) == 2


@pytest.mark.parametrize(
    ("name", "fix"),
    [("invalid_api_key", "check OPENAI_API_KEY"), ("model_not_found", "check base_url")],
)
def test_judge_client_errors_are_not_retried(
    server: tuple[str, Replay], api_key: str, name: str, fix: str
) -> None:
    url, replay = server
    replay.answers[(BLAND, "fear")] = [ERRORS[name]]
    judge = JudgeClassifier(base_url=url, retries=3, backoff=0.0)
    with pytest.raises(JudgeError, match=rf"HTTP {ERRORS[name]['status']}: .*{fix}"):
        judge.predict_proba([BLAND])
    # The failing question was asked once; the run stopped instead of scoring it "no match".
    fear_asks = [r for r in replay.requests if "Target emotion: fear" in str(r["body"])]
    assert len(fear_asks) == 1


def test_judge_unparseable_answer_is_retried_then_fails(
    server: tuple[str, Replay], api_key: str
) -> None:
    url, replay = server
    replay.answers[(HAPPY, "surprise")] = [ERRORS["prose_answer"]]
    judge = JudgeClassifier(base_url=url, retries=1, backoff=0.0)
    with pytest.raises(
        JudgeError, match=r"no \{\"match\": 0\|1\} JSON.*2 attempt\(s\), target 'surprise'"
    ):
        judge.ask("surprise", HAPPY)


def test_judge_timeout(server: tuple[str, Replay], api_key: str) -> None:
    url, replay = server
    replay.delay = 0.5
    judge = JudgeClassifier(base_url=url, retries=0, timeout=0.1)
    with pytest.raises(JudgeError, match=r"no answer within 0\.1 s; raise timeout="):
        judge.ask("anger", ANGRY)


def test_judge_unreachable_endpoint(api_key: str) -> None:
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = JudgeClassifier(base_url=f"http://127.0.0.1:{port}/v1", retries=1, backoff=0.0)
    with pytest.raises(
        JudgeError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1.*OPENAI_BASE_URL"
    ):
        judge.classify(["I am livid."])


def test_judge_needs_a_key_for_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(PluginLoadError, match="set OPENAI_API_KEY"):
        create(CLASSIFIERS, "judge")
    with pytest.raises(PluginLoadError, match="not an http"):
        JudgeClassifier(base_url="api.openai.com/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    judge = JudgeClassifier(base_url="https://user:secret@example.test/v1")
    assert "secret" not in json.dumps(judge.spec())


def test_cli_classify_with_the_judge_from_the_environment(
    server: tuple[str, Replay],
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, replay = server
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("EMOBENCH_JUDGE_MODEL", "judge-under-test")
    path = tmp_path / "texts.jsonl"
    path.write_text(json.dumps({"reply": HAPPY}) + "\n")
    get_classifier.cache_clear()  # the judge must be built with this test's environment
    try:
        assert main(["classify", "--classifier", "judge", "--field", "reply", str(path)]) == 0
    finally:
        get_classifier.cache_clear()  # and not outlive it
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["label"] for o in out] == ["happiness"]
    assert {r["body"]["model"] for r in replay.requests} == {"judge-under-test"}
