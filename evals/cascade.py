"""Cascades: a cheap local candidate answers what it is confident about, a fallback the rest.

For a local candidate L (calibrated, see ``evals.calibration``) and a fallback F, on the items
both scored, answering locally when L's confidence is at least ``t`` costs a month

    volume x (L $/item + escalation share x F $/item + error rate x cost per error) + fixed,

where L runs on every item (its confidence decides), the errors are those of whichever part
answered, and the fixed monthly cost is the one of any self-served candidate (an always-on
instance when ``economics.dedicated_instance``). The threshold is chosen on the validation split
(the lowest monthly dollars; among equal ones the highest coverage, so fewer items depend on the
fallback), then applied unchanged to test.

The fallback is the hosted baseline when it ran live (its own answers on the same items), or any
other candidate. Without a live hosted run, the current solution is the fallback at its entered
error rate: each escalated item is then right with the *assumed* probability 1 - error rate, the
cascade's accuracy is an expected value, and its record says so (``CascadeParts.assumed``).

A cascade is recorded only when it is worth it: cheaper a month than its local candidate alone
and than its fallback alone. Pure numpy: the dashboard redraws the threshold curve from the study.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evals.calibration import confidences, top_probabilities
from evals.cost import HOURS_PER_MONTH, Economics, monthly_cost
from evals.metrics import score, wilson_interval
from evals.record import CandidateRecord, CascadeParts, Kind, SplitResult, StudyData

ASSUMPTION = ("the fallback's accuracy on escalated items is assumed to be {accuracy} (the entered "
              "economics.current_error_rate), not measured: run the hosted baseline live to measure it")


@dataclass(frozen=True)
class Pairing:
    """The items of one split that both parts scored, in the local candidate's order."""

    items: list[int]
    confidence: np.ndarray  # the local candidate's calibrated confidence
    local_predictions: np.ndarray  # label indices, -1 = invalid
    local_right: np.ndarray  # bool
    fallback_predictions: np.ndarray  # label indices; -1 = invalid, or not known (assumed fallback)
    fallback_right: np.ndarray  # 1.0 / 0.0 measured, or the assumed probability of being right


@dataclass(frozen=True)
class Prices:
    """What an item costs from each part, and the monthly terms that do not depend on the threshold."""

    local: float
    fallback: float
    volume: float
    cost_per_error: float
    fixed_monthly: float = 0.0

    @classmethod
    def of(cls, local: float, fallback: float, economics: Economics) -> Prices:
        return cls(local, fallback, economics.tickets_per_month, economics.cost_per_error,
                   self_served_fixed_monthly(economics))


@dataclass(frozen=True)
class Point:
    """The cascade at one threshold: items answered locally when their confidence >= threshold."""

    threshold: float
    coverage: float  # share answered locally
    accuracy: float
    cost_per_item: float
    monthly_cost: float


def self_served_fixed_monthly(economics: Economics) -> float:
    """The monthly floor of serving it ourselves: $/hour x 730 h on a dedicated instance, else 0."""
    return economics.hardware_price().value * HOURS_PER_MONTH if economics.dedicated_instance else 0.0


def fallback_alone_monthly(fallback: CandidateRecord | None, accuracy: float, cost_per_item: float,
                           economics: Economics) -> float:
    """The fallback serving every item by itself (a hosted API pays no instance)."""
    hosted = fallback is None or fallback.hosted
    return monthly_cost(economics.tickets_per_month, cost_per_item, 1 - accuracy, economics.cost_per_error,
                        0.0 if hosted else self_served_fixed_monthly(economics))


# --- the arithmetic ---------------------------------------------------------------------------


