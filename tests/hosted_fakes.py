"""Fixtures for the hosted-client, serve and fault tests: a real (small) model behind real HTTP.

A pytest plugin (tests/conftest.py loads it), so the integration and reliability tests share it.

The answering model is a TF-IDF + logistic-regression classifier trained here on hand-written
support tickets, served by ``optimizer.serve.make_server``. In front of it, ``FaultProxy`` is a
tiny stdlib HTTP server that misbehaves on cue (429, 500, sleeps, malformed bodies, odd
replies) and otherwise forwards to the real server, counting every call it sees and every
call it let through (the ones a provider would bill).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from http_servers import running

from tfidf_classifier import TfidfClassifier

from optimizer.serve import ClassifierServer, make_server

LABELS = ["account_access", "billing", "shipping", "technical"]

TRAIN_TICKETS = [
    ("I was charged twice for my subscription this month", "billing"),
    ("Please refund the duplicate payment on my credit card", "billing"),
    ("My invoice shows the wrong amount", "billing"),
    ("Why did my monthly fee go up without notice", "billing"),
    ("I want a refund for the order I cancelled", "billing"),
    ("The payment failed but my card was still charged", "billing"),
    ("Can I get a copy of my last invoice for taxes", "billing"),
    ("You billed me after I cancelled the plan", "billing"),
    ("How do I update the credit card used for payment", "billing"),
    ("There is an unknown charge on my bank statement from you", "billing"),
    ("My package has not arrived yet, where is it", "shipping"),
    ("The tracking number says delivered but there is no parcel", "shipping"),
    ("How long does delivery take to Canada", "shipping"),
    ("The courier left my package at the wrong address", "shipping"),
    ("Can I change the shipping address of my order", "shipping"),
    ("My order shipped a week ago and tracking has not updated", "shipping"),
    ("The box arrived damaged during delivery", "shipping"),
    ("Do you offer express shipping", "shipping"),
    ("My parcel is stuck in customs", "shipping"),
    ("When will my order be delivered", "shipping"),
    ("The app crashes every time I open it", "technical"),
    ("I get an error 500 when I click save", "technical"),
    ("The website is very slow and pages do not load", "technical"),
    ("Sync between my phone and laptop stopped working", "technical"),
    ("The export button does nothing in Firefox", "technical"),
    ("After the update the app freezes on startup", "technical"),
    ("Notifications are not working on Android", "technical"),
    ("The API returns a timeout error for every request", "technical"),
    ("The screen goes blank when I upload a file", "technical"),
    ("There is a bug in the search feature, it shows no results", "technical"),
    ("I forgot my password and cannot log in", "account_access"),
    ("The password reset email never arrives", "account_access"),
    ("My account is locked after too many login attempts", "account_access"),
    ("How do I enable two factor authentication", "account_access"),
    ("I cannot sign in with my Google account", "account_access"),
    ("Someone else logged into my account, please secure it", "account_access"),
    ("I lost my phone and cannot get the 2FA code to log in", "account_access"),
    ("Please change the email address I use to sign in", "account_access"),
    ("My username is not recognised at login", "account_access"),
    ("How can I delete my account and my login", "account_access"),
]

TEST_TICKETS = [
    ("I was charged twice, please refund me", "billing"),
    ("My invoice amount is wrong", "billing"),
    ("Where is my package? Tracking has not moved", "shipping"),
    ("The delivery went to the wrong address", "shipping"),
    ("The app crashes with an error when I save", "technical"),
    ("Pages do not load, the website is broken", "technical"),
    ("I cannot log in, the password reset email is missing", "account_access"),
    ("My account is locked and I cannot sign in", "account_access"),
]

SYSTEM_PROMPT = (
    "Classify the customer-support ticket into exactly one of these categories: "
    + ", ".join(LABELS)
    + ". Reply with the category only."
)


def conversation(ticket: str) -> list[dict[str, Any]]:
    """The chat messages sent for one ticket."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ticket}]


