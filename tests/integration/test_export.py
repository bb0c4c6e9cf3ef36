"""``roitune export`` / ``predict`` / ``serve`` on a real adapter trained by a real (tiny) sweep.

One session-scoped study holds the classical baseline, one sweep trial of the bundled
SmolLM2 (a rank-4 LoRA trained on 40 rows, then scored on the test split as the finalist) and
a hand-made FAIL trial. The tests export that trial and check that the bundle answers exactly
as the sweep measured it: through ``predict``, merged, and over HTTP.

The test split is the first 40 rows of the demo test file: on the shared 2-core machine the
label-constrained scorer manages well under one item a second, and the same items are scored
by the sweep, ``predict``, the merged model and the server in turn.
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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import yaml
from cli_support import assert_one_line_error, ok, roitune
from http_servers import running

pytestmark = pytest.mark.slow

SMOLLM_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TEST_ROWS = 40


@dataclass(frozen=True)
class Sweep:
    root: Path
    fail_trial: int = -1
    baseline_trial: int = -1
    study: str = "t"

    @property
    def config(self) -> Path:
        return self.root / "roitune.yaml"

    @property
    def test_file(self) -> Path:
        return self.root / "test.jsonl"

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.root / 's.db'}"

    def flags(self) -> list[str]:
        overrides = [f"storage={self.storage}", f"study={self.study}", f"runs_dir={self.root / 'runs'}",
                     f"data.test={self.test_file}", "data.max_train_rows=40", "search.max_eval_items=24",
                     "search.rank=[4]", "search.epochs=[1]", "search.batch_size=[8]", "search.pruner=none",
                     "search.base_models=[smollm2-135m-instruct]", "search.methods=[lora]", "search.heads=[generative]",
                     "baselines.run=[classical]"]
        return ["-c", str(self.config), *(arg for flag in overrides for arg in ("--set", flag))]

    def load(self):
        from evals.storage import load_existing_study

        return load_existing_study(self.storage, self.study)


@dataclass(frozen=True)
class Exported:
    path: Path
    stdout: str


@dataclass(frozen=True)
class Predicted:
    lines: list[dict]
    stderr: str


@pytest.fixture(scope="session")
def sweep(tmp_path_factory, tickets_dir) -> Sweep:
    from evals.record import CandidateRecord, Kind, add_record, records
    from optimizer.config import demo_config_text

    made = Sweep(tmp_path_factory.mktemp("export-study"))
    made.config.write_text(demo_config_text(), encoding="utf-8")
    rows = (tickets_dir / "test.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    made.test_file.write_text("".join(rows[:TEST_ROWS]), encoding="utf-8")
    ok("baseline", *made.flags())
    ok("sweep", *made.flags(), "--trials", "1")
    study = made.load()
    add_record(study, CandidateRecord(kind=Kind.trial, name="trial (hand-made): qlora r64", method="qlora",
                                      fail_reason="OutOfMemoryError: CUDA out of memory"), values=None)
    numbers = {r.method: r.number for r in records(study)}
    return Sweep(made.root, fail_trial=numbers["qlora"], baseline_trial=numbers["classical"])


@pytest.fixture(scope="session")
def trial(sweep):
    from optimizer.sweep import finalists

    [best] = finalists(sweep.load())
    return best


@pytest.fixture(scope="session")
def bundle(sweep) -> Exported:
    out = sweep.root / "bundle"
    result = ok("export", *sweep.flags(), "--trial", "best", "--out", str(out))
    return Exported(out, result.stdout)


@pytest.fixture(scope="session")
def predicted(sweep, bundle, tmp_path_factory) -> Predicted:
    out = tmp_path_factory.mktemp("predict") / "predictions.jsonl"
    result = ok("predict", str(bundle.path), str(sweep.test_file), "--out", str(out))
    return Predicted([json.loads(line) for line in out.read_text().splitlines()], result.stderr)


@pytest.fixture(scope="session")
def test_texts(sweep) -> list[str]:
    from evals.data import load_examples

    return [e.text for e in load_examples(sweep.test_file)]


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

    from evals.formatting import money
    from evals.record import read_record
    from evals.report import study_report
    from optimizer.config import load_config

    path = bundle.path
    files = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "labels.json", "prompt_template.json", "roitune.json", "README.md", "SHA256SUMS"} <= files
    assert not any(p.name.endswith((".partial", ".old")) for p in path.parent.iterdir())

    # SHA256SUMS lists every other file with its true digest.
    sums = {name: digest for digest, name in
            (line.split("  ", 1) for line in (path / "SHA256SUMS").read_text().splitlines())}
    assert set(sums) == files - {"SHA256SUMS"}
    assert all(sha256(path / name) == digest for name, digest in sums.items())

    study = sweep.load()
    record = read_record(study, trial)
    source = Path(record.adapter_path)
    assert json.loads((path / "roitune.json").read_text()) == json.loads((source / "roitune.json").read_text())
    assert sha256(path / "adapter_model.safetensors") == sha256(source / "adapter_model.safetensors")
    adapter = json.loads((path / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["base_model_name_or_path"] == SMOLLM_HUB_ID
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
    assert f"| validation | {record.validation.n} |" in card
    assert card_test_accuracy(card) == (record.test.correct, TEST_ROWS)
    assert f"({record.cost_provenance}, {record.cost_source})" in card
    expected = next(r.roi for r in study_report(study, load_config(sweep.config).economics).ranked
                    if r.record.number == trial.number)
    assert f"monthly cost: {money(expected.monthly_cost)}" in card
    assert f"monthly savings: {money(expected.monthly_savings)}" in card
    assert all(f"| {name} | `{digest}` |" in card for name, digest in sums.items() if name != "README.md")

    assert bundle.stdout.strip() == (f"vllm serve {SMOLLM_HUB_ID} --enable-lora --lora-modules "
                                     f"bundle={path} --max-lora-rank 8")


@pytest.mark.parametrize("which, needles", [
    ("fail", ["is FAIL", "OutOfMemoryError", "only COMPLETE trials"]),
    ("baseline", ["classical (baseline)", "only sweep trials"]),
    ("99", ["no trial 99"]),
    ("latest", ["--trial must be a trial number or 'best'"]),
])
def test_what_cannot_be_exported_is_one_line_and_exit_2(sweep, tmp_path, which, needles):
    number = {"fail": sweep.fail_trial, "baseline": sweep.baseline_trial}.get(which, which)

    result = roitune("export", *sweep.flags(), "--trial", str(number), "--out", str(tmp_path / "bundle"))

    assert_one_line_error(result, *needles)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cost_per_error, expected", [(0.05, "accurate"), (0.0, "cheap")])
def test_best_of_a_pareto_study_is_the_front_member_with_the_lowest_monthly_cost(cost_per_error, expected):
    import optuna

    from evals.cost import Economics
    from evals.metrics import score
    from evals.record import CandidateRecord, Kind, SplitResult, add_record
    from optimizer.export import best_trial

    study = optuna.create_study(directions=["maximize", "minimize"])
    gold = ["a"] * 200

    def add(name: str, kind: Kind, accuracy: float, cost_per_item: float) -> None:
        predicted = ["a" if i < accuracy * 200 else "b" for i in range(200)]
        result = SplitResult.of(score(gold, predicted, ["a", "b"]), predicted, ["a", "b"])
        # Priced on the 2-core CPU of the price table: the throughput that gives this $/item.
        add_record(study, CandidateRecord(
            kind=kind, name=name, method=name, validation=result, cost_per_item=cost_per_item,
            cost_provenance="measured", items_per_second=0.0893 / (3600 * cost_per_item), measured_on="a CPU",
            measured_hardware="cpu-2core"), [accuracy, cost_per_item])

    add("accurate", Kind.trial, 0.90, 1e-4)  # on the front
    add("cheap", Kind.trial, 0.80, 1e-5)  # on the front
    add("dominated", Kind.trial, 0.70, 1e-3)
    add("classical", Kind.baseline, 0.60, 1e-6)  # cheapest of all, but not an adapter
    economics = Economics(cost_per_error=cost_per_error)

    assert best_trial(study, economics).user_attrs["name"] == expected


def test_an_interrupted_export_leaves_nothing(sweep, tmp_path, monkeypatch):
    import optimizer.export

    def interrupt(folder: Path, text: str) -> None:
        assert (folder / "adapter_model.safetensors").is_file()  # well into the export
        raise KeyboardInterrupt

    monkeypatch.setattr(optimizer.export, "_write_card", interrupt)

    result = roitune("export", *sweep.flags(), "--out", str(tmp_path / "bundle"))

    assert result.exit_code != 0
    assert list(tmp_path.iterdir()) == []


def test_a_killed_export_leaves_nothing_at_out_and_the_next_cleans_up(sweep, tmp_path):
    out, partial = tmp_path / "bundle", tmp_path / "bundle.partial"
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
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.partial"]

    ok("export", *sweep.flags(), "--out", str(out))
    assert (out / "README.md").is_file() and not partial.exists()

    again = roitune("export", *sweep.flags(), "--out", str(out))
    assert_one_line_error(again, str(out), "exists", "--force")

    (out / "stale.txt").write_text("from an older export")
    ok("export", *sweep.flags(), "--out", str(out), "--force")
    assert not (out / "stale.txt").exists() and (out / "SHA256SUMS").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_the_merged_model_predicts_like_the_adapter(sweep, bundle, predicted, test_texts, tmp_path):
    from evals.classify import LabelScorer
    from evals.models import load_causal_lm, load_tokenizer
    from optimizer.predict import open_bundle

    out = tmp_path / "merged-bundle"
    ok("export", *sweep.flags(), "--out", str(out), "--merge")
    merged = out / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()
    assert not (merged / "adapter_config.json").exists()  # a plain model: no PEFT needed to load it
    assert "  merged/model.safetensors" in (out / "SHA256SUMS").read_text()

    spec = open_bundle(bundle.path).spec
    scorer = LabelScorer(load_causal_lm(str(merged), device="cpu"), load_tokenizer(str(merged)), spec.template(),
                         max_prompt_tokens=spec.max_tokens)
    merged_predictions = scorer.predict(test_texts)

    same = sum(p.label == line["label"] for p, line in zip(merged_predictions, predicted.lines))
    assert same >= 0.99 * len(test_texts)
    assert max(abs(p.distribution[line["label"]] - line["probability"])
               for p, line in zip(merged_predictions, predicted.lines)) < 1e-3


@pytest.mark.parametrize("method, head", [("qlora", "generative"), ("lora", "classifier")])
def test_qlora_merges_dequantised_and_a_classifier_head_points_to_roitune_serve(tmp_path, smollm_tokenizer,
                                                                                method, head):
    """On the tiny random Llama (seconds, not minutes): what differs from a plain LoRA bundle."""
    from evals.classify import HeadClassifier, LabelScorer
    from evals.data import load_examples
    from evals.models import load_causal_lm, load_sequence_classifier, load_tokenizer
    from optimizer.predict import load_bundle_predictor, open_bundle
    from sweep_fixtures import tiny_config, write_tiny_model

    model = write_tiny_model(tmp_path / "model", smollm_tokenizer)
    config = tiny_config(tmp_path, model, methods=[method], heads=[head], epochs=[1])
    ok("sweep", "-c", str(config))
    out = tmp_path / "bundle"

    result = ok("export", "-c", str(config), "--out", str(out), "--merge")

    card = (out / "README.md").read_text()
    found = open_bundle(out)
    adapter = load_bundle_predictor(found)
    merged_path, labels = str(out / "merged"), list(found.spec.labels)
    texts = [e.text for e in load_examples(tmp_path / "data" / "test.jsonl")]
    if head == "classifier":
        assert "does not cover a custom classification (score) head" in result.stdout
        assert f"roitune serve {out}" in result.stdout and "vllm serve" not in result.stdout
        assert "pipeline_tag: text-classification" in card
        merged = HeadClassifier(load_sequence_classifier(merged_path, labels, device="cpu").eval(),
                                load_tokenizer(merged_path), labels, max_tokens=found.spec.max_tokens)
    else:
        assert found.spec.quantization == "nf4"
        assert "dequantised" in result.stderr and "dequantised" in card
        merged = LabelScorer(load_causal_lm(merged_path, device="cpu"), load_tokenizer(merged_path),
                             found.spec.template(), max_prompt_tokens=found.spec.max_tokens)
    ours, theirs = merged.predict(texts), adapter.predict(texts)
    agree = sum(a.label == b.label for a, b in zip(ours, theirs)) / len(texts)
    # A QLoRA adapter ran on a 4-bit base; merged, it runs on the full-precision weights.
    assert agree == 1.0 if head == "classifier" else agree >= 0.9


# -- meter ---------------------------------------------------------------------------------


def test_meter_on_the_serving_hardware_makes_its_price_measured(sweep, trial, bundle):
    """A throughput timed on one machine prices a candidate on another only as an estimate;
    `roitune meter` on the serving hardware records the throughput measured there."""
    before = json.loads(ok("report", *sweep.flags(), "--set", "economics.hardware=nvidia-l4", "--json").stdout)
    assert {r["cost_provenance"] for r in before["candidates"]} == {"estimated"}  # all timed on this CPU

    # This machine stands in for an L4 (--hardware declares it); the trial comes from source.json.
    done = json.loads(ok("meter", str(bundle.path), *sweep.flags(), "--hardware", "nvidia-l4", "--json").stdout)

    assert (done["number"], done["hardware"]) == (trial.number, "nvidia-l4")
    assert done["items_per_second"] > 0 and done["meter"]["timed_items"] >= 64
    assert "declared nvidia-l4" in done["measured_on"]
    after = json.loads(ok("report", *sweep.flags(), "--set", "economics.hardware=nvidia-l4", "--json").stdout)
    rows = {r["trial_number"]: r for r in after["candidates"]}
    assert rows[trial.number]["cost_provenance"] == "measured"
    assert rows[trial.number]["cost_per_item"] == pytest.approx(0.805 / (3600 * done["items_per_second"]))
    assert rows[sweep.baseline_trial]["cost_provenance"] == "estimated"  # not metered there
    assert "roitune meter" in rows[sweep.baseline_trial]["cost_source"]


# -- predict -------------------------------------------------------------------------------


def test_predict_gives_the_sweeps_own_test_predictions(sweep, trial, bundle, predicted):
    from evals.record import read_record

    study = sweep.load()
    labels = study.user_attrs["labels"]
    stored = [labels[i] for i in read_record(study, trial).test.predictions]

    assert [line["id"] for line in predicted.lines] == list(range(1, TEST_ROWS + 1))  # no "id": line numbers
    assert [line["label"] for line in predicted.lines] == stored
    assert all(0 < line["probability"] <= 1 for line in predicted.lines)

    correct, n = card_test_accuracy((bundle.path / "README.md").read_text())
    shown = re.search(r"accuracy ([\d.]+)% \((\d+) of (\d+) labelled rows\)", predicted.stderr)
    assert shown, predicted.stderr
    assert (int(shown.group(2)), int(shown.group(3))) == (correct, n)
    assert float(shown.group(1)) == round(100 * correct / n, 1)


def test_predict_reads_unlabelled_csv_and_reports_every_bad_line(bundle, predicted, test_texts, tmp_path):
    import csv

    new = tmp_path / "new.csv"
    with new.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("id", "text"), *((f"t{i}", text) for i, text in enumerate(test_texts[:3]))])

    result = ok("predict", str(bundle.path), str(new), "--batch-size", "2")

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["t0", "t1", "t2"]
    assert [line["label"] for line in lines] == [line["label"] for line in predicted.lines[:3]]
    assert "accuracy" not in result.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "my card was charged twice", "label": "double_charge"}\n{"label": "double_charge"}\n'
                   '{"text": "hello", "label": "not_a_label"}\n{"messages": [{"role": "system", "content": "x"}]}\n')
    out = tmp_path / "out.jsonl"
    failed = roitune("predict", str(bundle.path), str(bad), "--out", str(out))

    assert failed.exit_code == 2
    errors = failed.stderr.splitlines()
    assert [e.split(": ", 2)[1] for e in errors] == [f"{bad}:2", f"{bad}:3", f"{bad}:4"]
    assert "'not_a_label'" in errors[1] and "user message" in errors[2]
    assert not out.exists()


def test_the_bundle_labels_as_teacher_for_compute_only_and_a_killed_run_resumes(sweep, bundle, predicted,
                                                                                test_texts, tmp_path):
    """``label --teacher BUNDLE`` serves the bundle for the run: its labels are predict's, they cost
    no bill but their measured seconds, and the journal resumes across runs (and server ports)."""
    from optimizer.config import load_config

    n = 8
    cfg = load_config(sweep.config)
    inputs = tmp_path / "texts.jsonl"
    inputs.write_text("".join(json.dumps({"text": t}) + "\n" for t in test_texts[:n]))
    out = tmp_path / "labelled.jsonl"

    def label() -> dict:
        return json.loads(ok("label", str(inputs), "--out", str(out), "--teacher", str(bundle.path),
                             *sweep.flags(), "--json").stdout)

    summary = label()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = [line["label"] for line in predicted.lines[:n]]
    assert [row[cfg.data.label_field] for row in rows] == expected
    assert {json.dumps(row["teacher"]) for row in rows} == {json.dumps({"model": bundle.path.name,
                                                                        "bundle": str(bundle.path.resolve())})}
    assert all(row["dollars"] == 0 for row in rows)
    assert (summary["live"], summary["dollars_spent"], summary["complete"]) == (n, 0, True)
    rate = cfg.economics.hardware_price().value
    assert summary["compute_seconds"] > 0
    assert summary["compute_dollars"] == pytest.approx(summary["compute_seconds"] * rate / 3600)

    # A run killed after half its rows left them in the journal: the rerun labels only the rest.
    journal = out.with_name(out.name + ".partial")
    journal.write_text("".join(json.dumps(row) + "\n" for row in rows[: n // 2]))
    out.unlink()
    again = label()
    assert (again["resumed"], again["live"], again["written"]) == (n // 2, n - n // 2, n)
    assert [json.loads(line)[cfg.data.label_field] for line in out.read_text().splitlines()] == expected
    assert not journal.exists()


# -- serve ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_classifier(bundle):
    from optimizer.predict import BundleClassifier, load_bundle_predictor, open_bundle

    found = open_bundle(bundle.path)
    return BundleClassifier(found, load_bundle_predictor(found))


def serving(classifier, **limits):
    from optimizer.serve import make_server

    return running(make_server(classifier, port=0, **limits))


def raw_post(server, body: bytes) -> int:
    """POST a body the SDK would never send; returns the status of the JSON error reply."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert "error" in json.loads(response.read())
        return response.status
    finally:
        conn.close()


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "Route the ticket."}, {"role": "user", "content": text}]