def curve(pairing: Pairing, prices: Prices) -> list[Point]:
    """The cascade at every threshold that changes which items stay local, most local first.

    The thresholds are the distinct confidences (an item at exactly the threshold stays local),
    then 1.0 when every confidence is below it (nothing stays local)."""
    n = len(pairing.items)
    if n == 0:
        return []
    order = np.argsort(-pairing.confidence, kind="stable")
    conf = pairing.confidence[order]
    local_errors = np.concatenate([[0.0], np.cumsum(~pairing.local_right[order])])
    fallback_errors = np.concatenate([[0.0], np.cumsum(1.0 - pairing.fallback_right[order])])
    total_fallback_errors = fallback_errors[-1]
    # Keeping the k most confident items local, for each k where the next item's confidence is lower.
    ends = [k for k in range(1, n + 1) if k == n or conf[k] < conf[k - 1]]
    points = [(float(conf[k - 1]), k) for k in reversed(ends)]
    if conf[0] < 1.0:
        points.append((1.0, 0))
    out = []
    for threshold, k in points:
        errors = local_errors[k] + total_fallback_errors - fallback_errors[k]
        error_rate = errors / n
        per_item = prices.local + (1 - k / n) * prices.fallback
        out.append(Point(threshold, k / n, 1 - error_rate, per_item,
                         prices.volume * (per_item + error_rate * prices.cost_per_error) + prices.fixed_monthly))
    return out


def choose(points: Sequence[Point]) -> Point:
    """The cheapest point a month; among equal ones, the one answering most items locally."""
    if not points:
        raise ValueError("no point to choose from: the parts share no scored item")
    return min(points, key=lambda p: (p.monthly_cost, -p.coverage))


def pair(local: CandidateRecord, fallback: CandidateRecord | None, split: str, data: StudyData,
         assumed_accuracy: float | None = None) -> Pairing | None:
    """The items of ``split`` both parts scored (every local item for an assumed fallback).

    None when the local candidate has no calibrated probabilities there, or the fallback no result."""
    result = local.result(split)
    gold = data.gold(split)
    if result is None or not result.top_probs or local.calibration is None or not gold:
        return None
    index = {label: i for i, label in enumerate(data.labels)}
    conf = confidences(local.calibration, top_probabilities(result))
    local_at = dict(zip(result.item_indices(), zip(result.predictions, conf)))
    if fallback is None:
        if assumed_accuracy is None:
            return None
        fallback_at = {item: -1 for item in local_at}
    else:
        other = fallback.result(split)
        if other is None:
            return None
        fallback_at = dict(zip(other.item_indices(), other.predictions))
    items = [item for item in local_at if item in fallback_at]
    if not items:
        return None
    gold_index = np.asarray([index[gold[i]] for i in items])
    local_predictions = np.asarray([local_at[i][0] for i in items], dtype=int)
    fallback_predictions = np.asarray([fallback_at[i] for i in items], dtype=int)
    fallback_right = np.full(len(items), float(assumed_accuracy)) if fallback is None else \
        (fallback_predictions == gold_index).astype(float)
    return Pairing(items, np.asarray([local_at[i][1] for i in items], dtype=float), local_predictions,
                   local_predictions == gold_index, fallback_predictions, fallback_right)


def result_at(pairing: Pairing, threshold: float, data: StudyData, split: str, *, assumed: bool,
              seed: int = 0) -> SplitResult:
    """The cascade's quality on a split at ``threshold``.

    With a measured fallback its answers are scored like any candidate's. With an assumed one, an
    escalated item's answer is unknown (prediction -1) and counted right with the assumed
    probability: the accuracy is an expected value, and macro-F1 and the confusion are unknown."""
    local = pairing.confidence >= threshold
    predictions = np.where(local, pairing.local_predictions, pairing.fallback_predictions)
    gold = data.gold(split)
    items = None if pairing.items == list(range(len(gold))) else pairing.items
    if not assumed:
        labels = data.labels
        scores = score([gold[i] for i in pairing.items], [labels[p] if p >= 0 else None for p in predictions],
                       labels, seed=seed)
        return SplitResult.of(scores, [labels[p] if p >= 0 else None for p in predictions], labels, items)
    n = len(pairing.items)
    expected = float(pairing.local_right[local].sum() + pairing.fallback_right[~local].sum())
    nan = float("nan")
    return SplitResult(n=n, accuracy=expected / n, accuracy_ci=wilson_interval(round(expected), n), macro_f1=nan,
                       macro_f1_ci=(nan, nan), per_class_f1={}, confusion=[], confusion_columns=[],
                       predictions=[int(p) for p in predictions], items=items)


