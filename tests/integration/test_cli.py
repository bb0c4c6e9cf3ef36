"""The ``roitune`` CLI through typer's CliRunner, from a temporary working directory: user
errors are one line each and exit code 2 (never a traceback); ``baseline`` records a real
baseline in the study storage."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.data import load_examples
from optimizer.cli import app
from optimizer.config import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh cwd, so nothing (configs, runs/, caches) is written into the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_user_error(result, *needles: str) -> list[str]:
    """Exit code 2, a clean message (no traceback); returns the error lines."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return lines


def test_init_writes_a_valid_config_and_refuses_to_overwrite(runner, workdir, tickets_dir):
    target = workdir / "conf" / "roitune.yaml"

    first = runner.invoke(app, ["init", "--out", str(target)])

    assert first.exit_code == 0, first.output
    cfg = load_config(target)
    assert Path(cfg.data.train) == (tickets_dir / "train.jsonl").resolve()
    assert cfg.study == "demo"
    written = target.read_text()

    target.write_text(written + "# my edits\n")
    again = runner.invoke(app, ["init", "--out", str(target)])
    [line] = assert_user_error(again, "exists", "--force")
    assert str(target) in line
    assert target.read_text().endswith("# my edits\n")  # untouched

    forced = runner.invoke(app, ["init", "--out", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    assert target.read_text() == written
    assert sorted(p.name for p in target.parent.iterdir()) == ["roitune.yaml"]  # no .tmp left


def test_data_check_on_the_demo_tickets(runner, workdir, tickets_dir):
    path = tickets_dir / "train.jsonl"
    rows = len(load_examples(path))

    result = runner.invoke(app, ["data", "check", str(path)])
    as_json = runner.invoke(app, ["data", "check", str(path), "--json"])

    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # rich may wrap long lines
    assert f"{rows} rows (labelled), 40 labels" in text
    assert "tokens per text: p50" in text
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert report["rows"] == rows and len(report["label_counts"]) == 40
    assert sum(report["label_counts"].values()) == rows
    assert report["token_percentiles"]["p50"] <= report["token_percentiles"]["max"]


def test_data_check_on_preference_pairs(runner, workdir, tickets_dir):
    result = runner.invoke(app, ["data", "check", str(tickets_dir / "preferences.jsonl"), "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "preferences" and report["rows"] > 0


def test_data_check_on_a_bad_file(runner, workdir):
    bad = workdir / "bad.jsonl"
    bad.write_text('{"text": "my card was charged twice", "label": "billing"}\n'
                   '{"text": "where is my parcel"}\n'
                   '{"text": "the app crashes", "label": ""}\n', encoding="utf-8")

    result = runner.invoke(app, ["data", "check", str(bad)])

    lines = assert_user_error(result, "bad.jsonl:2: missing field 'label'", "bad.jsonl:3: field 'label'")
    assert len(lines) == 2
    assert result.stdout == ""  # no report for a file that failed validation


def test_data_check_on_a_missing_file(runner, workdir):
    result = runner.invoke(app, ["data", "check", "nope.jsonl"])

    assert_user_error(result, "nope.jsonl: no such file")


def test_baseline_classical_records_the_study(runner, workdir, tickets_dir):
    from evals.record import Kind, records, study_data
    from evals.storage import load_existing_study

    assert runner.invoke(app, ["init"]).exit_code == 0  # ./roitune.yaml, found without --config
    url = f"sqlite:///{workdir / 's.db'}"

    result = runner.invoke(app, ["baseline", "--only", "classical", "--json", "--set", f"storage={url}",
                                 "--set", "study=t"])

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["name"], row["kind"], row["split"]) == ("classical", "baseline", "validation")
    for key in ("accuracy", "macro_f1", "cost_per_item", "items_per_second"):
        assert isinstance(row[key], float), key
    assert row["accuracy"] > 0.6
    assert 0 < row["macro_f1"] <= 1
    assert 0 < row["cost_per_item"] < 1e-3
    assert row["items_per_second"] > 0
    assert row["n"] == len(load_examples(tickets_dir / "validation.jsonl"))
    test_rows = len(load_examples(tickets_dir / "test.jsonl"))
    assert row["test"]["n"] == test_rows and row["caps"] == []

    study = load_existing_study(url, "t")
    [record] = records(study)
    assert (record.kind, record.method, record.hosted) == (Kind.baseline, "classical", False)
    data = study_data(study)
    predicted = record.test.predicted_labels(data.labels)
    assert len(data.labels) == 40 and len(predicted) == test_rows
    correct = sum(predicted[i] == gold for i, gold in enumerate(data.gold("test")))
    assert correct / test_rows == pytest.approx(row["test"]["accuracy"])
    assert not (REPO / "s.db").exists()


def test_a_cap_on_training_rows_is_printed(runner, workdir):
    """A 240-row cap once trained the classical baseline on 240 of 1,023 rows without a word."""
    assert runner.invoke(app, ["init"]).exit_code == 0
    url = f"sqlite:///{workdir / 's.db'}"

    result = runner.invoke(app, ["baseline", "--only", "classical", "--set", f"storage={url}", "--set", "study=t",
                                 "--set", "data.max_train_rows=240"])

    assert result.exit_code == 0, result.output
    assert "data.max_train_rows: training on 240 of 1,023 rows" in result.stderr


def test_config_with_a_bad_key_is_one_line(runner, workdir, tickets_dir):
    config = workdir / "bad.yaml"
    config.write_text(f"data:\n  train: {tickets_dir / 'train.jsonl'}\nserch:\n  trials: 2\n", encoding="utf-8")

    result = runner.invoke(app, ["baseline", "-c", str(config), "--only", "classical"])

    [line] = assert_user_error(result, "serch: unknown key; did you mean 'search'?")
    assert line.startswith(f"error: {config}: ")
    assert not (workdir / "runs").exists()  # nothing ran


def test_baseline_without_a_config_says_how_to_get_one(runner, workdir):
    result = runner.invoke(app, ["baseline"])

    assert_user_error(result, "roitune init")


def test_bad_data_stops_baseline_before_any_work(runner, workdir, tickets_dir):
    bad = workdir / "train.jsonl"
    bad.write_text('{"text": "x", "label": "billing"}\nnot json\n', encoding="utf-8")
    config = workdir / "roitune.yaml"
    config.write_text("data:\n  train: train.jsonl\n", encoding="utf-8")
    url = f"sqlite:///{workdir / 's.db'}"

    result = runner.invoke(app, ["baseline", "--only", "classical", "--set", f"storage={url}"])

    assert_user_error(result, f"{bad}:2: invalid JSON")
    assert not (workdir / "s.db").exists()  # validated before the study was opened


def test_installed_script_help(tmp_path):
    script = Path(sys.executable).with_name("roitune")
    assert script.is_file(), script

    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=120)

    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^│ ([a-z]+) ", result.stdout, flags=re.M)
    # In the order of the work: set up, measure, decide, ship.
    assert listed == ["init", "label", "data", "baseline", "sweep", "cascade", "report", "curve", "dashboard",
                      "export", "meter", "predict", "serve"]
    assert "Traceback" not in result.stderr


def test_cli_import_stays_light():
    """`roitune --help` must not import torch & co.: they load inside the commands."""
    code = ("import sys, optimizer.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'optuna', 'sklearn', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