def test_the_openai_sdk_gets_labels_and_usage_from_the_served_bundle(bundle_classifier, predicted, test_texts):
    texts, expected = test_texts[:8], [line["label"] for line in predicted.lines[:8]]
    with serving(bundle_classifier) as server:
        client = openai.OpenAI(api_key="unused", base_url=server.base_url, max_retries=0, timeout=300)
        assert [m.id for m in client.models.list()] == ["bundle"]

        reply = client.chat.completions.create(model="bundle", messages=conversation(texts[0]))
        assert reply.choices[0].message.content == expected[0]
        scorer = bundle_classifier.predictor
        assert reply.usage.prompt_tokens == len(scorer.prompt_ids(texts[0]))
        assert reply.usage.completion_tokens == len(scorer.tokenizer(expected[0], add_special_tokens=False)["input_ids"])
        assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

        assert raw_post(server, b'{"model": "bundle", "messages": [') == 400
        assert raw_post(server, b'{"model": "bundle"}') == 400
        assert raw_post(server, json.dumps({"model": "bundle", "messages": [{"role": "user"}]}).encode()) == 400

        def ask(text: str) -> str | None:
            return client.chat.completions.create(model="bundle", messages=conversation(text)).choices[0].message.content

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(ask, texts)) == expected


def test_an_oversize_body_is_refused(bundle_classifier):
    with serving(bundle_classifier, max_body_bytes=2_000) as server:
        big = {"model": "bundle", "messages": [{"role": "user", "content": "x" * 5_000}]}
        assert raw_post(server, json.dumps(big).encode()) == 413


