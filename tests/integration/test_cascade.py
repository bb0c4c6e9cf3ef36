"""Cascades served for real: a bundle exported from a real (tiny) sweep answers what it is sure
of, and a real OpenAI-compatible server, the fallback, answers the rest through the hosted client.

The study: the classical baseline and one LoRA trial of a tiny random Llama on an easy 4-label
task (``sweep_fixtures``), built through the CLI; the sweep calibrates both and records the
cascades worth it. The fallback: TF-IDF + logistic regression trained on the same task, served by
``optimizer.serve`` behind the counting ``FaultProxy`` of ``conftest.py``.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cli_support import assert_one_line_error, ok, roitune
from http_servers import running
from sweep_fixtures import tiny_config, write_tiny_model
from tfidf_classifier import TfidfClassifier

import evals.hosted as hosted
from evals.data import load_examples

KEY_ENV = "ROITUNE_TEST_FALLBACK_KEY"
IN_PRICE, OUT_PRICE = 3.0, 15.0  # $/MTok, entered: no price table consulted


@dataclass(frozen=True)
class Study:
    config: Path
    bundle: Path
    trial: int
    texts: list[str]  # the task's test texts
    gold: list[str]


@pytest.fixture(scope="module")
def study(tmp_path_factory, smollm_tokenizer) -> Study:
    from evals.record import Kind, records
    from evals.storage import load_existing_study

    root = tmp_path_factory.mktemp("cascade-study")
    model = write_tiny_model(root / "model", smollm_tokenizer)
    config = tiny_config(root, model, epochs=[4], per_label=(16, 10, 10))
    ok("baseline", "-c", str(config))
    ok("sweep", "-c", str(config))
    cfg = yaml.safe_load(config.read_text())
    [trial] = [r for r in records(load_existing_study(cfg["storage"], cfg["study"])) if r.kind == Kind.trial]
    bundle = root / "bundle"
    ok("export", "-c", str(config), "--trial", str(trial.number), "--out", str(bundle))
    test = load_examples(cfg["data"]["test"])
    return Study(config, bundle, trial.number, [e.text for e in test], [e.label for e in test])


@pytest.fixture(scope="module")
def classifier(study) -> TfidfClassifier:
    """The fallback's model (overrides conftest's): TF-IDF + logistic regression on the task's train rows."""
    cfg = yaml.safe_load(study.config.read_text())
    return TfidfClassifier([(e.text, e.label) for e in load_examples(cfg["data"]["train"])])


@pytest.fixture(autouse=True)
def _key_and_fast_backoff(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-fallback")
    monkeypatch.setattr(hosted, "_BACKOFF_BASE_S", 0.005)


@pytest.fixture(scope="module")
def local(study):
    """The bundle's own answers and calibrated confidences on the test texts."""
    from optimizer.escalation import confidence
    from optimizer.predict import BundleClassifier, load_bundle_predictor, open_bundle

    bundle = open_bundle(study.bundle)
    classifier = BundleClassifier(bundle, load_bundle_predictor(bundle))
    predictions = [classifier.answer(conversation(text))[1] for text in study.texts]
    return classifier, [p.label for p in predictions], [confidence(bundle.calibration, p) for p in predictions]


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "Route the ticket."}, {"role": "user", "content": text}]


def median_threshold(confidences: list[float]) -> float:
    """A threshold that sends about half the items to the fallback, at least one each way, and lies
    midway between two confidences (batched and single forwards differ in the last digits)."""
    ordered = sorted(confidences)
    middle = len(ordered) // 2
    while ordered[middle] - ordered[middle - 1] < 1e-4:
        middle += 1
    return (ordered[middle - 1] + ordered[middle]) / 2


def spec(base_url: str, **overrides):
    from evals.hosted import HostedSpec

    fields = dict(base_url=base_url, model="tfidf-logreg-tickets", api_key_env=KEY_ENV,
                  input_price_per_mtok=IN_PRICE, output_price_per_mtok=OUT_PRICE, concurrency=1, timeout_s=10.0)
    return HostedSpec(**{**fields, **overrides})


@contextmanager
def cascade_server(study, local, escalation) -> Iterator:
    from optimizer.predict import CascadeClassifier
    from optimizer.serve import make_server

    try:
        with running(make_server(CascadeClassifier(local[0], escalation), port=0)) as server:
            yield server
    finally:
        escalation.close()


def ask(server, text: str) -> dict:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        body = json.dumps({"model": "bundle", "messages": conversation(text)})
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200  # an escalation never turns into an error page
        return json.loads(response.read())
    finally:
        conn.close()


