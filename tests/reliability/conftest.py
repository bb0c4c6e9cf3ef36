"""Fixtures for the reliability tests: the tiny random Llama, the hosted-API fault-proxy
fixtures of tests/integration, a real PostgreSQL on loopback, and one shared study (a classical
baseline, a hosted baseline called through a local fake endpoint with a planted API key in the
environment, one 1-epoch sweep trial) that the security, export, determinism and dashboard tests
read. Everything runs on CPU with the tiny model: a sweep trial takes a few seconds.
"""

from __future__ import annotations

import os
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from reliability_support import (KEY_ENV, PLANTED_KEY, KeywordClassifier, StudyFiles, hosted_overrides,
                                 integration_conftest, roitune, start_in_thread)
from postgres_server import available as postgres_unavailable  # noqa: E402  (tests/integration)
from postgres_server import postgres_server
from sweep_fixtures import tiny_config, write_tiny_model


_integration = integration_conftest()
# The hosted-API fault-proxy fixtures: `proxy` (FaultProxy in front of `served`), `served` (the
# TF-IDF classifier behind optimizer.serve), `classifier`, `tickets`.
FaultProxy = _integration.FaultProxy
proxy_handler = _integration._proxy_handler
classifier = _integration.classifier
served = _integration.served
proxy = _integration.proxy
tickets = _integration.tickets


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, smollm_tokenizer) -> Path:
    """A 2-layer, 64-wide random Llama with the SmolLM2 tokenizer, loaded by path."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"), smollm_tokenizer)


@pytest.fixture(scope="session")
def study(tmp_path_factory, tiny_model) -> StudyFiles:
    """A study with a classical baseline, a hosted baseline (a local fake endpoint, the planted
    key in the environment) and one 1-epoch sweep trial, built through the CLI in-process."""
    from optimizer.serve import make_server

    folder = tmp_path_factory.mktemp("study")
    config = tiny_config(folder, tiny_model, epochs=[1], rank=[8], pruner="none")
    upstream = make_server(KeywordClassifier())
    start_in_thread(upstream)
    state = FaultProxy(upstream=upstream.base_url)
    front = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(state))
    front.daemon_threads = True
    start_in_thread(front)
    host, port = front.server_address[:2]
    state.base_url = f"http://{host}:{port}/v1"
    files = StudyFiles(folder=folder, config=config, storage=f"sqlite:///{folder / 'study.db'}",
                       db=folder / "study.db", study="demo", runs=folder / "runs")
    previous = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = PLANTED_KEY
    try:
        for args in (["baseline", "-c", config, "--only", "classical,hosted", *hosted_overrides(state.base_url)],
                     ["sweep", "-c", config, "--json"]):
            run = roitune(*args)
            files.outputs.append(run)
            assert run.exit_code == 0 and run.exception is None, (run.stdout, run.stderr, run.exception)
    finally:
        if previous is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = previous
        for server in (front, upstream):
            server.shutdown()
            server.server_close()
    files.auth_headers = list(state.auth_headers)
    return files


@pytest.fixture(scope="session")
def postgres_url():
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url

