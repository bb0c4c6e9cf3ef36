"""Hosted-API faults that tests/integration/test_hosted.py does not cover: the TCP connection
reset mid-batch, before the provider saw the request (not billed) or after it answered (billed,
and the answer lost on the way back). The cache keeps what was paid for; the dollar cap holds
against what the provider billed, not only against the replies that arrived."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

import evals.hosted as hosted
from evals.hosted import HostedError, HostedSpec, run_hosted
from hosted_fakes import FaultProxy, proxy_handler
from http_servers import running

KEY_ENV = "ROITUNE_RELIABILITY_FAULT_KEY"
IN_PRICE, OUT_PRICE = 3.0, 15.0


@pytest.fixture(autouse=True)
def _fast_backoff_and_key(monkeypatch):
    monkeypatch.setattr(hosted, "_BACKOFF_BASE_S", 0.005)
    monkeypatch.setenv(KEY_ENV, "sk-test-fault-key")


@pytest.fixture
def resetting_proxy(served) -> Iterator:
    """The integration FaultProxy, plus two faults: ``reset`` (RST before forwarding: the
    provider never sees the call) and ``billed-reset`` (forwarded and billed, then RST instead
    of the reply)."""
    state = FaultProxy(upstream=served.base_url)
    base = proxy_handler(state)

    class Handler(base):
        def _answer(self, fault, body):
            if fault == "reset":
                self._reset()
            elif fault == "billed-reset":
                payload = self._forward(body)
                state.record_paid(payload["usage"])
                self._reset()
            else:
                super()._answer(fault, body)

        def _reset(self):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with running(server):
        host, port = server.server_address[:2]
        state.base_url = f"http://{host}:{port}/v1"
        yield state


def _run(proxy, tickets, cache: Path, **overrides):
    fields = dict(base_url=proxy.base_url, model="tfidf-logreg-tickets", api_key_env=KEY_ENV,
                  input_price_per_mtok=IN_PRICE, output_price_per_mtok=OUT_PRICE, concurrency=1, timeout_s=5.0)
    fields.update(overrides)
    return run_hosted(HostedSpec(**fields), tickets.conversations, tickets.gold, cache_dir=cache,
                      label_set=tickets.labels)


def _billed(proxy) -> float:
    return (proxy.paid_prompt_tokens * IN_PRICE + proxy.paid_completion_tokens * OUT_PRICE) / 1e6


def _assert_cache_whole(cache: Path) -> None:
    """Every cache entry is a whole JSON file; no temporary file is left behind."""
    assert not list(cache.glob(".*.tmp"))
    for entry in cache.glob("*.json"):
        data = json.loads(entry.read_text())
        assert {"reply", "prompt_tokens", "completion_tokens"} <= set(data)


def test_a_connection_reset_mid_batch_is_retried(resetting_proxy, tickets, tmp_path):
    proxy = resetting_proxy
    proxy.faults = [None, None, "reset", None]
    result = _run(proxy, tickets, tmp_path / "cache")
    n = len(tickets.gold)
    assert result.retries == 1 and result.predictions == tickets.gold
    assert proxy.calls == n + 1 and proxy.paid == n
    assert result.dollars_spent == pytest.approx(_billed(proxy), rel=1e-12)
    _assert_cache_whole(tmp_path / "cache")


def test_resets_until_it_gives_up_keep_what_was_paid_for(resetting_proxy, tickets, tmp_path):
    proxy = resetting_proxy
    proxy.faults = [None, None, None, "reset", "reset", "reset"]
    with pytest.raises(HostedError, match=r"connection failed after 2 retries for item 3"):
        _run(proxy, tickets, tmp_path / "cache", max_retries=2)
    assert proxy.paid == 3
    _assert_cache_whole(tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3
    paid_before = _billed(proxy)

    rerun = _run(proxy, tickets, tmp_path / "cache", max_retries=2)
    assert proxy.paid == len(tickets.gold)  # items 0-2 were not bought again
    assert rerun.predictions == tickets.gold
    assert rerun.dollars_cached == pytest.approx(paid_before, rel=1e-12)


def test_the_cap_holds_when_billed_replies_are_lost(resetting_proxy, tickets, tmp_path):
    """The provider bills every call it answered, whether or not the reply arrived."""
    proxy = resetting_proxy
    # Every other call is billed and lost. Each call really costs ~$0.00009 and is reserved at
    # its worst case (~$0.00056), so $0.0015 leaves room for a few calls, not for all of them.
    cap = 0.0015
    proxy.faults = ["billed-reset", None] * 20
    result = _run(proxy, tickets, tmp_path / "cache", max_dollars=cap, max_retries=4)
    assert result.stopped_reason is not None and result.stopped_reason.startswith("max_dollars")
    assert result.answered >= 1
    assert _billed(proxy) <= cap, f"billed ${_billed(proxy):.6f} against a cap of ${cap}"
    assert result.dollars_spent <= cap
    _assert_cache_whole(tmp_path / "cache")


def test_an_unreachable_endpoint_fails_without_spending(tickets, tmp_path):
    """Refused connections are not billable: the run fails with a clear error, the budget intact."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there

    class Nowhere:
        base_url = f"http://127.0.0.1:{port}/v1"

    with pytest.raises(HostedError, match=r"connection failed after 1 retries for item 0"):
        _run(Nowhere, tickets, tmp_path / "cache", max_retries=1, max_dollars=0.001)
    assert not list((tmp_path / "cache").glob("*.json"))
