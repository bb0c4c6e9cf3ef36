import pytest

from evals.candidates import Candidate
from evals.cost import Economics
from evals.recommend import rank, recommend

LABELS = ["billing", "refund", "login", "shipping"]
N = 400
GOLD = [LABELS[i % 4] for i in range(N)]


def predictions(wrong: int) -> list[str | None]:
    """Gold labels, except the first ``wrong`` items (nested, so candidates pair cleanly)."""
    return [LABELS[(i + 1) % 4] if i < wrong else g for i, g in enumerate(GOLD)]


def candidate(name: str, kind: str, wrong: int, cost_per_item: float, **kw) -> Candidate:
    return Candidate(
        name=name,
        kind=kind,
        accuracy=1 - wrong / N,
        cost_per_item=cost_per_item,
        cost_provenance="measured",
        predictions=predictions(wrong),
        **kw,
    )


def adapter(wrong: int, cost_per_item: float = 1e-5) -> Candidate:
    return candidate(
        "LoRA adapter", "trial", wrong, cost_per_item, trial_number=3, items_per_second=500.0
    )


def test_cheaper_baseline_within_the_adapters_interval_wins():
    lora = adapter(wrong=40)  # 90.0%
    few_shot = candidate("few-shot prompt", "baseline", 44, 2e-6)  # 89.0%: b=4, c=0

    rec = recommend([lora, few_shot], GOLD, Economics(), compute_dollars=50)

    assert rec.reason == "baseline_enough"
    assert rec.winner == "few-shot prompt"
    assert rec.sentence.startswith("Don't fine-tune: few-shot prompt is as accurate")
    assert "1.0 points higher" in rec.sentence
    assert "McNemar p=0.12" in rec.sentence  # exact binomial, 2 x 0.5^4
    assert "costs $40/month less, saving $2,490/month" in rec.sentence  # 5M x (1e-5 - 2e-6)
    assert rec.evidence["comparison"]["mcnemar"]["p_value"] == pytest.approx(0.125)


def test_adapter_that_clearly_wins_reports_savings_and_payback():
    lora = adapter(wrong=20)  # 95%
    classical = candidate("tf-idf + logistic regression", "baseline", 80, 1e-6)  # 80%

    rec = recommend([lora, classical], GOLD, Economics(), compute_dollars=50)

    assert rec.reason == "fine_tune"
    assert rec.winner == "LoRA adapter"
    assert rec.sentence.startswith(
        "Fine-tune: LoRA adapter (trial 3) classifies at $0.00001 an item"
    )
    assert "15.0 points higher accuracy" in rec.sentence
    assert "McNemar p<0.001" in rec.sentence
    # 5M x ($0.0005 - $0.00001) = $2,450/month; (50 + 8 x 100) / 2450 months = 10.6 days.
    assert "saving $2,450/month against claude-haiku" in rec.sentence
    assert "paying back in 11 days" in rec.sentence
    assert rec.evidence["comparison"]["accuracy_delta"] == pytest.approx(0.15)


def test_payback_longer_than_a_month_is_in_months():
    rec = recommend([adapter(wrong=20)], GOLD, Economics(), compute_dollars=4050)
    assert "paying back in 2.0 months" in rec.sentence  # (4050 + 800) / 2450 = 1.98


def test_nothing_cheaper_than_current_keeps_it():
    lora = adapter(wrong=20, cost_per_item=0.001)
    hosted = candidate("gpt-4o-mini", "baseline", 30, 0.0006)

    rec = recommend([lora, hosted], GOLD, Economics(), compute_dollars=50)

    assert rec.reason == "keep_current"
    assert rec.winner is None
    assert rec.sentence.startswith(
        "Keep claude-haiku: no candidate costs less than its $2,500/month"
    )
    assert "gpt-4o-mini, would cost $3,000/month" in rec.sentence


def test_no_scored_candidates_says_what_is_missing():
    unscored = Candidate("LoRA adapter", "trial", None, 1e-5, "measured")
    rec = recommend([unscored], GOLD, Economics(), compute_dollars=0)

    assert rec.reason == "no_metrics"
    assert rec.winner is None
    assert "no candidate has an accuracy" in rec.sentence


def test_unknown_current_error_rate_is_said_when_errors_cost_money():
    rec = recommend([adapter(wrong=20)], GOLD, Economics(cost_per_error=0.01), compute_dollars=0)
    assert "error rate of claude-haiku is unknown" in rec.sentence


def test_rank_charges_the_dedicated_floor_only_to_self_served_candidates():
    econ = Economics(dedicated_instance=True, hardware_dollars_per_hour=1.0)
    hosted = candidate("gpt-4o-mini", "baseline", 20, 1e-5)  # no measured throughput
    lora = adapter(wrong=20)

    ranked = {r.candidate.name: r.roi for r in rank([lora, hosted], econ, compute_dollars=0)}

    assert ranked["gpt-4o-mini"].fixed_monthly == 0.0
    assert ranked["LoRA adapter"].fixed_monthly == 730.0
    assert [r.candidate.name for r in rank([lora, hosted], econ, compute_dollars=0)] == [
        "gpt-4o-mini",
        "LoRA adapter",
    ]


def test_without_a_winning_adapter_the_cheapest_saver_is_named():
    lora = adapter(wrong=20, cost_per_item=0.001)  # costs more than today
    # Baselines are stored as study trials too; their trial number is not shown.
    classical = candidate("tf-idf + logistic regression", "baseline", 34, 1e-6, trial_number=0)

    rec = recommend([lora, classical], GOLD, Economics(), compute_dollars=50)

    assert rec.reason == "cheapest"
    assert rec.winner == "tf-idf + logistic regression"
    assert rec.sentence.startswith(
        "Use tf-idf + logistic regression (91.5% accuracy, $0.000001 an item), "
        "saving $2,495/month against claude-haiku"
    )
    assert "the best adapter, LoRA adapter (trial 3), would cost $5,000/month" in rec.sentence


def test_validation_only_trials_do_not_compete_with_test_scores():
    finalist = adapter(wrong=60)  # 85% on test
    finalist.name = "finalist"
    # Not a finalist: 95% on validation, a different set of items; it must not become the best adapter.
    runner_up = candidate("runner-up", "trial", 20, 1e-5, split="validation", trial_number=4)
    classical = candidate("tf-idf + logistic regression", "baseline", 40, 1e-6)  # 90% on test

    rec = recommend([finalist, runner_up, classical], GOLD, Economics(), compute_dollars=50)

    assert rec.evidence["best_adapter"] == "finalist"
    assert [r["name"] for r in rec.evidence["ranking"]] == ["tf-idf + logistic regression", "finalist"]
    assert rec.winner == "tf-idf + logistic regression"
