"""The decision rule, implemented once (docs/decision-rule.md says it in words).

A candidate may replace the current solution only if it is **non-inferior** in quality: its
accuracy is not worse than the current solution's by more than a margin (default 1 point),
shown by the lower end of a 95% interval of the difference, on the items both scored (paired)
or, when they share none, from both intervals. Among the non-inferior candidates the cheapest in
monthly dollars wins, if it is cheaper than the current solution. Everything is decided on the
validation split; the test split is scored for what was chosen and only reported.

When the current solution's accuracy is unknown, nothing can be shown non-inferior to it: the
verdict names that missing number and how to measure it, and claims no savings that depend on
it. A candidate whose interval is too wide to decide says how many items would decide it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from evals.cost import Economics, Roi, roi
from evals.formatting import interval, money, p_value, payback_text, pct, points
from evals.metrics import Z95, Difference, paired_difference, unpaired_difference, wilson_interval
from evals.record import CandidateRecord, Kind, SplitResult, StudyData

DECISION_SPLIT = "validation"
DEFAULT_MARGIN = 0.01

Standing = Literal["non_inferior", "inferior", "undecided", "unknown"]
PROVENANCE_WORDS = {"measured": "measured", "user": "entered by you", "unknown": "unknown"}


@dataclass(frozen=True)
class Current:
    """The solution in use today: what it costs (entered) and how accurate it is.

    Its accuracy is measured when the hosted baseline ran live (``record``: its predictions
    pair with every candidate's), entered by the user (``economics.current_error_rate``), or
    unknown.
    """

    name: str
    cost_per_item: float
    error_rate: float | None
    provenance: Literal["measured", "user", "unknown"]
    record: CandidateRecord | None = None

    @classmethod
    def of(cls, economics: Economics, records: Sequence[CandidateRecord]) -> Current:
        live = [r for r in records if r.hosted and r.validation is not None]
        named = [r for r in live if economics.current_solution.lower() in r.name.lower()]
        measured = (named or live or [None])[0]
        if measured is not None:
            return cls(economics.current_solution, economics.current_cost_per_item,
                       1 - measured.validation.accuracy, "measured", measured)
        if economics.current_error_rate is not None:
            return cls(economics.current_solution, economics.current_cost_per_item, economics.current_error_rate,
                       "user")
        return cls(economics.current_solution, economics.current_cost_per_item, None, "unknown")

    def economics(self, economics: Economics) -> Economics:
        """The economics with this solution's error rate (a measured one replaces the entry)."""
        return economics.model_copy(update={"current_error_rate": self.error_rate})


@dataclass(frozen=True)
class Judgement:
    """One candidate against the current solution, on the decision split."""

    standing: Standing
    difference: Difference | None  # candidate minus current, accuracy
    items_needed: int | None = None  # undecided: items that would settle it at this difference

    def words(self, current: Current, margin: float) -> str:
        """What the interval shows, in words that claim no more than it does."""
        d = self.difference
        if d is None:
            return f"not comparable: the accuracy of {current.name} is unknown"
        if d.paired:
            basis = f"on {d.n:,} paired {DECISION_SPLIT} items"
        elif current.record is None:
            basis = f"against the entered {pct(1 - current.error_rate)}, on {d.n:,} {DECISION_SPLIT} items"
        else:
            basis = f"on {DECISION_SPLIT} items not shared with {current.name}, not paired"
        evidence = f"{points(d.delta)} points, 95% CI {points(d.lo)}..{points(d.hi)} {basis}"
        if d.test is not None:
            evidence += f", McNemar {p_value(d.test.p_value)}"
        within = f"within {100 * margin:g} point{'' if margin == 0.01 else 's'} of {current.name}"
        if self.standing == "non_inferior":
            return f"{within} or better ({evidence})"
        if self.standing == "inferior":
            return f"worse than {current.name} by more than {100 * margin:g} point ({evidence})"
        need = f"; about {self.items_needed:,} items would decide it" if self.items_needed else \
            "; its estimate is already below the margin"
        return f"not shown to be {within} ({evidence}){need}"


@dataclass(frozen=True)
class Ranked:
    """A candidate with its ROI against the current solution and its judgement."""

    record: CandidateRecord
    roi: Roi
    judgement: Judgement

    @property
    def result(self) -> SplitResult:
        return self.record.validation


@dataclass(frozen=True)
class Recommendation:
    """What to do, in one sentence first, with the numbers behind it."""

    sentence: str
    winner: str | None
    reason: str  # replace, keep_current, not_enough_items, missing_current_quality, no_metrics
    evidence: dict[str, Any] = field(default_factory=dict)


def _fixed_monthly(r: CandidateRecord) -> float | None:
    # Only what we serve ourselves pays for an always-on instance; a hosted API never does.
    return 0.0 if r.hosted or r.items_per_second is None else None


def candidate_roi(r: CandidateRecord, economics: Economics, compute_dollars: float) -> Roi:
    """A candidate's monthly cost and savings, its errors at its decision-split error rate."""
    result = r.result(DECISION_SPLIT)
    error_rate = 1 - result.accuracy if result is not None else 0.0
    return roi(r.cost_per_item or 0.0, error_rate, economics, compute_dollars=compute_dollars,
               dedicated_fixed_monthly=_fixed_monthly(r))


def compare(a: CandidateRecord, b: CandidateRecord, data: StudyData, split: str = DECISION_SPLIT) -> Difference:
    """Accuracy of A minus B: paired on the items both scored, else from both intervals."""
    ra, rb = a.result(split), b.result(split)
    if ra is None or rb is None:
        raise ValueError(f"{a.name} or {b.name} has no {split} result")
    right_a = _right(ra, data.labels, data.gold(split))
    right_b = _right(rb, data.labels, data.gold(split))
    shared = sorted(right_a.keys() & right_b.keys())
    if shared:
        return paired_difference([right_a[i] for i in shared], [right_b[i] for i in shared])
    return unpaired_difference(ra.correct, ra.n, rb.correct, rb.n)


def _right(result: SplitResult, labels: Sequence[str], gold: Sequence[str]) -> dict[int, bool]:
    """Item -> right or wrong; empty for a study without stored gold labels (nothing to pair)."""
    if not gold:
        return {}
    return {item: p >= 0 and labels[p] == gold[item] for item, p in zip(result.item_indices(), result.predictions)}


def judge(r: CandidateRecord, current: Current, data: StudyData, margin: float) -> Judgement:
    result = r.result(DECISION_SPLIT)
    if current.provenance == "unknown" or result is None:
        return Judgement("unknown", None)
    if current.record is not None:
        difference = compare(r, current.record, data)
        variance = difference.discordant_variance if difference.paired else \
            _binomial_variance(result.accuracy) + _binomial_variance(current.record.validation.accuracy)
    else:  # an entered error rate: a number without an interval
        lo, hi = wilson_interval(result.correct, result.n)
        target = 1 - current.error_rate
        difference = Difference(result.accuracy - target, lo - target, hi - target, result.n, False)
        variance = _binomial_variance(result.accuracy)
    if difference.lo > -margin:
        return Judgement("non_inferior", difference)
    if difference.hi < -margin:
        return Judgement("inferior", difference)
    room = difference.delta + margin
    if room <= 0:  # the estimate itself is beyond the margin: more items would not show non-inferiority
        return Judgement("undecided", difference)
    return Judgement("undecided", difference, max(difference.n + 1, math.ceil(Z95 ** 2 * variance / room ** 2)))


def _binomial_variance(p: float) -> float:
    return max(p * (1 - p), 1e-4)


def rank(records: Sequence[CandidateRecord], economics: Economics, *, compute_dollars: float,
         current: Current, data: StudyData, margin: float = DEFAULT_MARGIN) -> list[Ranked]:
    """Candidates with a decision-split result, cheapest monthly cost first (serving + errors)."""
    e = current.economics(economics)
    ranked = [Ranked(r, candidate_roi(r, e, compute_dollars), judge(r, current, data, margin))
              for r in records if r.result(DECISION_SPLIT) is not None and r.cost_per_item is not None]
    return sorted(ranked, key=lambda x: (x.roi.monthly_cost, -x.result.accuracy))


def recommend(ranked: Sequence[Ranked], current: Current, economics: Economics, *,
              margin: float = DEFAULT_MARGIN) -> Recommendation:
    """Apply the rule to ranked candidates (see the module's docstring)."""
    contenders = [r for r in ranked if r.record is not current.record]
    if not contenders:
        return Recommendation(
            f"No recommendation yet: no candidate has a {DECISION_SPLIT} result; run `roitune baseline` and "
            "`roitune sweep` to measure them.", None, "no_metrics")
    evidence: dict[str, Any] = {"decision_split": DECISION_SPLIT, "margin": margin,
                                "current": {"name": current.name, "error_rate": current.error_rate,
                                            "provenance": current.provenance}}
    if current.provenance == "unknown":
        return _missing_current_quality(contenders, current, evidence)

    fine = [r for r in contenders if r.judgement.standing == "non_inferior"]
    if fine and fine[0].roi.monthly_savings > 0:
        winner = fine[0]
        evidence["winner"] = _evidence(winner)
        sentence = (f"{_verb(winner.record)} {winner.record.label}: it is "
                    f"{winner.judgement.words(current, margin)}, and costs "
                    f"{money(winner.roi.monthly_cost)}/month against {money(winner.roi.current_monthly_cost)}, "
                    f"saving {money(winner.roi.monthly_savings)}/month (payback "
                    f"{payback_text(winner.roi.payback_months)}).{_about_fine_tuning(winner, contenders, margin, current)}"
                    f"{_assumption(winner.record)}")
        return Recommendation(sentence, winner.record.name, "replace", evidence)
    if fine:
        cheapest = fine[0]
        evidence["cheapest_non_inferior"] = _evidence(cheapest)
        return Recommendation(
            f"Keep {current.name}: the cheapest candidate as accurate as it, {cheapest.record.label}, would cost "
            f"{money(cheapest.roi.monthly_cost)}/month against {money(cheapest.roi.current_monthly_cost)}.",
            None, "keep_current", evidence)

    undecided = [r for r in contenders
                 if r.judgement.items_needed is not None and r.roi.monthly_savings > 0]
    if undecided:
        first = undecided[0]
        evidence["undecided"] = _evidence(first)
        return Recommendation(
            f"Not enough items to decide: {first.record.label} would save {money(first.roi.monthly_savings)}/month, "
            f"but it is {first.judgement.words(current, margin)}. Score more {DECISION_SPLIT} items (a larger "
            "split, or a higher cap).",
            None, "not_enough_items", evidence)

    closest = max(contenders, key=lambda r: r.result.accuracy)
    evidence["closest"] = _evidence(closest)
    return Recommendation(
        f"Keep {current.name}: no candidate is shown to be within {100 * margin:g} point of its accuracy "
        f"({pct(1 - current.error_rate)}, {PROVENANCE_WORDS[current.provenance]}); the closest, "
        f"{closest.record.label}, is {closest.judgement.words(current, margin)}.", None, "keep_current", evidence)


def _missing_current_quality(contenders: Sequence[Ranked], current: Current, evidence: dict) -> Recommendation:
    best = max(contenders, key=lambda r: (r.result.accuracy, -r.roi.monthly_cost))
    evidence["most_accurate"] = _evidence(best)
    result = best.result
    return Recommendation(
        f"Missing number: the accuracy of {current.name}. Without it no candidate can be shown to be as accurate, "
        f"so no savings are claimed. Measure it by running the hosted baseline live (set baselines.hosted and run "
        f"`roitune baseline --only hosted`) or enter it as economics.current_error_rate. The most accurate "
        f"candidate so far is {best.record.label}: {pct(result.accuracy)} {interval(result.accuracy_ci)} on "
        f"{result.n:,} {DECISION_SPLIT} items, {money(best.record.cost_per_item)} an item.",
        None, "missing_current_quality", evidence)


def _verb(r: CandidateRecord) -> str:
    return {Kind.trial: "Fine-tune:", Kind.cascade: "Cascade:"}.get(r.kind, "Use")


def _about_fine_tuning(winner: Ranked, contenders: Sequence[Ranked], margin: float, current: Current) -> str:
    """When a baseline or cascade wins, say where the best fine-tuned candidate stands."""
    if winner.record.kind == Kind.trial:
        return ""
    trials = [r for r in contenders if r.record.kind == Kind.trial]
    if not trials:
        return " No fine-tuned candidate was scored."
    best = min(trials, key=lambda r: r.roi.monthly_cost) if any(
        t.judgement.standing == "non_inferior" for t in trials) else max(trials, key=lambda r: r.result.accuracy)
    if best.judgement.standing == "non_inferior":
        return (f" The best fine-tuned candidate, {best.record.label}, is as accurate but costs "
                f"{money(best.roi.monthly_cost - winner.roi.monthly_cost)}/month more.")
    return f" The best fine-tuned candidate, {best.record.label}, is {best.judgement.words(current, margin)}."


def _assumption(r: CandidateRecord) -> str:
    """A cascade into the current solution at its entered error rate rests on that number: say so."""
    if r.cascade is None or not r.cascade.assumed:
        return ""
    return (f" This assumes {r.cascade.fallback} answers the escalated items with {pct(r.cascade.assumed_fallback_accuracy)} "
            "accuracy (the entered error rate): run the hosted baseline live to measure it.")


def _evidence(r: Ranked) -> dict[str, Any]:
    d = r.judgement.difference
    return {
        "name": r.record.name, "kind": r.record.kind.value, "standing": r.judgement.standing,
        "accuracy": r.result.accuracy, "n": r.result.n,
        "difference": None if d is None else {
            "delta": d.delta, "ci": [d.lo, d.hi], "items": d.n, "paired": d.paired,
            "mcnemar": None if d.test is None else {"b": d.test.b, "c": d.test.c, "p_value": d.test.p_value,
                                                     "method": d.test.method}},
        "items_needed": r.judgement.items_needed,
        "monthly_cost": r.roi.monthly_cost, "monthly_savings": r.roi.monthly_savings,
        "payback_months": r.roi.payback_months,
    }


def measure_word(teacher: str | None) -> str:
    """What a score on rows labelled by ``teacher`` is: accuracy (labels by people, ``None``), or
    agreement with the model that labelled them."""
    return "accuracy" if teacher is None else f"agreement with {teacher}"


def measures(data: StudyData, split: str) -> str:
    return measure_word(data.teacher(split))


def with_label_source(rec: Recommendation, ranked: Sequence[Ranked], data: StudyData) -> Recommendation:
    """Say what the numbers measure when a model labelled the rows (``roitune label``): on teacher-labelled
    validation rows the verdict rests on agreement with that model, not accuracy; with human-checked
    validation rows (``data.gold``) and teacher-labelled test rows, the winner's agreement is shown beside."""
    if rec.reason == "no_metrics":
        return rec
    teacher = data.teacher(DECISION_SPLIT)
    labels = {split: measures(data, split) for split in (DECISION_SPLIT, "test")}
    evidence = {**rec.evidence, "measures": labels}
    if teacher is not None:
        note = (f" These are agreement with the labels of {teacher} on the {DECISION_SPLIT} split, not accuracy: "
                "no human-checked rows were scored; set data.gold to measure accuracy.")
        return replace(rec, sentence=rec.sentence + note, evidence=evidence)
    test_teacher = data.teacher("test")
    winner = next((r for r in ranked if r.record.name == rec.winner), None)
    if test_teacher is not None and winner is not None and winner.record.test is not None:
        note = (f" Its agreement with {test_teacher} on the test split: {pct(winner.record.test.accuracy)} "
                f"{interval(winner.record.test.accuracy_ci)}.")
        return replace(rec, sentence=rec.sentence + note, evidence=evidence)
    return replace(rec, evidence=evidence)


def decide(records: Sequence[CandidateRecord], data: StudyData, economics: Economics, *, compute_dollars: float,
           margin: float = DEFAULT_MARGIN) -> tuple[Current, list[Ranked], Recommendation]:
    """The current solution, the ranked candidates and the recommendation for a study's records."""
    current = Current.of(economics, records)
    ranked = rank(records, economics, compute_dollars=compute_dollars, current=current, data=data, margin=margin)
    return current, ranked, with_label_source(recommend(ranked, current, economics, margin=margin), ranked, data)