# --- cascades of a study ----------------------------------------------------------------------


def is_local(r: CandidateRecord) -> bool:
    """A complete candidate served here whose confidence can be calibrated and thresholded."""
    return (r.state == "COMPLETE" and r.kind != Kind.cascade and not r.hosted and r.validation is not None
            and bool(r.validation.top_probs) and r.cost_per_item is not None)


def fallbacks_for(local: CandidateRecord, found: Sequence[CandidateRecord],
                  current: CandidateRecord | None) -> list[CandidateRecord | None]:
    """Who may answer what ``local`` escalates: the current solution (its live hosted record, or
    None: the entered error rate), and every other candidate more accurate on validation."""
    others = [r for r in found if r is not local and r is not current and r.state == "COMPLETE"
              and r.kind != Kind.cascade and r.validation is not None and r.cost_per_item is not None
              and r.validation.accuracy > local.validation.accuracy]
    return [current, *others]


def build(local: CandidateRecord, fallback: CandidateRecord | None, data: StudyData, economics: Economics, *,
          current_cost_per_item: float, assumed_accuracy: float | None,
          current_name: str, seed: int = 0) -> tuple[CandidateRecord | None, str]:
    """The cascade of ``local`` into ``fallback`` at its cheapest validation threshold, or None and why not.

    ``fallback`` None is the current solution at ``assumed_accuracy`` and ``current_cost_per_item``."""
    fallback_name = current_name if fallback is None else fallback.name
    what = f"{local.label} -> {fallback_name}"
    validation = pair(local, fallback, "validation", data, assumed_accuracy)
    if validation is None:
        return None, f"{what}: no shared validation items with probabilities"
    fallback_cost = current_cost_per_item if fallback is None else fallback.cost_per_item
    points = curve(validation, Prices.of(local.cost_per_item, fallback_cost, economics))
    best = choose(points)
    alone = points[0]  # every item local: the local candidate by itself
    fallback_accuracy = float(validation.fallback_right.mean())
    fallback_monthly = fallback_alone_monthly(fallback, fallback_accuracy, fallback_cost, economics)
    if best.coverage in (0.0, 1.0) or best.monthly_cost >= min(alone.monthly_cost, fallback_monthly):
        return None, (f"{what}: not worth it (cheapest at {best.coverage:.0%} answered locally, "
                      f"${best.monthly_cost:,.0f}/month; {local.label} alone ${alone.monthly_cost:,.0f}, "
                      f"{fallback_name} alone ${fallback_monthly:,.0f})")
    assumed = fallback is None
    valid = result_at(validation, best.threshold, data, "validation", assumed=assumed, seed=seed)
    tested = pair(local, fallback, "test", data, assumed_accuracy)
    test = None if tested is None else result_at(tested, best.threshold, data, "test", assumed=assumed, seed=seed)
    parts = CascadeParts(
        local=local.label, local_number=local.number, fallback=fallback_name,
        fallback_number=None if fallback is None else fallback.number, threshold=best.threshold,
        coverage=best.coverage,
        test_coverage=None if tested is None else float((tested.confidence >= best.threshold).mean()),
        assumed_fallback_accuracy=assumed_accuracy if assumed else None)
    details = {"assumption": ASSUMPTION.format(accuracy=f"{assumed_accuracy:.1%}")} if assumed else {}
    record = CandidateRecord(
        kind=Kind.cascade, name=what, method="cascade",
        settings={"local": local.label, "fallback": fallback_name, "threshold": parts.threshold},
        validation=valid, test=test, cost_per_item=best.cost_per_item, cost_provenance=_provenance(local, fallback),
        cost_source=cost_source(parts), items_per_second=local.items_per_second, measured_on=local.measured_on,
        measured_hardware=local.measured_hardware, hosted=False, caps=local.caps, details=details, cascade=parts)
    return record, f"{what}: {best.coverage:.0%} answered locally at confidence >= {best.threshold:.3f}"


