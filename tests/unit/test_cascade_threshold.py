"""evals.cascade: the threshold and the monthly dollars of a cascade, by hand, on a small table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evals.cascade import Pairing, Prices, build, choose, curve, pair, result_at
from evals.cost import Economics
from evals.metrics import score
from evals.record import Calibration, CandidateRecord, Kind, SplitResult, StudyData

# Five items, most confident first. The local model is right on 1, 2 and 4; the fallback on all but 2.
CONFIDENCE = [0.95, 0.90, 0.80, 0.60, 0.40]
LOCAL_RIGHT = [True, True, False, True, False]
FALLBACK_RIGHT = [True, False, True, True, True]
# 1,000 items a month, $0.0001 local, $0.01 fallback, $0.10 an error.
PRICES = Prices(local=0.0001, fallback=0.01, volume=1000, cost_per_error=0.1)


def table_pairing() -> Pairing:
    return Pairing(items=list(range(5)), confidence=np.array(CONFIDENCE), local_predictions=np.zeros(5, dtype=int),
                   local_right=np.array(LOCAL_RIGHT), fallback_predictions=np.zeros(5, dtype=int),
                   fallback_right=np.array(FALLBACK_RIGHT, dtype=float))


def test_the_threshold_and_monthly_dollars_match_the_hand_computation():
    points = curve(table_pairing(), PRICES)

    # threshold: local items, errors (local + fallback), $/item = 0.0001 + escalated share x 0.01,
    # monthly = 1000 x ($/item + error rate x 0.1)
    by_hand = {
        0.40: (1.0, 2, 0.0001),  # all local: items 3 and 5 wrong -> 1000 x (0.0001 + 0.4 x 0.1) = 40.1
        0.60: (0.8, 1, 0.0021),  # item 5 to the fallback (right): 1000 x (0.0021 + 0.02) = 22.1
        0.80: (0.6, 1, 0.0041),  # items 4, 5 escalated: 24.1
        0.90: (0.4, 0, 0.0061),  # items 3, 4, 5 escalated, all right: 6.1
        0.95: (0.2, 1, 0.0081),  # the fallback also answers item 2, wrongly: 28.1
        1.00: (0.0, 1, 0.0101),  # the fallback alone (plus the local run): 30.1
    }
    assert [p.threshold for p in points] == list(by_hand)
    for p in points:
        coverage, errors, per_item = by_hand[p.threshold]
        assert p.coverage == pytest.approx(coverage)
        assert p.accuracy == pytest.approx(1 - errors / 5)
        assert p.cost_per_item == pytest.approx(per_item)
        assert p.monthly_cost == pytest.approx(1000 * (per_item + errors / 5 * 0.1))

    chosen = choose(points)
    assert chosen.threshold == 0.90 and chosen.coverage == pytest.approx(0.4)
    assert chosen.monthly_cost == pytest.approx(6.1)


def test_equal_costs_keep_the_most_items_local():
    free_errors = Prices(local=0.0001, fallback=0.01, volume=1000, cost_per_error=0.0)
    chosen = choose(curve(table_pairing(), free_errors))
    assert chosen.coverage == 1.0 and chosen.threshold == 0.40  # errors cost nothing: never pay the fallback
    tied = choose(curve(table_pairing(), Prices(0.0, 0.0, 1000, 0.0)))
    assert tied.coverage == 1.0


def test_tied_confidences_move_together():
    pairing = table_pairing()
    tied = Pairing(pairing.items, np.array([0.9, 0.9, 0.8, 0.8, 0.8]), pairing.local_predictions,
                   pairing.local_right, pairing.fallback_predictions, pairing.fallback_right)
    assert [(p.threshold, p.coverage) for p in curve(tied, PRICES)] == [(0.8, 1.0), (0.9, 0.4), (1.0, 0.0)]


LABELS = ["a", "b", "c"]
GOLD = ["a", "a", "b", "b", "c"]


def _record(name: str, predictions: list[str], *, probs: list[float] | None = None, cost: float = 0.0,
            number: int = 0, hosted: bool = False) -> CandidateRecord:
    distributions = None
    if probs is not None:  # the top label at `p`, the other two share the rest
        distributions = [{label: (p if label == pred else (1 - p) / 2) for label in LABELS}
                         for pred, p in zip(predictions, probs)]
    result = SplitResult.of(score(GOLD, predictions, LABELS), predictions, LABELS, distributions=distributions)
    calibration = Calibration("temperature", 3, 5, (0.0, 0.0), temperature=1.0) if probs else None
    return CandidateRecord(kind=Kind.baseline, name=name, method=name, validation=result, test=result,
                           cost_per_item=cost, hosted=hosted, calibration=calibration, number=number,
                           items_per_second=None if hosted else 100.0)


DATA = StudyData(LABELS, GOLD, ["t"] * 5, GOLD, ["t"] * 5)
# The local model is right on items 0, 1 and 3, surest of 0 and 1; the hosted one is right on all but item 1.
LOCAL = _record("local", ["a", "a", "c", "b", "a"], probs=[0.95, 0.90, 0.80, 0.60, 0.40], cost=0.0001, number=0)
HOSTED = _record("hosted:x", ["a", "c", "b", "b", "c"], cost=0.01, number=1, hosted=True)
ECONOMICS = Economics(tickets_per_month=1000, current_monthly_cost=10.0, cost_per_error=0.1)


def test_a_cascade_into_the_live_hosted_baseline_is_scored_on_its_parts_answers():
    record, why = build(LOCAL, HOSTED, DATA, ECONOMICS, current_cost_per_item=0.01, assumed_accuracy=None,
                        current_name="x")

    assert record is not None, why
    parts = record.cascade
    assert (parts.local_number, parts.fallback_number, parts.threshold) == (0, 1, 0.90)
    assert parts.coverage == pytest.approx(0.4) and parts.test_coverage == pytest.approx(0.4)
    assert not parts.assumed and record.kind == Kind.cascade
    # Items 0, 1 local (right), items 2, 3, 4 from the hosted model (right): 100%.
    assert record.validation.accuracy == 1.0 and record.test.accuracy == 1.0
    assert record.validation.predicted_labels(LABELS) == dict(enumerate(GOLD))
    assert record.cost_per_item == pytest.approx(0.0001 + 0.6 * 0.01)


def test_an_assumed_fallback_gives_an_expected_accuracy_and_says_so():
    record, why = build(LOCAL, None, DATA, ECONOMICS, current_cost_per_item=0.01, assumed_accuracy=0.9,
                        current_name="claude-haiku")

    assert record is not None, why
    parts = record.cascade
    assert parts.assumed and parts.fallback == "claude-haiku" and parts.assumed_fallback_accuracy == 0.9
    # Each escalated item is right with probability 0.9. At 0.90, items 0, 1 local (right) and three
    # escalated: expected accuracy (2 + 2.7) / 5 = 0.94, monthly 1000 x (0.0061 + 0.06 x 0.1) = 12.1;
    # all local: 1000 x (0.0001 + 0.4 x 0.1) = 40.1; at 0.60 (item 4 escalated):
    # 1000 x (0.0021 + (1 + 0.1) / 5 x 0.1) = 24.1. 0.90 is the cheapest.
    assert parts.threshold == 0.90
    assert record.validation.accuracy == pytest.approx(0.94)
    assert math.isnan(record.validation.macro_f1)
    assert record.validation.predictions[2:] == [-1, -1, -1]  # escalated: unknown answers
    assert "assumed" in record.details["assumption"] and "90.0%" in record.details["assumption"]


def test_a_cascade_that_saves_nothing_is_not_recorded():
    free = ECONOMICS.model_copy(update={"cost_per_error": 0.0})
    record, why = build(LOCAL, HOSTED, DATA, free, current_cost_per_item=0.01, assumed_accuracy=None,
                        current_name="x")
    assert record is None and "not worth it" in why


def test_pairing_keeps_the_items_both_parts_scored():
    partial = SplitResult.of(score(GOLD[:3], ["a", "c", "b"], LABELS), ["a", "c", "b"], LABELS, items=[0, 1, 2])
    hosted = CandidateRecord(kind=Kind.baseline, name="hosted:x", method="hosted", validation=partial, hosted=True)
    pairing = pair(LOCAL, hosted, "validation", DATA)
    assert pairing.items == [0, 1, 2]
    assert list(pairing.fallback_right) == [1.0, 0.0, 1.0]
    assert list(pairing.local_right) == [True, True, False]
    result = result_at(pairing, 0.9, DATA, "validation", assumed=False)
    assert result.items == [0, 1, 2] and result.accuracy == 1.0
