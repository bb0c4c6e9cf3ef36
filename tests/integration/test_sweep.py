"""The sweep's mechanics: resume, failures, budget stops, the pareto front. A tiny random Llama
(loaded by path) keeps these fast; test_methods.py trains the real bundled models."""

from __future__ import annotations

import optuna
import pytest

from evals.record import read_record, sweep_trials
from sweep_fixtures import study_of, sweep, tiny_config, write_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, smollm_tokenizer):
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"), smollm_tokenizer)


def test_a_second_run_resumes_to_the_requested_total(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, rank=[4, 8], epochs=[1])
    first = sweep(config, "--trials", "2")
    assert first["finished"] == 2
    before = {t.number: t.values for t in sweep_trials(study_of(config))}
    second = sweep(config, "--trials", "3")
    after = {t.number: t.values for t in sweep_trials(study_of(config))}
    assert second["finished"] == 3 and len(after) == 3
    assert all(after[number] == values for number, values in before.items())  # nothing repeated
    again = sweep(config, "--trials", "3")  # already complete: starts nothing
    assert len(sweep_trials(study_of(config))) == 3 and "has its 3 trials" in again["stop_reason"]


def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, epochs=[1], learning_rate={"low": 1e30, "high": 1e30})
    result = sweep(config, "--trials", "2")
    study = study_of(config)
    trials = sweep_trials(study)
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL] * 2
    assert all("loss became" in read_record(study, t).fail_reason for t in trials)
    assert result["finished"] == 2


def test_budget_stops_the_sweep_between_trials(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, epochs=[1], trials=5)
    result = sweep(config, "--set", "budget.max_dollars=0.0000001")
    assert len(sweep_trials(study_of(config))) == 1
    assert result["stop_reason"].startswith("budget reached")


def test_pareto_objective_records_two_values_and_scores_the_front_on_test(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, epochs=[1], objective="pareto")
    sweep(config)
    study = study_of(config)
    [trial] = sweep_trials(study)
    record = read_record(study, trial)
    assert len(trial.values) == 2 and trial.values[0] == record.validation.macro_f1
    assert record.test is not None  # the front (chosen on validation) is scored on test