@dataclass(frozen=True)
class Tickets:
    """The held-out tickets, as the tests send them."""

    labels: list[str]  # the label set
    conversations: list[list[dict[str, Any]]]
    gold: list[str]


@pytest.fixture(scope="session")
def tickets() -> Tickets:
    return Tickets(
        labels=list(LABELS),
        conversations=[conversation(text) for text, _ in TEST_TICKETS],
        gold=[label for _, label in TEST_TICKETS],
    )


@pytest.fixture(scope="session")
def classifier() -> TfidfClassifier:
    return TfidfClassifier(TRAIN_TICKETS)


@pytest.fixture
def served(classifier: TfidfClassifier) -> Iterator[ClassifierServer]:
    """The real classifier behind ``make_server`` on 127.0.0.1, any free port."""
    with running(make_server(classifier)) as server:
        yield server


@dataclass
class FaultProxy:
    """Counts calls, misbehaves on cue, else forwards to the real server.

    ``faults`` is consumed one entry per call, in arrival order: ``"429"``, ``"500"``,
    ``"401-echo"`` (a 401 whose message echoes the Authorization header), ``"sleep:S"``
    (answers nothing for S seconds), ``"garbage"`` (200 with an HTML body), ``"badjson"``
    (200, JSON content type, body not JSON), ``"reply:TEXT"`` (a valid completion whose
    content is TEXT). ``None`` or an empty list means forward.
    """

    upstream: str
    faults: list[str] = field(default_factory=list)
    calls: int = 0  # every POST seen
    paid: int = 0  # completions delivered (what a provider bills)
    paid_prompt_tokens: int = 0
    paid_completion_tokens: int = 0
    auth_headers: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def next_fault(self, auth: str) -> str | None:
        with self.lock:
            self.calls += 1
            self.auth_headers.append(auth)
            return self.faults.pop(0) if self.faults else None

    def record_paid(self, usage: dict[str, int]) -> None:
        with self.lock:
            self.paid += 1
            self.paid_prompt_tokens += usage["prompt_tokens"]
            self.paid_completion_tokens += usage["completion_tokens"]


def proxy_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fault = proxy.next_fault(self.headers.get("Authorization", ""))
            try:
                self._answer(fault, body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client timed out and left

        def _answer(self, fault: str | None, body: bytes) -> None:
            if fault in ("429", "500"):
                error = {"error": {"message": "try again", "type": "server_error", "code": fault}}
                self._send(int(fault), json.dumps(error).encode())
            elif fault == "401-echo":
                echoed = self.headers.get("Authorization", "")
                error = {"error": {"message": f"bad key {echoed}", "type": "auth", "code": "401"}}
                self._send(401, json.dumps(error).encode())
            elif fault is not None and fault.startswith("sleep:"):
                time.sleep(float(fault.split(":", 1)[1]))
                self._send(500, b'{"error": {"message": "too late"}}')
            elif fault == "garbage":
                self._send(200, b"<html>upstream proxy error</html>", "text/html")
            elif fault == "badjson":
                self._send(200, b'{"id": "chatcmpl-1", "choices": [', "application/json")
            elif fault is not None and fault.startswith("reply:"):
                payload = self._forward(body)
                payload["choices"][0]["message"]["content"] = fault.split(":", 1)[1]
                self._deliver(payload)
            else:
                self._deliver(self._forward(body))

        def _forward(self, body: bytes) -> dict[str, Any]:
            request = urllib.request.Request(
                proxy.upstream + "/chat/completions",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        def _deliver(self, payload: dict[str, Any]) -> None:
            proxy.record_paid(payload["usage"])
            self._send(200, json.dumps(payload).encode())

        def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def proxy(served: ClassifierServer) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` in front of the served classifier; ``proxy.base_url`` for clients."""
    state = FaultProxy(upstream=served.base_url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(state))
    server.daemon_threads = True
    with running(server):
        host, port = server.server_address[:2]
        state.base_url = f"http://{host}:{port}/v1"
        yield state

