"""optimizer.serve: a real classifier behind real HTTP, called by the real openai SDK."""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from http_servers import running

from optimizer.serve import Answer, ClassifierServer, make_server


def _client(server: ClassifierServer) -> openai.OpenAI:
    return openai.OpenAI(api_key="unused", base_url=server.base_url, max_retries=0, timeout=10)


def _raw(
    server: ClassifierServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, Any]]:
    """One raw HTTP request (bodies the SDK would never send); returns (status, JSON body)."""
    host, port = server.server_address[:2]
    conn = conn or http.client.HTTPConnection(host, port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    assert response.getheader("Content-Type") == "application/json"
    return response.status, json.loads(response.read())


def _assert_error(status: int, body: dict[str, Any], expected: int) -> None:
    assert status == expected
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["type"], str)
    assert isinstance(body["error"]["code"], str)


def test_openai_sdk_gets_the_models_labels_and_usage(served, classifier, tickets):
    client = _client(served)
    assert [m.id for m in client.models.list()] == [classifier.model_id]

    for messages, gold in zip(tickets.conversations, tickets.gold, strict=True):
        response = client.chat.completions.create(
            model=classifier.model_id, messages=messages, temperature=0.0, max_tokens=8
        )
        expected = classifier.classify(messages)
        assert response.object == "chat.completion"
        assert response.model == classifier.model_id
        assert response.id.startswith("chatcmpl-")
        choice = response.choices[0]
        assert choice.message.role == "assistant"
        assert choice.finish_reason == "stop"
        assert choice.message.content == expected.label == gold
        assert response.usage.prompt_tokens == expected.prompt_tokens
        assert response.usage.completion_tokens == 1
        assert response.usage.total_tokens == expected.prompt_tokens + 1


def test_logprobs_carry_the_classifiers_probability(served, classifier, tickets):
    messages = tickets.conversations[0]
    response = _client(served).chat.completions.create(
        model="any-name-is-accepted", messages=messages, logprobs=True
    )
    token = response.choices[0].logprobs.content[0]
    expected = classifier.classify(messages)
    assert token.token == expected.label
    assert math.exp(token.logprob) == pytest.approx(expected.probability)


def test_health(served, classifier):
    status, body = _raw(served, "GET", "/health")
    assert status == 200
    assert body == {"status": "ok", "model": classifier.model_id}


@pytest.mark.parametrize(
    ("body", "expected_code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe garbage", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"model": "m"}', "invalid_messages"),
        (b'{"model": "m", "messages": []}', "invalid_messages"),
        (b'{"model": "m", "messages": "hello"}', "invalid_messages"),
        (b'{"model": "m", "messages": [{"role": "user"}]}', "invalid_messages"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true}',
         "stream_unsupported"),
    ],
)
def test_bad_requests_get_400_json_and_the_connection_keeps_working(
    served, tickets, body, expected_code
):
    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    status, error = _raw(served, "POST", "/v1/chat/completions", body, conn=conn)
    _assert_error(status, error, 400)
    assert error["error"]["code"] == expected_code
    # Same kept-alive connection: the bad body was consumed, the next request is clean.
    good = json.dumps({"model": "m", "messages": tickets.conversations[2]}).encode()
    status, ok = _raw(served, "POST", "/v1/chat/completions", good, conn=conn)
    assert status == 200
    assert ok["choices"][0]["message"]["content"] == tickets.gold[2]


def test_oversize_body_is_413_and_the_server_keeps_answering(classifier, tickets):
    with running(make_server(classifier, max_body_bytes=2_000)) as server:
        big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5_000}]}
        status, error = _raw(server, "POST", "/v1/chat/completions", json.dumps(big).encode())
        _assert_error(status, error, 413)
        assert "exceeds the limit of 2000" in error["error"]["message"]
        reply = _client(server).chat.completions.create(
            model="m", messages=tickets.conversations[0]
        )
        assert reply.choices[0].message.content == tickets.gold[0]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v1/nothing", 404),
        ("POST", "/v2/chat/completions", 404),
        ("GET", "/v1/chat/completions", 405),
        ("DELETE", "/v1/chat/completions", 405),
        ("POST", "/v1/models", 405),
        ("PUT", "/health", 405),
    ],
)
def test_unknown_paths_and_wrong_methods(served, method, path, expected):
    body = b"{}" if method in ("POST", "PUT") else None
    status, error = _raw(served, method, path, body)
    _assert_error(status, error, expected)
    assert _raw(served, "GET", "/health")[0] == 200


def test_missing_content_length_is_411(served):
    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/v1/chat/completions")
    conn.endheaders()
    response = conn.getresponse()
    error = json.loads(response.read())
    _assert_error(response.status, error, 411)


def test_a_client_that_stops_sending_gets_408_and_others_are_still_served(classifier, tickets):
    import socket

    with running(make_server(classifier, read_timeout_s=0.5)) as server:
        stalled = socket.create_connection(server.server_address[:2], timeout=10)
        stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\"")
        # Meanwhile another client is answered: the stalled one holds its own thread only.
        reply = _client(server).chat.completions.create(model="m", messages=tickets.conversations[0])
        assert reply.choices[0].message.content == tickets.gold[0]

        response = http.client.HTTPResponse(stalled)
        response.begin()
        error = json.loads(response.read())
        _assert_error(response.status, error, 408)
        assert "not received within 0.5 s" in error["error"]["message"]
        assert stalled.recv(1) == b""  # and the connection is closed
        stalled.close()


class _Flaky:
    """Wraps the real classifier; raises on tickets containing BOOM."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.model_id = inner.model_id
        self.labels = inner.labels

    def classify(self, messages: list[dict[str, Any]]) -> Answer:
        if "BOOM" in messages[-1]["content"]:
            raise RuntimeError("the model fell over")
        return self.inner.classify(messages)


@pytest.fixture
def flaky_server(classifier) -> Iterator[ClassifierServer]:
    with running(make_server(_Flaky(classifier))) as server:
        yield server


def test_classifier_exception_is_500_json_and_the_server_survives(flaky_server, tickets, caplog):
    client = _client(flaky_server)
    with pytest.raises(openai.InternalServerError) as excinfo:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "BOOM"}])
    assert excinfo.value.status_code == 500
    assert excinfo.value.body["code"] == "classifier_error"
    assert "the model fell over" in excinfo.value.body["message"]
    assert "classifier failed" in caplog.text
    reply = client.chat.completions.create(model="m", messages=tickets.conversations[4])
    assert reply.choices[0].message.content == tickets.gold[4]


class _Watched:
    """Wraps the real classifier; records how many threads are inside classify at once."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.model_id = inner.model_id
        self.labels = inner.labels
        self.inside = 0
        self.most_inside = 0
        self.count_lock = threading.Lock()

    def classify(self, messages: list[dict[str, Any]]) -> Answer:
        with self.count_lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.005)  # widen the window in which an unguarded second call would enter
        try:
            return self.inner.classify(messages)
        finally:
            with self.count_lock:
                self.inside -= 1


def test_16_concurrent_requests_are_all_answered_one_classify_at_a_time(classifier, tickets):
    watched = _Watched(classifier)
    with running(make_server(watched)) as server:
        client = _client(server)
        jobs = [(tickets.conversations[i % 8], tickets.gold[i % 8]) for i in range(16)]

        def ask(job: tuple[list[dict[str, Any]], str]) -> tuple[str | None, str]:
            reply = client.chat.completions.create(model="m", messages=job[0])
            return reply.choices[0].message.content, job[1]

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(ask, jobs))
    assert len(answers) == 16
    assert all(got == gold for got, gold in answers)
    assert watched.most_inside == 1
