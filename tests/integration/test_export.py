"""``roitune export`` / ``predict`` / ``serve`` on a real adapter trained by a real (tiny) sweep.

One session-scoped study holds the classical baseline, one sweep trial of the bundled
SmolLM2 (a rank-4 LoRA trained on 40 rows; scored on the whole demo test split as the
finalist) and a hand-made FAIL trial. The tests export that trial and check that the bundle
answers exactly as the sweep measured it: through ``predict``, merged, and over HTTP.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import yaml
from typer.testing import CliRunner

from optimizer.cli import app

pytestmark = pytest.mark.slow

SMOLLM_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TINY_SWEEP = ["data.max_train_rows=40", "search.max_eval_items=24", "search.rank=[4]", "search.epochs=[1]",
              "search.batch_size=[8]", "search.pruner=none", "baselines.run=[classical]"]


@dataclass(frozen=True)
class Sweep:
    root: Path
    config: Path
    fail_trial: int
    baseline_trial: int
    study: str = "t"

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.root / 's.db'}"

    def flags(self) -> list[str]:
        overrides = [f"storage={self.storage}", f"study={self.study}", f"runs_dir={self.root / 'runs'}", *TINY_SWEEP]
        return ["-c", str(self.config), *(arg for flag in overrides for arg in ("--set", flag))]

    def load(self):
        from evals.results import load_existing_study

        return load_existing_study(self.storage, self.study)


@dataclass(frozen=True)
class Exported:
    path: Path
    stdout: str


@dataclass(frozen=True)
class Predicted:
    lines: list[dict]
    stderr: str


def roitune(*args: str):
    return CliRunner().invoke(app, list(args))


def ok(*args: str):
    result = roitune(*args)
    assert result.exit_code == 0, f"roitune {' '.join(args)}:\n{result.output}\n{result.exception!r}"
    return result


def assert_one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> Sweep:
    import optuna

    from evals.results import load_existing_study
    from optimizer.config import demo_config_text

    root = tmp_path_factory.mktemp("export-study")
    config = root / "roitune.yaml"
    config.write_text(demo_config_text(), encoding="utf-8")
    draft = Sweep(root, config, fail_trial=-1, baseline_trial=-1)
    ok("baseline", *draft.flags())
    ok("sweep", *draft.flags(), "--trials", "1")
    study = load_existing_study(draft.storage, draft.study)
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL,
        user_attrs={"kind": "trial", "name": "trial (hand-made): qlora r64", "method": "qlora",
                    "fail_reason": "OutOfMemoryError: CUDA out of memory"}))
    numbers = {t.user_attrs.get("method"): t.number for t in study.trials}
    return Sweep(root, config, fail_trial=numbers["qlora"], baseline_trial=numbers["baseline:classical"])


@pytest.fixture(scope="session")
def trial(sweep):
    from optimizer.sweep import finalists

    study = sweep.load()
    [best] = finalists(study)
    return best


@pytest.fixture(scope="session")
def bundle(sweep) -> Exported:
    out = sweep.root / "bundle"
    result = ok("export", *sweep.flags(), "--trial", "best", "--out", str(out))
    return Exported(out, result.stdout)


@pytest.fixture(scope="session")
def predictor(bundle):
    from optimizer.predict import load_bundle_predictor, open_bundle

    return load_bundle_predictor(open_bundle(bundle.path))


@pytest.fixture(scope="session")
def predicted(bundle, tickets_dir, tmp_path_factory) -> Predicted:
    out = tmp_path_factory.mktemp("predict") / "predictions.jsonl"
    result = ok("predict", str(bundle.path), str(tickets_dir / "test.jsonl"), "--out", str(out))
    return Predicted([json.loads(line) for line in out.read_text().splitlines()], result.stderr)


def card_test_accuracy(card: str) -> tuple[int, int]:
    """(correct, n) from the card's test row."""
    match = re.search(r"^\| test \| \d+ \| [\d.]+% \[[\d., ]+\] \((\d+) of (\d+)\)", card, re.MULTILINE)
    assert match, card
    return int(match.group(1)), int(match.group(2))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- export --------------------------------------------------------------------------------