def escalation(study, local, tmp_path, base_url: str, threshold: float, **overrides):
    from optimizer.escalation import Escalation
    from optimizer.predict import open_bundle

    return Escalation(spec(base_url, **overrides), labels=local[0].labels, threshold=threshold,
                      calibration=open_bundle(study.bundle).calibration, cache_dir=tmp_path / "cache")


# --- serving ----------------------------------------------------------------------------------


def test_escalated_requests_reach_the_fallback_and_confident_ones_do_not(study, local, proxy, classifier, tmp_path):
    _, labels, confidences = local
    threshold = median_threshold(confidences)
    unsure = [i for i, c in enumerate(confidences) if c < threshold]

    with cascade_server(study, local, escalation(study, local, tmp_path, proxy.base_url, threshold)) as server:
        replies = [ask(server, text) for text in study.texts]

    assert proxy.calls == proxy.paid == len(unsure)  # only the unsure ones were sent, each once
    for i, reply in enumerate(replies):
        route = reply["roitune"]
        assert route["confidence"] == pytest.approx(confidences[i], abs=1e-6)
        assert route["threshold"] == threshold and route["flag"] is None
        answer = reply["choices"][0]["message"]["content"]
        if i in unsure:
            assert route["answered_by"] == "fallback" and route["escalated"]
            assert answer == classifier.classify(conversation(study.texts[i])).label
            assert route["fallback_dollars"] > 0
        else:
            assert route["answered_by"] == "local" and not route["escalated"]
            assert answer == labels[i]


def test_the_cap_stops_escalation_and_the_local_answers_are_flagged(study, local, proxy, tmp_path):
    from evals.hosted import _prompt_tokens, hosted_cost_per_item

    _, labels, confidences = local
    threshold = max(confidences) + 1e-9 if max(confidences) < 1 else 1.0  # everything is unsure
    unsure = [i for i, c in enumerate(confidences) if c < threshold]
    # Room for the worst case of one call and a half: a few calls fit (each settles far below its
    # worst case), then the cap stops the rest.
    worst = hosted_cost_per_item(_prompt_tokens(conversation(study.texts[0]), None, conservative=True), 16,
                                 IN_PRICE, OUT_PRICE)
    cap = 1.5 * worst
    routes = []
    with cascade_server(study, local, escalation(study, local, tmp_path, proxy.base_url, threshold,
                                                 max_dollars=cap)) as server:
        for i in unsure:
            routes.append((i, ask(server, study.texts[i])))

    answered = [i for i, r in routes if r["roitune"]["answered_by"] == "fallback"]
    flagged = [(i, r) for i, r in routes if r["roitune"]["flag"]]
    assert 0 < len(answered) < len(unsure)
    assert proxy.calls == proxy.paid == len(answered)  # nothing was sent once the cap was reached
    assert len(answered) + len(flagged) == len(unsure)
    for i, reply in flagged:
        assert reply["roitune"]["flag"].startswith("dollar cap reached")
        assert reply["choices"][0]["message"]["content"] == labels[i]  # the local answer, not an error
    spent = (proxy.paid_prompt_tokens * IN_PRICE + proxy.paid_completion_tokens * OUT_PRICE) / 1e6
    assert spent <= cap


def test_an_unreachable_fallback_flags_the_local_answer(study, local, tmp_path):
    _, labels, confidences = local
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    threshold = median_threshold(confidences)
    unsure = next(i for i, c in enumerate(confidences) if c < threshold)
    sure = next(i for i, c in enumerate(confidences) if c >= threshold)
    gone = escalation(study, local, tmp_path, f"http://127.0.0.1:{closed}/v1", threshold, max_retries=1)
    with cascade_server(study, local, gone) as server:
        flagged, fine = ask(server, study.texts[unsure]), ask(server, study.texts[sure])

    assert flagged["choices"][0]["message"]["content"] == labels[unsure]
    assert flagged["roitune"]["answered_by"] == "local" and flagged["roitune"]["escalated"]
    assert flagged["roitune"]["flag"].startswith("fallback failed: endpoint connection failed")
    assert fine["roitune"] == {**fine["roitune"], "answered_by": "local", "escalated": False, "flag": None}


# --- the CLI ----------------------------------------------------------------------------------