def cost_source(parts: CascadeParts) -> str:
    return (f"{parts.local} $/item on every item + {1 - parts.coverage:.1%} escalated x {parts.fallback} $/item"
            + (" (the current solution's entered price)" if parts.assumed else ""))


def priced(cascade: CandidateRecord, by_number: dict[int, CandidateRecord], economics: Economics) -> CandidateRecord:
    """The cascade's $/item from its parts as priced now (another hardware price, another API price)."""
    parts = cascade.cascade
    local = by_number.get(parts.local_number)
    fallback = by_number.get(parts.fallback_number) if parts.fallback_number is not None else None
    if local is None or local.cost_per_item is None or (not parts.assumed and (
            fallback is None or fallback.cost_per_item is None)):
        return cascade
    fallback_cost = economics.current_cost_per_item if parts.assumed else fallback.cost_per_item
    return replace(cascade, cost_per_item=local.cost_per_item + (1 - parts.coverage) * fallback_cost,
                   cost_provenance=_provenance(local, fallback), items_per_second=local.items_per_second)


def _provenance(local: CandidateRecord, fallback: CandidateRecord | None) -> str:
    """Estimated when either part's price is (measured on other hardware, or counted tokens)."""
    estimated = any(p is not None and p.cost_provenance == "estimated" for p in (local, fallback))
    return "estimated" if estimated else "measured"


def threshold_curve(cascade: CandidateRecord, by_number: dict[int, CandidateRecord], data: StudyData,
                    economics: Economics) -> list[Point]:
    """A recorded cascade's validation curve over the threshold, at ``economics`` (the dashboard's chart)."""
    parts = cascade.cascade
    local = by_number.get(parts.local_number)
    fallback = None if parts.assumed else by_number.get(parts.fallback_number)
    if local is None or (fallback is None and not parts.assumed):
        return []
    pairing = pair(local, fallback, "validation", data, parts.assumed_fallback_accuracy)
    if pairing is None:
        return []
    fallback_cost = economics.current_cost_per_item if parts.assumed else fallback.cost_per_item
    return curve(pairing, Prices.of(local.cost_per_item, fallback_cost, economics))


def objective_quality(result: SplitResult) -> float:
    """Macro-F1 for a pareto study's front; an assumed fallback's is unknown, so its expected
    accuracy stands in (Optuna refuses NaN values)."""
    return result.accuracy if math.isnan(result.macro_f1) else result.macro_f1


def price_cascades(found: Sequence[CandidateRecord], economics: Economics) -> list[CandidateRecord]:
    """Every cascade among ``found`` priced from its parts as they are priced there."""
    by_number = {r.number: r for r in found if r.number is not None}
    return [priced(r, by_number, economics) if r.cascade is not None else r for r in found]


def cascade_fields(r: CandidateRecord) -> dict[str, Any]:
    """A candidate's calibration and, for a cascade, its parts: the report's JSON fields."""
    c, parts = r.calibration, r.cascade
    return {
        "calibration": None if c is None else {
            "method": c.method, "temperature": c.temperature, "fitted_on": c.fitted_on,
            "ece_validation": {"before": c.ece_validation[0], "after": c.ece_validation[1]},
            "ece_test": None if c.ece_test is None else {"before": c.ece_test[0], "after": c.ece_test[1]}},
        "cascade": None if parts is None else {
            "local": parts.local, "local_trial_number": parts.local_number, "fallback": parts.fallback,
            "fallback_trial_number": parts.fallback_number, "threshold": parts.threshold,
            "coverage": parts.coverage, "test_coverage": parts.test_coverage, "assumed": parts.assumed,
            "assumed_fallback_accuracy": parts.assumed_fallback_accuracy,
            "assumption": r.details.get("assumption")},
    }


def assumption_lines(found: Sequence[CandidateRecord]) -> list[str]:
    """One line per cascade whose fallback accuracy is assumed, for the report's provenance list."""
    return [f"{r.label}: {r.details.get('assumption', 'the fallback accuracy is assumed')}."
            for r in found if r.cascade is not None and r.cascade.assumed]