def test_the_bundle_stands_on_its_own(sweep, trial, bundle, smollm_tokenizer):
    from transformers import AutoTokenizer

    from evals.cost import roi
    from evals.recommend import _money
    from evals.results import compute_dollars, trial_attrs
    from optimizer.config import load_config

    path = bundle.path
    files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "labels.json", "prompt_template.json", "roitune.json", "README.md", "SHA256SUMS"} <= files
    assert not any(p.name.endswith((".partial", ".old")) for p in path.parent.iterdir())

    # Every other file is listed with its true digest.
    sums = dict(reversed(line.split("  ", 1)) for line in (path / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == files - {"SHA256SUMS"}
    assert all(sha256(path / name) == digest for name, digest in sums.items())

    source = Path(trial.user_attrs["adapter_path"])
    assert json.loads((path / "roitune.json").read_text()) == json.loads((source / "roitune.json").read_text())
    assert (path / "adapter_model.safetensors").read_bytes() == (source / "adapter_model.safetensors").read_bytes()
    adapter = json.loads((path / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["base_model_name_or_path"] == SMOLLM_HUB_ID
    study = sweep.load()
    assert json.loads((path / "labels.json").read_text()) == study.user_attrs["labels"]
    text = "I was charged twice"
    assert AutoTokenizer.from_pretrained(path)(text)["input_ids"] == smollm_tokenizer(text)["input_ids"]
    template = json.loads((path / "prompt_template.json").read_text())
    assert template["instruction"] == "Route the customer support ticket to exactly one category."
    assert template["list_labels"] is False
    assert template["example"]["rendered"] == smollm_tokenizer.apply_chat_template(
        template["example"]["messages"], tokenize=False, add_generation_prompt=True)

    card = (path / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == SMOLLM_HUB_ID and meta["library_name"] == "peft"
    assert meta["tags"] == ["roitune", "lora", "text-classification"] and meta["pipeline_tag"]
    attrs = trial_attrs(study, trial)
    correct, n = card_test_accuracy(card)
    assert (correct, n) == (round(attrs["test_scores"]["accuracy"] * n), len(study.user_attrs["test_gold"]))
    assert "| validation | 24 |" in card
    assert f"{trial.user_attrs['cost_provenance']}, {trial.user_attrs['cost_source']}" in card
    economics = load_config(sweep.config).economics
    expected = roi(attrs["cost_per_item"], 1 - attrs["test_scores"]["accuracy"], economics,
                   compute_dollars=compute_dollars(study))
    assert f"monthly savings: {_money(expected.monthly_savings)}" in card
    assert all(f"`{digest}`" in card for name, digest in sums.items() if name != "README.md")

    assert bundle.stdout.strip() == (f"vllm serve {SMOLLM_HUB_ID} --enable-lora --lora-modules "
                                     f"bundle={path} --max-lora-rank 8")


@pytest.mark.parametrize("which, needles", [
    ("fail", ["is FAIL", "OutOfMemoryError", "only COMPLETE trials"]),
    ("baseline", ["baseline:classical", "only sweep trials"]),
    ("99", ["no trial 99"]),
    ("latest", ["--trial must be a trial number or 'best'"]),
])
def test_what_cannot_be_exported_is_one_line_and_exit_2(sweep, tmp_path, which, needles):
    number = {"fail": sweep.fail_trial, "baseline": sweep.baseline_trial}.get(which, which)
    out = tmp_path / "bundle"

    result = roitune("export", *sweep.flags(), "--trial", str(number), "--out", str(out))

    assert_one_line_error(result, *needles)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_export_leaves_nothing(sweep, tmp_path, monkeypatch):
    import optimizer.export

    def interrupt(folder: Path, text: str) -> None:
        assert (folder / "adapter_model.safetensors").is_file()  # well past the start
        raise KeyboardInterrupt

    monkeypatch.setattr(optimizer.export, "_write_card", interrupt)
    out = tmp_path / "bundle"

    result = roitune("export", *sweep.flags(), "--out", str(out))

    assert result.exit_code != 0
    assert list(tmp_path.iterdir()) == []


def test_a_killed_export_leaves_nothing_at_out_and_the_next_cleans_up(sweep, tmp_path):
    out = tmp_path / "bundle"
    partial = tmp_path / "bundle.partial"
    # --merge keeps the export busy (loading and saving a whole model) well after the adapter is in.
    command = [sys.executable, "-m", "optimizer.cli", "export", *sweep.flags(), "--out", str(out), "--merge"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (partial / "adapter_model.safetensors").exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()

    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.partial"]  # marked partial

    ok("export", *sweep.flags(), "--out", str(out))
    assert (out / "README.md").is_file() and not partial.exists()

    again = roitune("export", *sweep.flags(), "--out", str(out))
    assert_one_line_error(again, str(out), "exists", "--force")

    (out / "stale.txt").write_text("from an older export")
    ok("export", *sweep.flags(), "--out", str(out), "--force")
    assert not (out / "stale.txt").exists() and (out / "SHA256SUMS").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_merged_model_predicts_like_the_adapter(sweep, bundle, predictor, tickets_dir, tmp_path):
    from evals.classify import LabelScorer
    from evals.data import load_examples
    from evals.models import load_causal_lm, load_tokenizer
    from optimizer.predict import open_bundle

    out = tmp_path / "merged-bundle"
    ok("export", *sweep.flags(), "--out", str(out), "--merge")
    merged = out / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()
    assert not (merged / "adapter_config.json").exists()  # a plain model: no PEFT needed
    assert "merged/model.safetensors" in (out / "SHA256SUMS").read_text()

    spec = open_bundle(bundle.path).spec
    scorer = LabelScorer(load_causal_lm(str(merged), device="cpu"), load_tokenizer(str(merged)), spec.template(),
                         max_prompt_tokens=spec.max_tokens)
    texts = [e.text for e in load_examples(tickets_dir / "test.jsonl")[:40]]
    mine, theirs = scorer.predict(texts), predictor.predict(texts)

    same = sum(a.label == b.label for a, b in zip(mine, theirs))
    assert same >= 0.99 * len(texts)
    assert max(abs(a.distribution[b.label] - b.probability) for a, b in zip(mine, theirs)) < 1e-3


# -- predict -------------------------------------------------------------------------------


def test_predict_gives_the_sweeps_own_test_predictions(sweep, trial, bundle, predicted, tickets_dir):
    from evals.results import trial_attrs

    study = sweep.load()
    labels = study.user_attrs["labels"]
    stored = [labels[i] for i in trial_attrs(study, trial)["test_predictions"]]
    rows = (tickets_dir / "test.jsonl").read_text().splitlines()

    assert [line["id"] for line in predicted.lines] == list(range(1, len(rows) + 1))  # no id field: line numbers
    assert [line["label"] for line in predicted.lines] == stored
    assert all(0 < line["probability"] <= 1 for line in predicted.lines)

    correct, n = card_test_accuracy((bundle.path / "README.md").read_text())
    shown = re.search(r"accuracy ([\d.]+)% \((\d+) of (\d+) labelled rows\)", predicted.stderr)
    assert shown, predicted.stderr
    assert (int(shown.group(2)), int(shown.group(3))) == (correct, n)
    assert float(shown.group(1)) == round(100 * correct / n, 1)


def test_predict_reads_unlabelled_csv_and_reports_bad_lines(bundle, predictor, tmp_path):
    tickets = ["My parcel never arrived", "I forgot my password", "The router keeps dropping wifi"]
    csv = tmp_path / "new.csv"
    csv.write_text("id,text\n" + "".join(f"t{i},{text}\n" for i, text in enumerate(tickets)))

    result = ok("predict", str(bundle.path), str(csv), "--batch-size", "2")

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["t0", "t1", "t2"]
    assert [line["label"] for line in lines] == [p.label for p in predictor.predict(tickets)]
    assert "accuracy" not in result.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "double_charge"}\n{"label": "double_charge"}\n'
                   '{"text": "hello", "label": "not_a_label"}\n{"messages": [{"role": "system", "content": "x"}]}\n')
    out = tmp_path / "out.jsonl"
    failed = roitune("predict", str(bundle.path), str(bad), "--out", str(out))
    assert failed.exit_code == 2
    errors = failed.stderr.splitlines()
    assert [e.split(": ", 2)[1] for e in errors] == [f"{bad}:2", f"{bad}:3", f"{bad}:4"]
    assert "not_a_label" in errors[1] and "user message" in errors[2]
    assert not out.exists()


# -- serve ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_classifier(bundle, predictor):
    from optimizer.predict import BundleClassifier, open_bundle

    return BundleClassifier(open_bundle(bundle.path), predictor)


@contextmanager
def running(classifier, **limits) -> Iterator:
    from optimizer.serve import make_server

    server = make_server(classifier, port=0, **limits)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def raw_post(server, body: bytes) -> int:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert "error" in json.loads(response.read())
    conn.close()
    return response.status


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "Route the ticket."}, {"role": "user", "content": text}]


def test_openai_sdk_gets_labels_and_usage_from_roitune_serve(bundle_classifier, predictor, tickets_dir):
    from evals.data import load_examples

    texts = [e.text for e in load_examples(tickets_dir / "test.jsonl")[:8]]
    expected = [p.label for p in predictor.predict(texts)]
    with running(bundle_classifier) as server:
        client = openai.OpenAI(api_key="unused", base_url=server.base_url, max_retries=0, timeout=120)
        assert [m.id for m in client.models.list()] == ["bundle"]

        reply = client.chat.completions.create(model="bundle", messages=conversation(texts[0]))
        assert reply.choices[0].message.content == expected[0]
        label_tokens = predictor.tokenizer(expected[0], add_special_tokens=False)["input_ids"]
        assert reply.usage.prompt_tokens == len(predictor.prompt_ids(texts[0]))
        assert reply.usage.completion_tokens == len(label_tokens) > 0
        assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

        assert raw_post(server, b'{"model": "bundle", "messages": [') == 400
        assert raw_post(server, b'{"model": "bundle"}') == 400
        assert raw_post(server, json.dumps({"model": "bundle", "messages": [{"role": "user"}]}).encode()) == 400

        def ask(text: str) -> str:
            return client.chat.completions.create(model="bundle", messages=conversation(text)).choices[0].message.content

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(ask, texts)) == expected


def test_an_oversize_body_is_refused(bundle_classifier):
    with running(bundle_classifier, max_body_bytes=2_000) as server:
        big = {"model": "bundle", "messages": [{"role": "user", "content": "x" * 5_000}]}
        assert raw_post(server, json.dumps(big).encode()) == 413


def test_hosted_client_scores_the_served_bundle_like_predict(bundle_classifier, predicted, tickets_dir,
                                                             tmp_path, monkeypatch):
    from evals.data import load_examples
    from evals.hosted import HostedSpec, run_hosted

    monkeypatch.setenv("ROITUNE_TEST_SERVE_KEY", "unused")
    examples = load_examples(tickets_dir / "test.jsonl")
    with running(bundle_classifier) as server:
        spec = HostedSpec(base_url=server.base_url, model="bundle", api_key_env="ROITUNE_TEST_SERVE_KEY",
                          input_price_per_mtok=0.1, output_price_per_mtok=0.4, concurrency=4, timeout_s=120)
        result = run_hosted(spec, [conversation(e.text) for e in examples], [e.label for e in examples],
                            cache_dir=tmp_path / "cache", label_set=bundle_classifier.labels)

    assert result.answered == len(examples) and result.invalid == 0
    assert result.predictions == [line["label"] for line in predicted.lines]
    correct = sum(line["label"] == e.label for line, e in zip(predicted.lines, examples))
    assert result.accuracy == pytest.approx(correct / len(examples))
    assert result.provenance == "measured"
    dollars = (result.prompt_tokens * 0.1 + result.completion_tokens * 0.4) / 1e6
    assert result.cost_per_item == pytest.approx(dollars / len(examples))
