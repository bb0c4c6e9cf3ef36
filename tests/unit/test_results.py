"""evals.results: the objective arithmetic, URL redaction, and baselines read back from a study."""

from __future__ import annotations

import pytest

from evals.baselines import BaselineResult
from evals.cost import Economics, Figure, Provenance
from evals.data import Example
from evals.metrics import score
from evals.results import (
    candidates,
    directions,
    objective_values,
    open_study,
    prediction_indices,
    record_baseline,
    redact_url,
    remember_split,
)

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


def test_prediction_indices():
    assert prediction_indices(["shipping", None, "nonsense", "billing"], LABELS) == [1, -1, -1, 0]


def make_result(test: list[Example], predictions: list[str | None], name: str = "classical") -> BaselineResult:
    return BaselineResult(
        name=name,
        scores=score([e.label for e in test], predictions, LABELS),
        predictions=predictions,
        items=test,
        cost_per_item=Figure(1.5e-6, Provenance.measured, "42.0 items/s on cpu"),
        items_per_second=42.0,
        tokens_per_item=None,
    )


TEST = [Example("my card was charged twice", "billing"), Example("where is my parcel", "shipping"),
        Example("the app crashes", "technical"), Example("refund please", "billing"),
        Example("tracking is stuck", "shipping")]


def test_candidates_reads_back_a_recorded_baseline(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    economics = Economics(tickets_per_month=1000, cost_per_error=0.1)
    study = open_study(url, "t", "roi")
    remember_split(study, LABELS, TEST)
    predictions = ["billing", "shipping", "billing", None, "shipping"]  # 3 of 5 right, one invalid
    result = make_result(TEST, predictions)

    number = record_baseline(study, result, economics, "roi", TEST)

    # A fresh handle on the same storage: everything comes back from the database.
    [candidate] = candidates(open_study(url, "t", "roi"))
    assert candidate.trial_number == number
    assert (candidate.name, candidate.kind, candidate.split) == ("baseline:classical", "baseline", "test")
    assert candidate.accuracy == pytest.approx(0.6)
    assert candidate.macro_f1 == pytest.approx(result.scores.macro_f1)
    assert candidate.accuracy_ci == pytest.approx(result.scores.accuracy_ci)
    assert candidate.predictions == predictions
    assert candidate.cost_per_item == 1.5e-6
    assert candidate.cost_provenance == "measured"
    assert candidate.items_per_second == 42.0
    assert candidate.extra["n"] == 5
    [trial] = open_study(url, "t", "roi").trials
    assert trial.value == pytest.approx(1000 * (1.5e-6 + 0.4 * 0.1))
    assert trial.user_attrs["test_predictions"] == [0, 1, 0, -1, 1]


def test_a_subset_baseline_keeps_its_item_positions(tmp_path):
    study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "t", "pareto")
    remember_split(study, LABELS, TEST)
    subset = [TEST[4], TEST[0]]

    record_baseline(study, make_result(subset, ["shipping", "shipping"], "zero-shot"), Economics(), "pareto", TEST)

    [trial] = study.trials
    assert trial.user_attrs["test_items"] == [4, 0]
    assert trial.values == pytest.approx([trial.user_attrs["test_scores"]["macro_f1"], 1.5e-6])
    [candidate] = candidates(study)
    assert candidate.accuracy == pytest.approx(0.5)
    assert candidate.predictions is None  # not aligned with the full test split, so not offered


def test_remember_split_refuses_a_study_made_for_other_labels(tmp_path):
    study = open_study(f"sqlite:///{tmp_path / 'study.db'}", "t", "roi")
    remember_split(study, LABELS, TEST)
    remember_split(study, LABELS, TEST)  # the same labels again: fine

    with pytest.raises(ValueError, match="other labels"):
        remember_split(study, ["a", "b"], TEST)
    assert study.user_attrs["test_gold"] == [e.label for e in TEST]