def fallback_config(study, tmp_path: Path, base_url: str, **hosted_fields) -> Path:
    cfg = yaml.safe_load(study.config.read_text())
    cfg["baselines"]["hosted"] = {"base_url": base_url, "model": "tfidf-logreg-tickets", "api_key_env": KEY_ENV,
                                  "input_price_per_mtok": IN_PRICE, "output_price_per_mtok": OUT_PRICE,
                                  "concurrency": 2, "timeout_s": 10.0, **hosted_fields}
    cfg["runs_dir"] = str(tmp_path / "runs")
    path = tmp_path / "fallback.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_predict_escalates_in_batch_and_says_who_answered(study, local, proxy, tmp_path):
    _, labels, confidences = local
    threshold = median_threshold(confidences)
    config = fallback_config(study, tmp_path, proxy.base_url)
    out = tmp_path / "predictions.jsonl"
    cfg = yaml.safe_load(study.config.read_text())

    result = ok("predict", str(study.bundle), cfg["data"]["test"], "--out", str(out), "--escalate-to", str(config),
                "--threshold", str(threshold))

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    unsure = [i for i, c in enumerate(confidences) if c < threshold]
    assert len(lines) == len(study.texts)  # nothing lost
    assert [line["confidence"] for line in lines] == pytest.approx(confidences, abs=1e-5)
    assert [line["answered_by"] for line in lines] == ["fallback" if i in unsure else "local"
                                                       for i in range(len(lines))]
    assert all(line["label"] == labels[i] for i, line in enumerate(lines) if i not in unsure)
    assert proxy.paid == len(unsure)
    assert f"escalated {len(unsure)} of {len(lines)} rows; the fallback answered {len(unsure)}" in result.stderr

    again = ok("predict", str(study.bundle), cfg["data"]["test"], "--out", str(out), "--escalate-to", str(config),
               "--threshold", str(threshold))
    assert proxy.paid == len(unsure)  # the second run read the cache: nothing paid twice
    assert "($0.0000 new spend)" in again.stderr


def test_bad_thresholds_bundles_and_configs_are_one_line(study, proxy, tmp_path):
    cfg = yaml.safe_load(study.config.read_text())
    data = cfg["data"]["test"]
    config = fallback_config(study, tmp_path, proxy.base_url)

    def refused(*args: str, needle: str) -> None:
        assert_one_line_error(roitune(*args), needle)

    refused("predict", str(study.bundle), data, "--escalate-to", str(config), "--threshold", "1.5",
            needle="threshold 1.5 is outside [0, 1]")
    refused("serve", str(study.bundle), "--escalate-to", str(config), "--threshold", "-0.1", needle="outside [0, 1]")
    refused("predict", str(study.bundle), data, "--escalate-to", str(config), needle="no threshold")
    refused("predict", str(study.bundle), data, "--escalate-to", str(study.config), "--threshold", "0.5",
            needle="baselines.hosted is not set")
    bare = tmp_path / "bare"
    shutil.copytree(study.bundle, bare)
    (bare / "calibration.json").unlink()
    refused("serve", str(bare), "--escalate-to", str(config), "--threshold", "0.5", needle="no calibration.json")
    refused("predict", str(study.bundle), data, "--threshold", "0.5", needle="needs --escalate-to")
    assert proxy.calls == 0


def test_an_exported_cascade_carries_its_threshold_and_calibration(study, tmp_path):
    from evals.cascade import ASSUMPTION
    from evals.record import CandidateRecord, CascadeParts, Kind, add_record, records
    from evals.storage import load_existing_study

    cfg = yaml.safe_load(study.config.read_text())
    stored = load_existing_study(cfg["storage"], cfg["study"])
    trial = next(r for r in records(stored) if r.number == study.trial)
    # A cascade of the trial into the current solution, as `roitune cascade` records one when it pays.
    parts = CascadeParts(local=trial.label, local_number=trial.number, fallback="claude-haiku", fallback_number=None,
                         threshold=0.75, coverage=0.6, assumed_fallback_accuracy=0.9)
    number = add_record(stored, CandidateRecord(kind=Kind.cascade, name="cascade: hand-made", method="cascade",
                                                validation=trial.validation, cost_per_item=1e-4, cascade=parts,
                                                details={"assumption": ASSUMPTION.format(accuracy="90.0%")}),
                        values=[1.0])
    out = tmp_path / "cascade-bundle"
    ok("export", "-c", str(study.config), "--trial", str(number), "--out", str(out))

    cascade = json.loads((out / "cascade.json").read_text())
    assert cascade["threshold"] == 0.75 and cascade["local_number"] == study.trial and cascade["trial"] == number
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["temperature"] == pytest.approx(trial.calibration.temperature)
    card = (out / "README.md").read_text()
    assert "at least 0.750" in card and "assumed (90.0%)" in card
    assert "cascade.json" in (out / "SHA256SUMS").read_text()
