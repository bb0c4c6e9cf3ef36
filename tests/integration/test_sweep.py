"""The sweep: every method trains for real and beats the untrained base; resume; failures;
budget stops. A tiny random Llama (loaded by path) keeps these fast; the real bundled model is
exercised by test_sweep_real.py."""

from __future__ import annotations

import json

import optuna
import pytest
from typer.testing import CliRunner

from evals.record import read_record, sweep_trials
from evals.storage import load_existing_study
from optimizer.cli import app
from sweep_fixtures import tiny_config, write_tiny_model

SMOLLM = "smollm2-135m-instruct"

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, smollm_tokenizer):
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model"), smollm_tokenizer)


def sweep(config, *flags):
    result = runner.invoke(app, ["sweep", "-c", str(config), "--json", *flags])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def study_of(config):
    from optimizer.config import load_config

    cfg = load_config(config)
    return load_existing_study(cfg.storage, cfg.study)


def untrained_accuracy(model_dir, config, head: str) -> float:
    """Validation accuracy of the base model with a fresh adapter (what training must beat)."""
    from evals.classify import HeadClassifier, LabelScorer, PromptTemplate
    from evals.data import load_splits
    from evals.models import load_causal_lm, load_sequence_classifier, load_tokenizer
    from optimizer.config import load_config

    cfg = load_config(config)
    splits = load_splits(cfg.data)
    tokenizer = load_tokenizer(str(model_dir))
    if head == "classifier":
        import torch

        torch.manual_seed(cfg.seed)
        predictor = HeadClassifier(load_sequence_classifier(str(model_dir), splits.labels), tokenizer, splits.labels)
    else:
        template = PromptTemplate(cfg.task.instruction, tuple(splits.labels), list_labels=False)
        predictor = LabelScorer(load_causal_lm(str(model_dir)), tokenizer, template)
    predictions = predictor.predict([e.text for e in splits.validation])
    return sum(p.label == e.label for p, e in zip(predictions, splits.validation)) / len(splits.validation)


@pytest.mark.slow
@pytest.mark.parametrize("method,head,epochs", [("lora", "generative", 2), ("qlora", "generative", 2),
                                                ("dpo", "generative", 2),
                                                # a new, random head needs more (cheap: ticket text only) steps
                                                ("lora", "classifier", 6)])
def test_each_method_trains_and_beats_the_untrained_base(tmp_path, method, head, epochs):
    # The real bundled model: a random tiny one needs far more steps to learn anything.
    config = tiny_config(tmp_path, SMOLLM, methods=[method], heads=[head], dpo_pairs=["mined"],
                         epochs=[epochs], learning_rate={"low": 2e-3, "high": 2e-3}, per_label=(8, 6, 4))
    sweep(config)
    study = study_of(config)
    [trial] = sweep_trials(study)
    record = read_record(study, trial)
    assert record.state == "COMPLETE", record.fail_reason
    assert record.method == method and record.settings["head"] == head
    assert record.training.loss_last < record.training.loss_first
    trained = record.validation.accuracy
    untrained = untrained_accuracy(SMOLLM, config, head)
    assert trained >= untrained + 0.25, (trained, untrained)
    # Priced like a baseline, on a named machine, with the adapter saved where the record says.
    assert record.cost_per_item > 0 and record.items_per_second > 0 and record.compute_dollars > 0
    assert record.measured_on and record.meter.timed_items >= 64
    from pathlib import Path

    adapter = Path(record.adapter_path)
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "roitune.json").is_file()
    if method == "dpo":
        assert record.details["dpo_pairs_used"] > 0


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
