"""``roitune label`` against a real local OpenAI-compatible server (the served TF-IDF model, behind
the fault-injecting proxy that counts every call): labels, cache, cap, a SIGKILL mid-run, replies
that name no label, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_support import assert_one_line_error, ok, roitune
from hosted_fakes import LABELS, TEST_TICKETS, TRAIN_TICKETS
from http_servers import running

import evals.hosted as hosted
from evals.data import load_examples, load_splits
from optimizer.config import load_config
from optimizer.serve import Answer, make_server

KEY_ENV = "ROITUNE_TEST_TEACHER_KEY"
SECRET = "sk-test-TEACHER-SECRET-42"
IN_PRICE, OUT_PRICE = 3.0, 15.0
TEXTS = [text for text, _ in TEST_TICKETS]


@pytest.fixture(autouse=True)
def _key_and_fast_backoff(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setattr(hosted, "_BACKOFF_BASE_S", 0.005)


def write_config(folder: Path, base_url: str, **hosted_fields) -> Path:
    spec = {"base_url": base_url, "model": "tfidf-logreg-tickets", "api_key_env": KEY_ENV,
            "input_price_per_mtok": IN_PRICE, "output_price_per_mtok": OUT_PRICE, "concurrency": 1,
            "timeout_s": 5.0, **hosted_fields}
    config = {"task": {"labels": LABELS}, "data": {"train": "labelled.jsonl"}, "baselines": {"hosted": spec},
              "runs_dir": str(folder / "runs"), "storage": f"sqlite:///{folder / 'study.db'}"}
    path = folder / "roitune.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_texts(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def label(config: Path, inputs: Path, out: Path, *flags: str):
    return json.loads(ok("label", str(inputs), "--out", str(out), "-c", str(config), "--json", *flags).stdout)


def test_labels_match_the_teacher_and_a_rerun_pays_nothing(proxy, classifier, tmp_path):
    config = write_config(tmp_path, proxy.base_url)
    inputs, out = write_texts(tmp_path / "unlabelled.jsonl", TEXTS), tmp_path / "labelled.jsonl"
    first = label(config, inputs, out)
    rows = rows_of(out)
    expected = [classifier.classify([{"role": "user", "content": t}]).label for t in TEXTS]
    assert [r["text"] for r in rows] == TEXTS and [r["label"] for r in rows] == expected
    assert [r["source_line"] for r in rows] == list(range(1, len(TEXTS) + 1))
    assert all(r["teacher"] == {"model": "tfidf-logreg-tickets", "base_url": proxy.base_url} for r in rows)
    assert all(r["labelled_at"].endswith("+00:00") and r["cached"] is False for r in rows)
    paid = (proxy.paid_prompt_tokens * IN_PRICE + proxy.paid_completion_tokens * OUT_PRICE) / 1e6
    assert first["dollars_spent"] == pytest.approx(paid, rel=1e-12) == pytest.approx(sum(r["dollars"] for r in rows))
    assert first["live"] == proxy.calls == proxy.paid == len(TEXTS) and first["complete"]
    assert not (tmp_path / "labelled.jsonl.partial").exists()
    assert SECRET not in out.read_text()
    # The file trains: every row loads, each knows its teacher.
    assert {e.teacher for e in load_examples(out)} == {f"tfidf-logreg-tickets at {proxy.base_url}"}

    again = label(config, inputs, out)
    assert proxy.calls == len(TEXTS)  # not one more call
    assert again["dollars_spent"] == 0 and again["from_cache"] == len(TEXTS)
    assert again["dollars_cached"] == pytest.approx(first["dollars_spent"])
    assert [(r["text"], r["label"], r["labelled_at"], r["dollars"]) for r in rows_of(out)] == \
        [(r["text"], r["label"], r["labelled_at"], r["dollars"]) for r in rows]


def test_the_cap_stops_cleanly_with_the_rows_so_far_and_a_rerun_finishes(proxy, tmp_path):
    config = write_config(tmp_path, proxy.base_url)
    inputs, out = write_texts(tmp_path / "unlabelled.jsonl", TEXTS), tmp_path / "labelled.jsonl"
    stopped = label(config, inputs, out, "--max-dollars", "0.0007")
    rows = rows_of(out)
    assert 0 < len(rows) < len(TEXTS) == stopped["rows"]
    assert stopped["stopped_reason"].startswith("max_dollars ($0.0007) reached after")
    assert [r["text"] for r in rows] == TEXTS[:len(rows)]  # the first rows, in order
    assert proxy.paid == len(rows) and stopped["dollars_spent"] <= 0.0007
    assert (tmp_path / "labelled.jsonl.partial").exists()  # kept, to resume

    finished = label(config, inputs, out, "--max-dollars", "1")
    assert finished["resumed"] == len(rows) and finished["complete"]
    assert [r["text"] for r in rows_of(out)] == TEXTS
    assert proxy.paid == len(TEXTS)  # nothing paid twice


def test_a_reply_that_names_no_label_is_recorded_and_skipped_by_training(proxy, tmp_path):
    config = write_config(tmp_path, proxy.base_url)
    inputs, out = write_texts(tmp_path / "unlabelled.jsonl", TEXTS), tmp_path / "labelled.jsonl"
    proxy.faults = [None, "reply:I am not sure what this is about"]
    summary = label(config, inputs, out)
    rows = rows_of(out)
    assert summary["no_label"] == 1 and rows[1]["label"] is None
    assert rows[1]["reason"] == "reply names no label: 'I am not sure what this is about'"
    assert all(r["label"] in LABELS for i, r in enumerate(rows) if i != 1)

    skipped: list[int] = []
    assert len(load_examples(out, skipped=skipped)) == len(TEXTS) - 1 and skipped == [2]
    splits = load_splits(load_config(config).data.model_copy(update={"train": str(out)}), LABELS)
    assert "skipped 1 rows the teacher left unlabelled (label null, e.g. line 2)" in " ".join(splits.warnings)
    checked = json.loads(ok("data", "check", str(out), "--model", "", "--json").stdout)
    assert checked["rows"] == len(TEXTS) - 1 and checked["unlabelled_by_teacher"] == [2]
    assert checked["teachers"] == {f"tfidf-logreg-tickets at {proxy.base_url}": len(TEXTS) - 1}


def test_bad_input_is_one_line_and_nothing_is_written(proxy, tmp_path):
    config = write_config(tmp_path, proxy.base_url)
    out = tmp_path / "labelled.jsonl"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": 7}) + "\n")
    write_texts(bad.with_name("fine.jsonl"), ["fine"])
    assert_one_line_error(roitune("label", str(bad), "--out", str(out), "-c", str(config)),
                          f"{bad}:2: field 'text': empty or not a string")
    assert_one_line_error(roitune("label", str(tmp_path / "missing.jsonl"), "--out", str(out), "-c", str(config)),
                          "missing.jsonl: no such file")
    not_a_bundle = tmp_path / "not-a-bundle"
    not_a_bundle.mkdir()
    assert_one_line_error(roitune("label", str(bad.with_name("fine.jsonl")), "--out", str(out), "-c", str(config),
                                  "--teacher", str(not_a_bundle)), f"--teacher {not_a_bundle}",
                          "is not a roitune bundle (no roitune.json)")
    assert not out.exists() and not (tmp_path / "labelled.jsonl.partial").exists() and proxy.calls == 0

    # A journal another teacher wrote is not resumed under this one.
    inputs = write_texts(tmp_path / "unlabelled.jsonl", TEXTS)
    journal = tmp_path / "labelled.jsonl.partial"
    journal.write_text(json.dumps({"text": TEXTS[0], "label": LABELS[0], "source_line": 1,
                                   "teacher": {"model": "other", "base_url": "http://elsewhere/v1"}}) + "\n")
    assert_one_line_error(roitune("label", str(inputs), "--out", str(out), "-c", str(config)),
                          f"{journal}:1: field 'teacher': labelled by")
    assert not out.exists() and proxy.calls == 0


class SlowClassifier:
    """The real TF-IDF model, answering one request every 0.15 s: slow enough to be killed mid-run."""

    def __init__(self, inner):
        self.inner, self.model_id, self.labels = inner, inner.model_id, inner.labels
        self.calls = 0

    def classify(self, messages) -> Answer:
        self.calls += 1
        time.sleep(0.15)
        return self.inner.classify(messages)


def test_sigkill_mid_run_then_rerun_neither_loses_nor_repeats_rows(classifier, tmp_path):
    texts = [text for text, _ in TRAIN_TICKETS]  # 40 rows
    slow = SlowClassifier(classifier)
    with running(make_server(slow)) as server:
        config = write_config(tmp_path, server.base_url)
        inputs, out = write_texts(tmp_path / "unlabelled.jsonl", texts), tmp_path / "labelled.jsonl"
        journal = tmp_path / "labelled.jsonl.partial"
        command = [sys.executable, "-m", "optimizer.cli", "label", str(inputs), "--out", str(out), "-c", str(config)]
        worker = subprocess.Popen(command, env={**os.environ, KEY_ENV: SECRET}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if journal.exists() and journal.read_text().count("\n") >= 5:
                break
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        journalled = journal.read_text().count("\n")
        assert 5 <= journalled < len(texts) and not out.exists()
        calls_before = slow.calls

        summary = label(config, inputs, out)
        rows = rows_of(out)
        assert [r["text"] for r in rows] == texts  # every row, once, in input order
        assert [r["source_line"] for r in rows] == list(range(1, len(texts) + 1))
        assert summary["resumed"] == journalled
        # The rerun called only for rows it lacked: at most one reply was in flight when killed.
        assert slow.calls - calls_before == len(texts) - journalled - summary["from_cache"]
        assert slow.calls <= len(texts) + 1
        assert not journal.exists()
