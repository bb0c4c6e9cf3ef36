"""evals.storage and evals.record: the objective arithmetic, URL redaction, and records written
to a study and read back (also from a study written before the record existed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evals.cost import Economics
from evals.data import Example
from evals.metrics import score
from evals.record import (
    SCHEMA_VERSION,
    CandidateRecord,
    Cap,
    Kind,
    SplitResult,
    add_record,
    add_test_result,
    compute_dollars,
    records,
    remember_data,
    study_data,
    write_trial_record,
)
from evals.storage import directions, objective_values, open_study, redact_url

LABELS = ["billing", "shipping", "technical"]


def test_roi_objective_is_monthly_dollars_by_hand():
    economics = Economics(tickets_per_month=2_000_000, cost_per_error=0.05)

    [value] = objective_values("roi", economics, accuracy=0.9, macro_f1=0.8, cost_per_item=2e-5)

    # 2,000,000 x ($0.00002 + 0.1 errors x $0.05) = 2,000,000 x 0.00502 = $10,040
    assert value == pytest.approx(2_000_000 * (2e-5 + 0.1 * 0.05))
    assert value == pytest.approx(10_040.0)


def test_roi_objective_ranks_cheaper_and_better_lower():
    economics = Economics(tickets_per_month=1_000_000, cost_per_error=0.5)

    worse = objective_values("roi", economics, 0.80, 0.80, 1e-5)[0]
    better = objective_values("roi", economics, 0.90, 0.90, 1e-5)[0]
    pricier = objective_values("roi", economics, 0.90, 0.90, 1e-3)[0]

    assert better < worse and better < pricier
    assert worse - better == pytest.approx(1_000_000 * 0.10 * 0.5)
    assert pricier - better == pytest.approx(1_000_000 * (1e-3 - 1e-5))
    assert directions("roi") == ["minimize"]


def test_pareto_objective_is_quality_and_cost():
    assert objective_values("pareto", Economics(), 0.9, 0.7, 3e-4) == [0.7, 3e-4]
    assert directions("pareto") == ["maximize", "minimize"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://roitune:s3cr%40t:pw@db.example.com:5432/studies",
         "postgresql://roitune:***@db.example.com:5432/studies"),
        ("postgresql+psycopg://alice:hunter2@10.0.0.5/optuna", "postgresql+psycopg://alice:***@10.0.0.5/optuna"),
        ("postgresql://alice@localhost/optuna", "postgresql://alice@localhost/optuna"),
        ("sqlite:///runs/roitune.db", "sqlite:///runs/roitune.db"),
    ],
)
def test_redact_url_hides_the_password(url, expected):
    redacted = redact_url(url)

    assert redacted == expected
    for secret in ("hunter2", "s3cr"):
        assert secret not in redacted


TEST = [Example("my card was charged twice", "billing"), Example("where is my parcel", "shipping"),
        Example("the app crashes", "technical"), Example("refund please", "billing"),
        Example("tracking is stuck", "shipping")]
VALIDATION = [Example("charged again", "billing"), Example("parcel lost", "shipping"),
              Example("screen froze", "technical")]


def baseline_record(items: list[Example], predictions: list[str | None], index: list[int] | None = None,
                    name: str = "classical") -> CandidateRecord:
    result = SplitResult.of(score([e.label for e in items], predictions, LABELS), predictions, LABELS, index)
    return CandidateRecord(kind=Kind.baseline, name=name, method=name, validation=result,
                           test=result if index is None else None, cost_per_item=1.5e-6,
                           cost_provenance="measured", cost_source="42.0 items/s on cpu", items_per_second=42.0,
                           measured_on="a test machine", measured_hardware="cpu-2core",
                           caps=(Cap("validation items", len(items), 5),) if index else ())


def test_a_record_comes_back_from_the_database_as_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    economics = Economics(tickets_per_month=1000, cost_per_error=0.1)
    study = open_study(url, "t", "roi")
    remember_data(study, LABELS, VALIDATION, TEST)
    predictions = ["billing", "shipping", "billing", None, "shipping"]  # 3 of 5 right, one invalid
    written = baseline_record(TEST, predictions)
    values = objective_values("roi", economics, written.validation.accuracy, written.validation.macro_f1, 1.5e-6)

    number = add_record(study, written, values)

    # A fresh handle on the same storage: everything comes back from the database.
    [read] = records(open_study(url, "t", "roi"))
    assert read == replace(written, number=number)
    assert read.validation.accuracy == pytest.approx(0.6)
    assert read.validation.predicted_labels(LABELS) == dict(enumerate(predictions))
    [trial] = open_study(url, "t", "roi").trials
    assert trial.value == pytest.approx(1000 * (1.5e-6 + 0.4 * 0.1))
    assert trial.user_attrs["schema"] == SCHEMA_VERSION and trial.user_attrs["kind"] == "baseline"
    assert trial.user_attrs["validation"]["predictions"] == [0, 1, 0, -1, 1]


def test_a_subset_keeps_its_item_positions_and_its_cap(tmp_path):
    study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "t", "pareto")
    remember_data(study, LABELS, VALIDATION, TEST)

    add_record(study, baseline_record([TEST[4], TEST[0]], ["shipping", "shipping"], [4, 0], "zero-shot"), [0.5, 1e-6])

    [read] = records(study)
    assert read.validation.items == [4, 0]
    assert read.validation.predicted_labels(LABELS) == {4: "shipping", 0: "shipping"}
    assert [cap.text() for cap in read.caps] == ["validation items 2 of 5"]


def test_a_trials_test_result_is_merged_into_its_record(tmp_path):
    study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "t", "roi")
    remember_data(study, LABELS, VALIDATION, TEST)
    number = add_record(study, replace(baseline_record(TEST, ["billing"] * 5), kind=Kind.trial, test=None), [1.0])
    tested = SplitResult.of(score([e.label for e in TEST], ["billing"] * 5, LABELS), ["billing"] * 5, LABELS)

    add_test_result(study, number, tested)

    [read] = records(study)
    assert read.test == tested and read.kind == Kind.trial


def test_a_study_written_before_the_record_still_opens(tmp_path):
    """Schema 1: loose keys (validation_scores, test_scores...), kind told by a name prefix."""
    import optuna

    study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "t", "roi")
    scores = {"n": 5, "accuracy": 0.6, "accuracy_ci": [0.2, 0.9], "macro_f1": 0.5, "macro_f1_ci": [0.1, 0.8],
              "per_class_f1": {"billing": 0.8}, "confusion": [[1]], "confusion_columns": ["billing"]}
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, values=[1.0], user_attrs={
        "kind": "baseline", "name": "baseline:hosted:gpt-4o-mini", "method": "baseline:hosted:gpt-4o-mini",
        "test_scores": scores, "test_predictions": [0, 1, 0, -1, 1], "cost_per_item": 2e-4,
        "cost_provenance": "measured", "items_per_second": 3.0}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, values=[2.0], user_attrs={
        "kind": "trial", "name": "trial 1: lora r8", "method": "lora", "validation_scores": scores,
        "validation_predictions": [0, 0, 0, 0, 0], "cost_per_item": 1e-5, "train_dollars": 0.25,
        "adapter_path": "runs/trial-0001"}))
    study.set_user_attr("trial_test:1", {"test_scores": scores, "test_predictions": [1, 1, 1, 1, 1]})

    hosted, trial = records(study)

    assert (hosted.kind, hosted.hosted, hosted.validation) == (Kind.baseline, True, None)
    assert hosted.test.accuracy == 0.6 and hosted.test.predictions == [0, 1, 0, -1, 1]
    assert (trial.kind, trial.method, trial.compute_dollars) == (Kind.trial, "lora", 0.25)
    assert trial.validation.predictions == [0] * 5 and trial.test.predictions == [1] * 5
    assert compute_dollars(study) == 0.25


def test_remember_data_refuses_a_study_made_for_other_labels(tmp_path):
    study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "t", "roi")
    remember_data(study, LABELS, VALIDATION, TEST)
    remember_data(study, LABELS, VALIDATION, TEST)  # the same labels again: fine

    with pytest.raises(ValueError, match="other labels"):
        remember_data(study, ["a", "b"], VALIDATION, TEST)
    data = study_data(study)
    assert data.gold("test") == [e.label for e in TEST] and data.gold("validation") == [e.label for e in VALIDATION]


def test_the_most_probable_labels_are_kept_per_item():
    labels = [f"l{i}" for i in range(12)]
    distribution = {label: (i + 1) / 78 for i, label in enumerate(labels)}  # l11 the most probable
    predicted = ["l11"]
    result = SplitResult.of(score(["l11"], predicted, labels), predicted, labels, distributions=[distribution])

    assert result.top_labels == [[11, 10, 9, 8, 7, 6, 5, 4]]  # TOP_K = 8, most probable first
    assert result.top_probs[0][0] == pytest.approx(12 / 78) and len(result.top_probs[0]) == 8
    assert SplitResult.of(score(["l11"], predicted, labels), predicted, labels).top_labels is None


def test_a_trial_whose_record_is_half_written_still_reads(tmp_path):
    """Readers see running trials while their record is written one attribute at a time."""
    import optuna

    study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "t", "roi")
    trial = study.ask()
    trial.set_user_attr("kind", "trial")  # the first write of a record in progress

    [read] = records(study)
    assert (read.kind, read.state, read.validation) == (Kind.trial, "RUNNING", None)
    write_trial_record(trial, CandidateRecord(kind=Kind.trial, name="trial 0: lora", method="lora"))
    assert records(study)[0].name == "trial 0: lora" and study.trials[0].user_attrs["schema"] == SCHEMA_VERSION
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