def test_the_hosted_client_scores_the_served_bundle_like_predict(sweep, bundle_classifier, predicted, tmp_path,
                                                                 monkeypatch):
    from evals.data import load_examples
    from evals.hosted import HostedSpec, run_hosted

    monkeypatch.setenv("ROITUNE_TEST_SERVE_KEY", "unused")
    examples = load_examples(sweep.test_file)
    with serving(bundle_classifier) as server:
        spec = HostedSpec(base_url=server.base_url, model="bundle", api_key_env="ROITUNE_TEST_SERVE_KEY",
                          input_price_per_mtok=0.1, output_price_per_mtok=0.4, concurrency=4, timeout_s=300)
        result = run_hosted(spec, [conversation(e.text) for e in examples], [e.label for e in examples],
                            cache_dir=tmp_path / "cache", label_set=bundle_classifier.labels)

    assert result.answered == len(examples) and result.invalid == 0
    assert result.predictions == [line["label"] for line in predicted.lines]
    correct = sum(line["label"] == e.label for line, e in zip(predicted.lines, examples))
    assert result.accuracy == pytest.approx(correct / len(examples))
    assert result.provenance == "measured"
    dollars = (result.prompt_tokens * 0.1 + result.completion_tokens * 0.4) / 1e6
    assert result.cost_per_item == pytest.approx(dollars / len(examples))
