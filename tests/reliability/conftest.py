"""Fixtures for the reliability tests: the tiny random Llama and one shared study (a classical
baseline, a hosted baseline called through a local fake endpoint with a planted API key in the
environment, one 1-epoch sweep trial) that the security, export, determinism and dashboard tests
read. The hosted fakes and PostgreSQL come from the plugins that tests/conftest.py loads. Everything runs on CPU with the tiny model: a sweep trial takes a few seconds.
"""

from __future__ import annotations

import os
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from hosted_fakes import FaultProxy, proxy_handler
from http_servers import running
from reliability_support import KEY_ENV, PLANTED_KEY, KeywordClassifier, StudyFiles, hosted_overrides, roitune
from sweep_fixtures import tiny_config, write_tiny_model


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
    files = StudyFiles(folder=folder, config=config, storage=f"sqlite:///{folder / 'study.db'}",
                       db=folder / "study.db", study="demo", runs=folder / "runs")
    state = FaultProxy(upstream="")  # the upstream's port is known once it serves
    front = ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(state))
    front.daemon_threads = True
    previous = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = PLANTED_KEY
    try:
        with running(make_server(KeywordClassifier())) as upstream, running(front):
            state.upstream = upstream.base_url
            host, port = front.server_address[:2]
            state.base_url = f"http://{host}:{port}/v1"
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
    files.auth_headers = list(state.auth_headers)
    return files

