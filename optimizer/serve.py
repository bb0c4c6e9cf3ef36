"""An OpenAI-compatible HTTP server around any classifier (``roitune serve``).

Standard library only (``http.server``), so serving needs nothing beyond the model itself.
Any OpenAI client, or :mod:`evals.hosted` itself, can call it:

- ``GET /v1/models``: the one model, in OpenAI's list format;
- ``POST /v1/chat/completions``: the label as the assistant's reply, with usage;
- ``GET /health``: liveness.

Every error is an OpenAI-style JSON body ``{"error": {"message", "type", "code"}}``; a bad
request or a failing classifier never takes the server down. Classifier calls are serialised
by a lock, since a torch model on CPU is not safe to call from many threads at once; requests
are still accepted concurrently and all get answered.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger(__name__)

_ROUTES = {"/v1/models": "GET", "/health": "GET", "/v1/chat/completions": "POST"}


@dataclass(frozen=True)
class Answer:
    """One classification: the label, its probability, and the tokens it took. ``route`` says who
    answered when a cascade may escalate (sent as the reply's ``roitune`` field)."""

    label: str
    probability: float
    prompt_tokens: int
    completion_tokens: int
    route: dict[str, Any] | None = None


class Classifier(Protocol):
    """Anything that maps chat messages to one of its labels."""

    model_id: str
    labels: list[str]

    def classify(self, messages: list[dict[str, Any]]) -> Answer:
        """Classify one conversation (system + user messages). The server calls it under its lock
        unless the classifier has ``locks_itself = True`` (it guards its model itself)."""
        ...


class _ApiError(Exception):
    """An error answer: HTTP status plus OpenAI's error type and code."""

    def __init__(
        self,
        status: HTTPStatus,
        message: str,
        code: str,
        error_type: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code


class ClassifierServer(ThreadingHTTPServer):
    """A threading HTTP server that owns one classifier and the lock that guards it."""

    daemon_threads = True  # a hung client must not keep the process alive at shutdown

    def __init__(self, address: tuple[str, int], classifier: Classifier, *, max_body_bytes: int,
                 read_timeout_s: float):
        self.classifier = classifier
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s
        self.classify_lock = threading.Lock()
        super().__init__(address, _Handler)

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` clients should use, e.g. ``http://127.0.0.1:8000/v1``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: ClassifierServer
    protocol_version = "HTTP/1.1"  # keep-alive: OpenAI clients reuse connections
    # Headers and body leave in two writes; with Nagle on, a kept-alive client's delayed ACK
    # would stall each reply ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        # A client that stops sending (or an idle kept-alive connection) would hold its thread
        # forever; the socket timeout ends it: an idle connection is closed, a stalled body is 408.
        self.timeout = self.server.read_timeout_s
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        # Access lines go to logging at DEBUG instead of stderr.
        log.debug("%s - %s", self.address_string(), format % args)

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        self._body_read = False
        try:
            allowed = _ROUTES.get(path)
            if allowed is None:
                raise _ApiError(HTTPStatus.NOT_FOUND, f"no route {path}", "not_found")
            if method != allowed:
                raise _ApiError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"{method} is not allowed on {path}; use {allowed}",
                    "method_not_allowed",
                )
            if path == "/health":
                model_id = self.server.classifier.model_id
                self._send_json(HTTPStatus.OK, {"status": "ok", "model": model_id})
            elif path == "/v1/models":
                self._send_json(HTTPStatus.OK, self._models())
            else:
                self._send_json(HTTPStatus.OK, self._chat_completion())
        except _ApiError as exc:
            if not self._body_read and self._has_body():
                # An unread body would be parsed as the next request on this connection.
                self.close_connection = True
            self._send_error_json(exc)
        except Exception:  # a handler bug must cost one request, not the server
            log.exception("unexpected error answering %s %s", method, path)
            self.close_connection = True  # the request's state is unknown: start afresh
            self._send_error_json(
                _ApiError(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    "internal server error",
                    "internal_error",
                    "server_error",
                )
            )

    def _models(self) -> dict[str, Any]:
        model_id = self.server.classifier.model_id
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "roitune"}],
        }

    def _chat_completion(self) -> dict[str, Any]:
        request = self._read_json()
        messages = request.get("messages")
        if not _valid_messages(messages):
            raise _ApiError(
                HTTPStatus.BAD_REQUEST,
                "'messages' must be a list of {role, content} objects with a user message",
                "invalid_messages",
            )
        if request.get("stream"):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "streaming not supported", "stream_unsupported")
        # temperature, max_tokens, n, ... are accepted and ignored: a classifier's answer is
        # one label, decided by the model, not by sampling.
        classifier = self.server.classifier
        lock = nullcontext() if getattr(classifier, "locks_itself", False) else self.server.classify_lock
        try:
            with lock:
                answer = classifier.classify(messages)
        except Exception as exc:
            log.exception("classifier failed")
            raise _ApiError(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                f"classifier failed: {type(exc).__name__}: {exc}",
                "classifier_error",
                "server_error",
            ) from exc
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": answer.label},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if request.get("logprobs"):
            # The whole label as one "token" whose logprob is the classifier's confidence.
            choice["logprobs"] = {
                "content": [
                    {
                        "token": answer.label,
                        "logprob": math.log(max(answer.probability, 1e-300)),
                        "bytes": list(answer.label.encode("utf-8")),
                        "top_logprobs": [],
                    }
                ]
            }
        reply = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": classifier.model_id,
            "choices": [choice],
            "usage": {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            },
        }
        if answer.route is not None:  # who answered: OpenAI clients ignore a field they do not know
            reply["roitune"] = answer.route
        return reply

    def _read_json(self) -> dict[str, Any]:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            # Without a length the body cannot be framed on a kept-alive connection.
            self.close_connection = True
            raise _ApiError(
                HTTPStatus.LENGTH_REQUIRED, "Content-Length required", "length_required"
            )
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            raise _ApiError(
                HTTPStatus.BAD_REQUEST, "invalid Content-Length", "invalid_length"
            ) from None
        if length > self.server.max_body_bytes:
            # The body stays unread, so this connection cannot carry another request.
            self.close_connection = True
            raise _ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body of {length} bytes exceeds the limit of "
                f"{self.server.max_body_bytes}",
                "body_too_large",
            )
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise _ApiError(
                HTTPStatus.REQUEST_TIMEOUT,
                f"request body not received within {self.server.read_timeout_s:g} s",
                "request_timeout",
            ) from None
        self._body_read = True
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _ApiError(
                HTTPStatus.BAD_REQUEST, f"malformed JSON body: {exc}", "invalid_json"
            ) from None
        except RecursionError:
            raise _ApiError(
                HTTPStatus.BAD_REQUEST, "malformed JSON body: nested too deeply", "invalid_json"
            ) from None
        if not isinstance(request, dict):
            raise _ApiError(
                HTTPStatus.BAD_REQUEST, "the body must be a JSON object", "invalid_json"
            )
        return request

    def _has_body(self) -> bool:
        length = self.headers.get("Content-Length", "0").strip()
        return length != "0" or "Transfer-Encoding" in self.headers

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, an unknown method, oversized
        headers, an unsupported HTTP version) in the same JSON shape as every other error."""
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        self.close_connection = True  # the request could not be framed: start afresh
        self.log_error("code %d, message %s", code, message)
        error_type = "invalid_request_error" if status < 500 else "server_error"
        code_name = status.phrase.lower().replace(" ", "_").replace("-", "_")
        self._send_error_json(_ApiError(status, message or status.phrase, code_name, error_type))

    def _send_error_json(self, error: _ApiError) -> None:
        body = {"error": {"message": error.message, "type": error.error_type, "code": error.code}}
        self._send_json(error.status, body)

    def _send_json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has headers only
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout); nothing left to answer.
            self.close_connection = True


def _valid_messages(messages: Any) -> bool:
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str | list)
            for m in messages
        )
        # The ticket is the last user message: without one there is nothing to classify.
        and any(m["role"] == "user" for m in messages)
    )


def make_server(
    classifier: Classifier,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_body_bytes: int = 1_000_000,
    read_timeout_s: float = 30.0,
) -> ClassifierServer:
    """A bound, not yet running server (port 0 = any free port; see ``server.base_url``).

    Run it with ``server.serve_forever()`` (e.g. in a thread) and stop it with
    ``server.shutdown()`` then ``server.server_close()``.
    """
    return ClassifierServer((host, port), classifier, max_body_bytes=max_body_bytes,
                            read_timeout_s=read_timeout_s)


def serve_forever(
    classifier: Classifier,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_body_bytes: int = 1_000_000,
    read_timeout_s: float = 30.0,
    on_ready: Callable[[ClassifierServer], None] | None = None,
) -> None:
    """Serve ``classifier`` until interrupted (Ctrl-C), then close the socket.

    ``on_ready(server)`` is called once the socket is bound, e.g. to print the URL.
    """
    server = make_server(classifier, host, port, max_body_bytes=max_body_bytes, read_timeout_s=read_timeout_s)
    log.info("serving %s on %s", classifier.model_id, server.base_url)
    if on_ready is not None:
        on_ready(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server_close()
