"""The decision rule (docs/decision-rule.md): non-inferior to the current solution on validation,
then the cheapest in monthly dollars; test only reports. One test per way the verdict used to go
wrong while every number in it was computed correctly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evals.cost import Economics
from evals.metrics import score
from evals.recommend import Current, decide
from evals.record import CandidateRecord, Kind, SplitResult, StudyData
from evals.report import build_report, priced

LABELS = ["billing", "refund", "login", "shipping"]
N = 400
GOLD = [LABELS[i % 4] for i in range(N)]
DATA = StudyData(labels=LABELS, validation_gold=GOLD, validation_texts=[f"v{i}" for i in range(N)],
                 test_gold=GOLD, test_texts=[f"t{i}" for i in range(N)])


def predictions(wrong: int, items: range | list[int] = range(N)) -> list[str]:
    """Gold labels, except the first ``wrong`` of ``items`` (nested: candidates pair cleanly)."""
    return [LABELS[(LABELS.index(GOLD[i]) + 1) % 4] if k < wrong else GOLD[i] for k, i in enumerate(items)]


def result(wrong: int, items: list[int] | None = None) -> SplitResult:
    positions = list(range(N)) if items is None else items
    predicted = predictions(wrong, positions)
    gold = [GOLD[i] for i in positions]
    return SplitResult.of(score(gold, predicted, LABELS), predicted, LABELS, items)


def record(name: str, kind: Kind, wrong: int, cost_per_item: float, *, items: list[int] | None = None,
           number: int = 0, **changes) -> CandidateRecord:
    measured = dict(cost_provenance="measured", items_per_second=500.0, measured_on="this machine",
                    measured_hardware="cpu-2core")
    return CandidateRecord(kind=kind, name=name, method=name, validation=result(wrong, items),
                           cost_per_item=cost_per_item, number=number, **{**measured, **changes})


def verdict(found, economics=Economics(), compute_dollars=50.0):
    return decide(found, DATA, economics, compute_dollars=compute_dollars)[2]


def test_a_cheap_baseline_at_30_percent_is_never_recommended():
    cheap = record("classical", Kind.baseline, wrong=280, cost_per_item=1e-7)  # 30% accurate
    adapter = record("trial 1: lora", Kind.trial, wrong=20, cost_per_item=1e-5, number=1)

    # The defaults: errors cost $0 and the current solution's accuracy is unknown.
    unknown = verdict([cheap, adapter])
    assert unknown.reason == "missing_current_quality" and unknown.winner is None
    assert "Missing number: the accuracy of claude-haiku" in unknown.sentence
    assert "roitune baseline --only hosted" in unknown.sentence and "saving $" not in unknown.sentence
    assert "trial 1: lora" in unknown.sentence  # the most accurate so far, not the cheapest

    known = verdict([cheap, adapter], Economics(current_error_rate=0.10))
    assert known.winner == "trial 1: lora" and known.reason == "replace"
    assert known.sentence.startswith("Fine-tune: trial 1: lora: it is within 1 point of claude-haiku or better")


def test_a_better_test_score_on_a_trial_not_chosen_changes_nothing():
    chosen = record("trial 1", Kind.trial, wrong=20, cost_per_item=1e-5, number=1, test=result(60))
    other = record("trial 2", Kind.trial, wrong=60, cost_per_item=1e-5, number=2)
    economics = Economics(current_error_rate=0.10)

    before = verdict([chosen, other], economics)
    after = verdict([chosen, replace(other, test=result(0))], economics)  # 100% on test

    assert before == after and after.winner == "trial 1"


def test_23_of_24_on_a_capped_subset_does_not_beat_380_of_400():
    few = record("few-shot", Kind.baseline, wrong=1, cost_per_item=1e-7, items=list(range(0, N, 17))[:24])
    adapter = record("trial 1", Kind.trial, wrong=20, cost_per_item=1e-5, number=1)
    assert (few.validation.correct, few.validation.n) == (23, 24)

    current, ranked, rec = decide([few, adapter], DATA, Economics(current_error_rate=0.10), compute_dollars=50)

    assert rec.winner == "trial 1"
    standing = {r.record.name: r.judgement for r in ranked}
    assert standing["few-shot"].standing == "undecided" and standing["few-shot"].items_needed > 24
    assert standing["trial 1"].standing == "non_inferior"


def test_a_capped_baseline_pairs_with_the_current_solution_on_the_items_both_scored():
    items = list(range(0, N, 2))  # 200 of 400
    hosted = record("hosted:claude-haiku", Kind.baseline, wrong=20, cost_per_item=5e-4, hosted=True,
                    items_per_second=None)
    few = record("few-shot", Kind.baseline, wrong=10, cost_per_item=1e-6, items=items, number=3)

    current, ranked, rec = decide([hosted, few], DATA, Economics(), compute_dollars=0)

    judged = next(r for r in ranked if r.record.name == "few-shot").judgement
    assert judged.difference.paired and judged.difference.n == 200


def test_wording_never_claims_more_than_the_test_shows():
    adapter = record("trial 1", Kind.trial, wrong=38, cost_per_item=1e-5, number=1)  # 90.5%
    hosted = record("hosted:claude-haiku", Kind.baseline, wrong=36, cost_per_item=5e-4, hosted=True,
                    items_per_second=None)  # 91.0%: 2 discordant pairs, McNemar p = 0.5

    rec = verdict([adapter, hosted], Economics(current_monthly_cost=2500))

    # Not significantly different, but the interval reaches below -1 point: undecided, not "as accurate".
    assert rec.reason == "not_enough_items"
    assert "as accurate as" not in rec.sentence
    assert "not shown to be within 1 point of claude-haiku" in rec.sentence
    assert "-0.5 points, 95% CI -1.7..+0.6 on 400 paired validation items, McNemar p=0.50" in rec.sentence


def test_a_live_hosted_baseline_becomes_the_current_solution():
    hosted = record("hosted:claude-haiku-4-5", Kind.baseline, wrong=80, cost_per_item=5e-4, hosted=True,
                    items_per_second=None)  # 80% measured
    economics = Economics(current_error_rate=0.02)  # entered: 98%

    current = Current.of(economics, [hosted])

    assert current.provenance == "measured" and current.error_rate == pytest.approx(0.20)
    assert current.record is hosted
    report = build_report([hosted, record("trial 1", Kind.trial, wrong=20, cost_per_item=1e-5, number=1)], DATA,
                          economics, compute_dollars=0)
    assert report.current.error_rate == pytest.approx(0.20)
    assert report.current_monthly_cost == pytest.approx(2500)  # errors cost $0 by default
    assert report.recommendation.winner == "trial 1"


def test_nothing_cheaper_than_current_keeps_it():
    adapter = record("trial 1", Kind.trial, wrong=20, cost_per_item=0.001, number=1)

    rec = verdict([adapter], Economics(current_error_rate=0.10))

    assert rec.reason == "keep_current" and rec.winner is None
    assert "would cost $5,000/month against $2,500" in rec.sentence


def test_a_clearly_worse_candidate_is_said_to_be_worse():
    adapter = record("trial 1", Kind.trial, wrong=120, cost_per_item=1e-5, number=1)  # 70%

    rec = verdict([adapter], Economics(current_error_rate=0.10))

    assert rec.reason == "keep_current"
    assert "worse than claude-haiku by more than 1 point" in rec.sentence


def test_savings_and_payback_of_the_winner_by_hand():
    adapter = record("trial 1", Kind.trial, wrong=20, cost_per_item=1e-5, number=1)

    current, ranked, rec = decide([adapter], DATA, Economics(current_error_rate=0.10), compute_dollars=50)

    # 5M x ($0.0005 - $0.00001) = $2,450/month; (50 + 8 x 100) / 2450 months = 10.6 days.
    assert ranked[0].roi.monthly_savings == pytest.approx(2450)
    assert "saving $2,450/month (payback 11 days)" in rec.sentence


def test_a_cheaper_non_inferior_baseline_wins_and_the_best_adapter_is_named():
    adapter = record("trial 1", Kind.trial, wrong=20, cost_per_item=1e-5, number=1)
    classical = record("classical", Kind.baseline, wrong=24, cost_per_item=1e-7)

    rec = verdict([adapter, classical], Economics(current_error_rate=0.10))

    assert rec.winner == "classical" and rec.sentence.startswith("Use classical: it is within 1 point")
    assert "The best fine-tuned candidate, trial 1, is as accurate but costs $50/month more." in rec.sentence


def test_no_candidate_with_a_validation_result_says_so():
    rec = verdict([replace(record("trial 1", Kind.trial, 20, 1e-5), validation=None)])
    assert rec.reason == "no_metrics" and "no candidate has a validation result" in rec.sentence


def test_the_dedicated_floor_is_charged_only_to_self_served_candidates():
    economics = Economics(dedicated_instance=True, hardware_dollars_per_hour=1.0, current_error_rate=0.1)
    hosted = record("gpt-4o-mini", Kind.baseline, wrong=20, cost_per_item=1e-5, hosted=True,
                    items_per_second=None)
    adapter = record("trial 1", Kind.trial, wrong=20, cost_per_item=1e-5, number=1)

    _, ranked, _ = decide([adapter, hosted], DATA, economics, compute_dollars=0)

    fixed = {r.record.name: r.roi.fixed_monthly for r in ranked}
    assert fixed == {"gpt-4o-mini": 0.0, "trial 1": 730.0}


def test_a_cpu_measured_candidate_priced_for_an_l4_is_an_estimate():
    adapter = record("trial 1", Kind.trial, wrong=20, cost_per_item=1e-5, number=1)

    [on_cpu] = priced([adapter], Economics(hardware="cpu-2core"))
    [on_l4] = priced([adapter], Economics(hardware="nvidia-l4"))

    assert on_cpu.cost_provenance == "measured"
    assert on_l4.cost_provenance == "estimated"
    assert on_l4.cost_per_item == pytest.approx(0.805 / (3600 * 500))
    assert "measured on this machine" in on_l4.cost_source and "roitune meter" in on_l4.cost_source


def test_an_estimate_below_the_margin_on_few_items_is_not_called_worse():
    few = record("classical", Kind.baseline, wrong=2, cost_per_item=1e-7, items=list(range(0, N, 50)))  # 6 of 8

    _, ranked, rec = decide([few], DATA, Economics(current_error_rate=0.10), compute_dollars=0)

    judged = ranked[0].judgement
    assert judged.standing == "undecided" and judged.items_needed is None  # -15 points, CI reaching above -1
    assert rec.reason == "keep_current"
    assert "worse than" not in rec.sentence and "its estimate is already below the margin" in rec.sentence
