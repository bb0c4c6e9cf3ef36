"""``roitune curve`` on a real study: the classical baseline retrained on nested fractions (its full
fraction is the baseline itself), recorded, shown by ``roitune report`` (terminal, JSON, HTML) and the
dashboard; a sweep trial retrained through the sweep; bad input refused whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from cli_support import assert_one_line_error, ok, roitune
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash
from sweep_fixtures import tiny_config, write_tiny_model

import dashboards
from evals.data import load_splits, normalise_text
from evals.record import Kind, learning_curves, records
from evals.storage import load_existing_study
from optimizer.config import load_config
from optimizer.curves import fraction_of

APP = Path(dashboards.__file__).with_name("app.py")


@pytest.fixture(scope="module")
def classical_study(tmp_path_factory) -> Path:
    """The tiny 4-label task, 160 training rows, with the classical baseline recorded."""
    folder = tmp_path_factory.mktemp("curve")
    config = tiny_config(folder, "unused-model", per_label=(40, 10, 10))
    raw = yaml.safe_load(config.read_text())
    raw["economics"].update({"cost_per_label": 0.05, "tickets_per_month": 100_000, "cost_per_error": 0.5})
    config.write_text(yaml.safe_dump(raw))
    ok("baseline", "-c", str(config), "--only", "classical")
    return config


def study_of(config: Path):
    cfg = load_config(config)
    return load_existing_study(cfg.storage, cfg.study)


def test_fractions_are_nested_and_stratified(classical_study):
    cfg = load_config(classical_study)
    train = load_splits(cfg.data).train
    quarter, half = fraction_of(train, 0.25, 0), fraction_of(train, 0.5, 0)
    assert {normalise_text(e.text) for e in quarter} < {normalise_text(e.text) for e in half}
    assert sorted(e.label for e in quarter) == sorted([label for label in {e.label for e in train}] * 10)


def test_the_classical_curve_is_recorded_and_reported(classical_study, monkeypatch):
    config = str(classical_study)
    curve = json.loads(ok("curve", "-c", config, "--json").stdout)
    assert [p["train_rows"] for p in curve["points"]] == [20, 40, 80, 160]
    assert [p["fraction"] for p in curve["points"]] == [0.125, 0.25, 0.5, 1.0]
    # All rows is the baseline's own training: the same model, the same validation answers.
    baseline = next(r for r in records(study_of(classical_study)) if r.kind == Kind.baseline)
    assert curve["points"][-1]["accuracy"] == baseline.validation.accuracy
    assert curve["points"][-1]["n"] == baseline.validation.n == 40
    assert curve["candidate"] == "classical" and curve["measures"] == "accuracy" and curve["more_rows"] == 160
    fit, gain = curve["fit"], curve["gain"]
    assert gain["value"] == pytest.approx((fit["a"] - fit["b"] * 320 ** -fit["c"])
                                          - (fit["a"] - fit["b"] * 160 ** -fit["c"]))
    retrain = curve["points"][-1]["compute_dollars"] * 2
    assert curve["payback"]["one_off"] == pytest.approx(160 * 0.05 + retrain)
    assert curve["payback"]["monthly_savings"] == pytest.approx(100_000 * gain["value"] * 0.5)
    [stored] = learning_curves(study_of(classical_study))
    assert stored.gain.value == pytest.approx(gain["value"])

    report = json.loads(ok("report", "-c", config, "--json").stdout)
    assert report["curves"][0]["gain"] == curve["gain"]
    assert "Learning curve of classical: accuracy on 40 validation items" in ok("report", "-c", config).stdout
    html = Path(classical_study).with_name("report.html")
    ok("report", "-c", config, "--html", str(html))
    assert "The value of more labels" in html.read_text() and "Learning curve of classical" in html.read_text()

    monkeypatch.setattr(sys, "argv", [str(APP), "--config", config])
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at._page_hash = calc_hash("labels")  # a callable st.Page is registered under its url_path's hash
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Rows today"] == "160" and f"+{160:,} rows add" in shown
    assert len(at.get("plotly_chart")) == 1


@pytest.mark.parametrize("fractions, needle", [("0,0.5", "--fractions: 0 is outside (0, 1]"),
                                               ("0.5,1.5", "--fractions: 1.5 is outside (0, 1]"),
                                               ("half", "--fractions: 'half' is not a number")])
def test_bad_fractions_are_one_line_and_record_nothing(classical_study, fractions, needle):
    before = dict(study_of(classical_study).user_attrs)
    assert_one_line_error(roitune("curve", "-c", str(classical_study), "--fractions", fractions), needle)
    assert dict(study_of(classical_study).user_attrs) == before


def test_a_candidate_that_does_not_learn_from_rows_is_refused(classical_study):
    assert_one_line_error(roitune("curve", "-c", str(classical_study), "--candidate", "nothing-like-it"),
                          "--candidate nothing-like-it: no complete candidate")


@pytest.mark.slow
def test_a_sweep_trial_is_retrained_through_the_sweep(tmp_path, smollm_tokenizer):
    model = write_tiny_model(tmp_path / "model", smollm_tokenizer)
    config = tiny_config(tmp_path, model, per_label=(8, 4, 4), epochs=[2])
    ok("sweep", "-c", str(config))
    curve = json.loads(ok("curve", "-c", str(config), "--fractions", "0.5", "--json").stdout)
    assert curve["number"] == 0 and [p["train_rows"] for p in curve["points"]] == [16, 32]
    assert curve["fit"] is None  # two sizes: points, no curve
    cfg = load_config(config)
    child = load_existing_study(cfg.storage, f"{cfg.study}.curve.trial-0.0.5")
    [trained] = [r for r in records(child) if r.kind == Kind.trial]
    parent = next(r for r in records(study_of(config)) if r.kind == Kind.trial)
    assert trained.training.train_rows == 16 and trained.settings == parent.settings
    # A rerun finds the children trained: nothing is trained again.
    again = json.loads(ok("curve", "-c", str(config), "--fractions", "0.5", "--json").stdout)
    assert again["points"] == curve["points"] and len(child.trials) == 1
