"""Rank candidates by dollars and say, in one sentence, what to do.

The rule: fine-tune for behaviour, retrieve for knowledge, and do not fine-tune what a
few-shot prompt (or any baseline) already fixes. So a fine-tuned adapter only wins when no
cheaper baseline is statistically as accurate, and nothing wins unless it saves money
against the current solution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evals.candidates import Candidate
from evals.cost import Economics, Roi, roi
from evals.metrics import McNemar, mcnemar, paired_delta

ALPHA = 0.05
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class RankedCandidate:
    """A candidate with its ROI against the current solution."""

    candidate: Candidate
    roi: Roi


@dataclass(frozen=True)
class Recommendation:
    """What to do, in one sentence first, with the numbers behind it."""

    sentence: str
    winner: str | None
    reason: str  # "fine_tune", "baseline_enough", "cheapest", "keep_current", "no_metrics"
    evidence: dict[str, Any]


@dataclass(frozen=True)
class _Comparison:
    """Accuracy of A minus B; interval and test only when predictions pair item by item."""

    delta: float
    lo: float | None
    hi: float | None
    test: McNemar | None


def _error_rate(c: Candidate, economics: Economics) -> float:
    if c.accuracy is not None:
        return 1.0 - c.accuracy
    if c.kind == "current":
        return economics.current_error_rate or 0.0
    return 0.0


def _fixed_monthly(c: Candidate) -> float | None:
    # Only what we serve ourselves has a measured throughput; a hosted API (or the current
    # solution) never pays for an always-on instance, whatever economics.dedicated_instance says.
    return None if c.items_per_second is not None and c.kind != "current" else 0.0


def rank(
    candidates: Sequence[Candidate], economics: Economics, *, compute_dollars: float
) -> list[RankedCandidate]:
    """Candidates by monthly cost (serving + errors), cheapest first; unscored ones last.

    Every candidate is charged the same one-off cost (the sweep's compute plus engineering
    time to switch), so payback months compare like with like.
    """
    ranked = [
        RankedCandidate(
            c,
            roi(
                c.cost_per_item,
                _error_rate(c, economics),
                economics,
                compute_dollars=compute_dollars,
                dedicated_fixed_monthly=_fixed_monthly(c),
            ),
        )
        for c in candidates
    ]
    return sorted(
        ranked,
        key=lambda r: (
            r.candidate.accuracy is None,
            r.roi.monthly_cost,
            -(r.candidate.accuracy or 0.0),
        ),
    )


def recommend(
    candidates: Sequence[Candidate],
    gold: Sequence[str],
    economics: Economics,
    *,
    compute_dollars: float,
) -> Recommendation:
    """Apply the decision rule to scored candidates; ``gold`` aligns with their predictions.

    Once anything is scored on test, only test scores compete: a trial that was not a finalist
    has a validation score only, and putting it beside test scores would compare different items
    (and let the split used for selection decide the verdict).
    """
    scored = [c for c in candidates if c.accuracy is not None]
    if any(c.split == "test" for c in scored):
        scored = [c for c in scored if c.split == "test"]
    if not scored:
        names = ", ".join(c.name for c in candidates) or "none"
        return Recommendation(
            sentence=(
                "No recommendation yet: no candidate has an accuracy on a held-out split "
                f"(candidates: {names}); run the baselines and the sweep to measure them."
            ),
            winner=None,
            reason="no_metrics",
            evidence={"candidates": [c.name for c in candidates]},
        )

    ranked = rank(scored, economics, compute_dollars=compute_dollars)
    evidence: dict[str, Any] = {
        "ranking": [_summary(r) for r in ranked],
        "current_solution": economics.current_solution,
        "current_error_rate_known": economics.current_error_rate is not None,
    }
    note = _unknown_error_note(economics)

    savers = [r for r in ranked if r.candidate.kind != "current" and r.roi.monthly_savings > 0]
    if not savers:
        cheapest = ([r for r in ranked if r.candidate.kind != "current"] or ranked)[0]
        sentence = (
            f"Keep {economics.current_solution}: no candidate costs less than its "
            f"{money(cheapest.roi.current_monthly_cost)}/month; the cheapest, "
            f"{_label(cheapest.candidate)}, would cost {money(cheapest.roi.monthly_cost)}/month."
        )
        return Recommendation(sentence + note, None, "keep_current", evidence)

    trials = [r for r in ranked if r.candidate.kind == "trial"]
    baselines = [r for r in ranked if r.candidate.kind == "baseline"]
    adapter = max(trials, key=lambda r: (r.candidate.accuracy, -r.roi.monthly_cost), default=None)

    if adapter is not None:
        evidence["best_adapter"] = adapter.candidate.name
        cheaper = [
            b
            for b in baselines
            if b.roi.monthly_cost < adapter.roi.monthly_cost and b.roi.monthly_savings > 0
        ]
        # Cheapest first, so the first baseline that holds up is the cheapest one that does.
        for base in cheaper:
            comp = _compare(adapter.candidate, base.candidate, gold)
            if _as_accurate(base.candidate, adapter.candidate, comp):
                evidence["comparison"] = _comparison_dict(adapter.candidate, base.candidate, comp)
                cheaper_by = adapter.roi.monthly_cost - base.roi.monthly_cost
                sentence = (
                    f"Don't fine-tune: {_label(base.candidate)} is "
                    f"{'as accurate as' if comp.delta > 0 else 'at least as accurate as'} the best "
                    f"adapter, {_label(adapter.candidate)}: the adapter scores "
                    f"{_higher_lower(comp.delta)} ({_evidence(comp)}), but "
                    f"{_label(base.candidate)} costs {money(cheaper_by)}/month less, saving "
                    f"{money(base.roi.monthly_savings)}/month against "
                    f"{economics.current_solution}{_payback(base.roi)}."
                )
                return Recommendation(
                    sentence + note, base.candidate.name, "baseline_enough", evidence
                )

        if adapter.roi.monthly_savings > 0:
            best_base = max(baselines, key=lambda r: r.candidate.accuracy, default=None)
            if best_base is None:
                quality = f"at {_pct(adapter.candidate.accuracy)} accuracy (no baseline was scored)"
            else:
                comp = _compare(adapter.candidate, best_base.candidate, gold)
                evidence["comparison"] = _comparison_dict(
                    adapter.candidate, best_base.candidate, comp
                )
                than = "as" if round(100 * comp.delta, 1) == 0 else "than"
                quality = (
                    f"with {_higher_lower(comp.delta)} accuracy ({_evidence(comp)}) {than} the "
                    f"best baseline, {_label(best_base.candidate)}"
                )
            sentence = (
                f"Fine-tune: {_label(adapter.candidate)} classifies at "
                f"{money(adapter.candidate.cost_per_item)} an item {quality}, saving "
                f"{money(adapter.roi.monthly_savings)}/month against "
                f"{economics.current_solution}{_payback(adapter.roi)}."
            )
            return Recommendation(sentence + note, adapter.candidate.name, "fine_tune", evidence)

    best = savers[0]
    why_not = (
        f"; the best adapter, {_label(adapter.candidate)}, would cost "
        f"{money(adapter.roi.monthly_cost)}/month"
        if adapter is not None
        else ""
    )
    sentence = (
        f"Use {_label(best.candidate)} ({_pct(best.candidate.accuracy)} accuracy, "
        f"{money(best.candidate.cost_per_item)} an item), saving "
        f"{money(best.roi.monthly_savings)}/month against {economics.current_solution}"
        f"{_payback(best.roi)}{why_not}."
    )
    return Recommendation(sentence + note, best.candidate.name, "cheapest", evidence)


def _compare(a: Candidate, b: Candidate, gold: Sequence[str]) -> _Comparison:
    assert a.accuracy is not None and b.accuracy is not None
    paired = (
        a.predictions is not None
        and b.predictions is not None
        and a.split == b.split
        and len(a.predictions) == len(b.predictions) == len(gold) > 0
    )
    if not paired:
        return _Comparison(a.accuracy - b.accuracy, None, None, None)
    delta, lo, hi = paired_delta(gold, a.predictions, b.predictions)
    return _Comparison(delta, lo, hi, mcnemar(gold, a.predictions, b.predictions))


def _as_accurate(base: Candidate, adapter: Candidate, comp: _Comparison) -> bool:
    """Is the baseline not measurably worse than the adapter?"""
    assert base.accuracy is not None and adapter.accuracy is not None
    if comp.test is not None:
        return comp.delta <= 0 or comp.test.p_value >= ALPHA
    if adapter.accuracy_ci is not None:
        return base.accuracy >= adapter.accuracy_ci[0]
    return base.accuracy >= adapter.accuracy


def _unknown_error_note(economics: Economics) -> str:
    # Only matters when errors cost something: then the current solution looks better than it is.
    if economics.current_error_rate is None and economics.cost_per_error > 0:
        return (
            f" The error rate of {economics.current_solution} is unknown, so its errors are"
            " costed at $0; set economics.current_error_rate for a fair comparison."
        )
    return ""


def _summary(r: RankedCandidate) -> dict[str, Any]:
    return {
        "name": r.candidate.name,
        "kind": r.candidate.kind,
        "accuracy": r.candidate.accuracy,
        "cost_per_item": r.candidate.cost_per_item,
        "monthly_cost": r.roi.monthly_cost,
        "monthly_savings": r.roi.monthly_savings,
        "payback_months": r.roi.payback_months,
        "break_even_volume": r.roi.break_even_volume,
    }


def _comparison_dict(a: Candidate, b: Candidate, comp: _Comparison) -> dict[str, Any]:
    return {
        "a": a.name,
        "b": b.name,
        "accuracy_delta": comp.delta,
        "delta_ci": None if comp.lo is None else [comp.lo, comp.hi],
        "mcnemar": None
        if comp.test is None
        else {
            "b": comp.test.b,
            "c": comp.test.c,
            "p_value": comp.test.p_value,
            "method": comp.test.method,
        },
    }


# --- formatting for people -------------------------------------------------------------


def _label(c: Candidate) -> str:
    # Baselines live in the study as trials too; only a sweep trial's number means anything.
    if c.kind == "trial" and c.trial_number is not None and f"trial {c.trial_number}" not in c.name:
        return f"{c.name} (trial {c.trial_number})"
    return c.name


def money(x: float) -> str:
    """Dollars for people: $2,450 / $3.20 / $0.000004 (never scientific notation)."""
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 10:
        return f"{sign}${x:,.0f}"
    if x >= 1 or x == 0:
        return f"{sign}${x:,.2f}"
    # Per-item prices: two significant digits, never scientific notation ($0.000004).
    decimals = -math.floor(math.log10(x)) + 1
    return f"{sign}${x:.{decimals}f}".rstrip("0").rstrip(".")


def _pct(x: float | None) -> str:
    return "unknown" if x is None else f"{100 * x:.1f}%"


def _points(x: float) -> str:
    # "+ 0.0" turns a rounded -0.0 into 0.0.
    return f"{round(100 * x, 1) + 0.0:.1f}"


def _higher_lower(delta: float) -> str:
    """E.g. '0.9 points higher'."""
    if round(100 * delta, 1) == 0:
        return "the same"
    return f"{abs(100 * delta):.1f} points {'higher' if delta > 0 else 'lower'}"


def _evidence(comp: _Comparison) -> str:
    """E.g. '95% CI -0.8..2.6, McNemar p=0.31' (accuracy points, A minus B)."""
    if comp.test is None or comp.lo is None or comp.hi is None:
        return "not tested: no paired predictions"
    p = comp.test.p_value
    p_text = "<0.001" if p < 0.001 else f"={p:.3f}" if p < 0.01 else f"={p:.2f}"
    return f"95% CI {_points(comp.lo)}..{_points(comp.hi)}, McNemar p{p_text}"


def _payback(r: Roi) -> str:
    if r.payback_months is None:
        return ""
    if r.payback_months >= 1:
        return f" and paying back in {r.payback_months:.1f} months"
    days = r.payback_months * DAYS_PER_MONTH
    if days < 1:
        return " and paying back within a day"
    return f" and paying back in {round(days)} days"
