"""The report: the recommendation, the candidates ranked by monthly dollars, one row each.

One model, built from the study's records and the user's economics, feeds ``roitune report``
(terminal table, JSON, HTML), the dashboard and the model card, so every surface shows the same
numbers formatted the same way. Torch-free.

Pricing happens here, once: a self-served candidate's $/item is its measured items/second at the
serving hardware's $/hour. It is *measured* when the machine that timed it is that hardware (or
`roitune meter` timed it there afterwards), and *estimated*, saying so, otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from evals.cascade import assumption_lines, cascade_fields, price_cascades
from evals.cost import Economics, LabelPayback, label_payback, monthly_cost, one_off_cost
from evals.formatting import interval, money, payback_text, pct, points
from evals.meter import Machine, price_throughput
from evals.recommend import DECISION_SPLIT, DEFAULT_MARGIN, Current, Ranked, Recommendation, decide, measures
from evals.record import (CandidateRecord, Kind, LearningCurve, Measurement, StudyData, compute_dollars,
                          learning_curves, measurements, records, study_data)

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Report:
    """Everything the report and the dashboard show about one study."""

    study: str
    economics: Economics
    current: Current
    ranked: list[Ranked]  # cheapest monthly cost first
    recommendation: Recommendation
    compute_dollars: float
    data: StudyData
    unjudged: list[CandidateRecord]  # complete, but without a result on the decision split
    curves: tuple[LearningCurve, ...] = ()  # what more labels are worth (`roitune curve`), newest first

    @property
    def headline(self) -> Ranked | None:
        """The candidate the key numbers are about: the recommended one, else the cheapest."""
        chosen = [r for r in self.ranked if r.record.name == self.recommendation.winner]
        return (chosen or self.ranked or [None])[0]

    @property
    def current_monthly_cost(self) -> float:
        """What the current solution costs a month, its errors included (as ``roi`` counts them)."""
        e = self.economics
        return monthly_cost(e.tickets_per_month, e.current_cost_per_item, self.current.error_rate or 0.0,
                            e.cost_per_error)


def priced(found: Sequence[CandidateRecord], economics: Economics,
           measured: dict[tuple[int, str], Measurement] | None = None) -> list[CandidateRecord]:
    """Each self-served candidate priced on ``economics.hardware`` from a measured throughput; a
    cascade from its parts so priced."""
    rate, hardware = economics.hardware_price(), economics.hardware
    out = []
    for r in found:
        if r.hosted or not r.items_per_second or r.kind == Kind.cascade:
            out.append(r)
            continue
        there = (measured or {}).get((r.number, hardware))
        if there is not None:
            speed, machine = there.items_per_second, Machine(there.measured_on, hardware)
        else:
            speed, machine = r.items_per_second, Machine(r.measured_on or "an unnamed machine", r.measured_hardware)
        figure = price_throughput(speed, machine, rate, hardware, f"{speed:,.1f} items/s")
        out.append(replace(r, cost_per_item=figure.value, cost_provenance=figure.provenance.value,
                           cost_source=figure.source, items_per_second=speed))
    return price_cascades(out, economics)


def build_report(found: Sequence[CandidateRecord], data: StudyData, economics: Economics, *,
                 compute_dollars: float, study: str = "", measured: dict[tuple[int, str], Measurement] | None = None,
                 margin: float = DEFAULT_MARGIN, curves: Sequence[LearningCurve] = ()) -> Report:
    """Price, rank and recommend the complete candidates of a study."""
    complete = [r for r in found if r.state == "COMPLETE"]
    current, ranked, recommendation = decide(priced(complete, economics, measured), data, economics,
                                             compute_dollars=compute_dollars, margin=margin)
    judged = {r.record.number for r in ranked}
    return Report(study=study, economics=economics, current=current, ranked=ranked, recommendation=recommendation,
                  compute_dollars=compute_dollars, data=data,
                  unjudged=[r for r in complete if r.number not in judged], curves=tuple(curves))


def study_report(study: optuna.Study, economics: Economics) -> Report:
    return build_report(records(study), study_data(study), economics, compute_dollars=compute_dollars(study),
                        study=study.study_name, measured=measurements(study), curves=learning_curves(study))


def what_if(report: Report, *, volume: int, dollars_per_hour: float, current_cost_per_item: float,
            cost_per_error: float, found: Sequence[CandidateRecord],
            measured: dict[tuple[int, str], Measurement] | None = None) -> Report:
    """The report under other economics; at the config's own values it equals the report."""
    changed = report.economics.model_copy(update={
        "tickets_per_month": volume,
        "current_monthly_cost": current_cost_per_item * volume,
        "cost_per_error": cost_per_error,
        "hardware_dollars_per_hour": dollars_per_hour,
    })
    return build_report(found, report.data, changed, compute_dollars=report.compute_dollars, study=report.study,
                        measured=measured, curves=report.curves)


# --- words and rows -----------------------------------------------------------------------


def headline_text(report: Report) -> str:
    """Which candidate the key numbers are about, and why that one."""
    best = report.headline
    if best is None:
        return f"No candidate scored yet; {report.economics.current_solution} costs:"
    why = "recommended" if best.record.name == report.recommendation.winner else "cheapest"
    return f"{best.record.label} ({why}) against {report.economics.current_solution}:"


def key_numbers(report: Report) -> list[tuple[str, str]]:
    """(label, value) pairs: the current monthly cost, then the headline candidate's figures."""
    numbers = [("Current monthly cost", money(report.current_monthly_cost))]
    best = report.headline
    if best is not None:
        numbers += [
            ("Candidate monthly cost", money(best.roi.monthly_cost)),
            ("Monthly savings", money(best.roi.monthly_savings)),
            ("Payback", payback_text(best.roi.payback_months)),
        ]
    return numbers


def _result_fields(result) -> dict[str, Any] | None:
    if result is None:
        return None
    known = result.macro_f1 == result.macro_f1  # NaN: unknown (a cascade into an assumed fallback)
    return {"accuracy": result.accuracy, "accuracy_ci": list(result.accuracy_ci),
            "macro_f1": result.macro_f1 if known else None, "macro_f1_ci": list(result.macro_f1_ci) if known else None,
            "n": result.n}


def candidate_row(r: Ranked) -> dict[str, Any]:
    """One candidate as every table and the JSON show it: decision-split quality first."""
    rec, result = r.record, r.result
    d = r.judgement.difference
    return {
        "name": rec.name, "label": rec.label, "kind": rec.kind.value, "method": rec.method,
        "trial_number": rec.number, "hosted": rec.hosted, "split": DECISION_SPLIT,
        **_result_fields(result), "test": _result_fields(rec.test),
        "cost_per_item": rec.cost_per_item, "cost_provenance": rec.cost_provenance, "cost_source": rec.cost_source,
        "items_per_second": rec.items_per_second, "measured_on": rec.measured_on,
        "caps": [cap.text() for cap in rec.caps],
        "monthly_cost": r.roi.monthly_cost, "monthly_savings": r.roi.monthly_savings,
        "payback_months": r.roi.payback_months, "break_even_volume": r.roi.break_even_volume,
        "standing": r.judgement.standing,
        "difference_vs_current": None if d is None else {"delta": d.delta, "ci": [d.lo, d.hi], "items": d.n,
                                                        "paired": d.paired},
        "items_needed": r.judgement.items_needed,
        **cascade_fields(rec),
    }


STANDING_MARKS = {"non_inferior": "as good", "inferior": "worse", "undecided": "too few", "unknown": "?"}


def quality_cell(result) -> str:
    return "-" if result is None else f"{pct(result.accuracy)} {interval(result.accuracy_ci)}"


def report_json(report: Report) -> dict[str, Any]:
    e = report.economics
    price = e.hardware_price()
    rec = report.recommendation
    current = report.current
    return {
        "study": report.study,
        "recommendation": {"sentence": rec.sentence, "winner": rec.winner, "reason": rec.reason,
                           "evidence": rec.evidence},
        "decision_split": DECISION_SPLIT,
        "candidates": [candidate_row(r) for r in report.ranked],
        "not_judged": [{"name": r.name, "kind": r.kind.value, "trial_number": r.number,
                        "why": f"no {DECISION_SPLIT} result"} for r in report.unjudged],
        "current": {
            "name": current.name, "cost_per_item": e.current_cost_per_item,
            "error_rate": current.error_rate, "error_rate_provenance": current.provenance,
            "measured_by": current.record.name if current.record else None,
            "monthly_cost": report.current_monthly_cost, "monthly_cost_excluding_errors": e.current_monthly_cost,
        },
        "compute_dollars": report.compute_dollars,
        "labels": {split: measures(report.data, split) for split in (DECISION_SPLIT, "test")},
        "curves": [curve_json(c, e) for c in report.curves],
        "economics": {
            **e.model_dump(),
            "hardware_price": {"dollars_per_hour": price.value, "provenance": price.provenance.value,
                               "source": price.source},
            "one_off_cost": one_off_cost(report.compute_dollars, e.engineering_hours, e.engineering_rate),
        },
    }


TABLE_COLUMNS = ["candidate", "kind", f"accuracy ({DECISION_SPLIT}, 95% CI)", "test accuracy", "macro-F1", "$/item",
                 "items/s", "$/month", "saves $/month", "payback", "vs current", "caps"]


def table_cells(row: dict[str, Any]) -> list[str]:
    """A ``candidate_row`` as the cells of ``TABLE_COLUMNS`` (HTML report, dashboard)."""
    estimated = " (est.)" if row["cost_provenance"] == "estimated" else ""
    test = row["test"]
    assumed = row["cascade"] is not None and row["cascade"]["assumed"]
    return [row["label"], row["kind"] + (" (hosted)" if row["hosted"] else "") + (" (assumed fallback)" if assumed else ""),
            f"{pct(row['accuracy'])} {interval(row['accuracy_ci'])}", "-" if test is None else pct(test["accuracy"]),
            pct(row["macro_f1"]), money(row["cost_per_item"]) + estimated,
            "-" if row["items_per_second"] is None else f"{row['items_per_second']:,.1f}",
            money(row["monthly_cost"]), money(row["monthly_savings"]), payback_text(row["payback_months"]),
            STANDING_MARKS[row["standing"]], "; ".join(row["caps"]) or "-"]


def provenance_lines(report: Report) -> list[str]:
    """Where each number of the report comes from (the HTML report and the dashboard list them)."""
    e, current = report.economics, report.current
    price = e.hardware_price()
    error_rate = {"measured": f"measured by {current.record.name if current.record else ''} on {DECISION_SPLIT}",
                  "user": "entered by you", "unknown": "unknown"}[current.provenance]
    estimated = [r.record.label for r in report.ranked if r.record.cost_provenance == "estimated"]
    return [
        f"Volume: {e.tickets_per_month:,} items a month (entered by you).",
        f"Current solution: {current.name}, {money(e.current_monthly_cost)}/month "
        f"({money(e.current_cost_per_item)} an item, entered by you), error rate {pct(current.error_rate)} "
        f"({error_rate}).",
        f"Cost per error: {money(e.cost_per_error)} (entered by you).",
        f"Serving hardware: {e.hardware} at {money(price.value)}/hour ({price.provenance.value}: {price.source}).",
        f"One-off cost: compute of every candidate {money(report.compute_dollars)} (measured) + "
        f"{e.engineering_hours:g} engineering hours x {money(e.engineering_rate)}.",
        "$/item of self-served candidates: items/second measured at the serving batch size, on the machine named "
        "in each candidate's cost source."
        + (f" Estimated (measured on another machine than {e.hardware}): {', '.join(estimated)}." if estimated else ""),
        f"Every candidate is judged and ranked on the {DECISION_SPLIT} split; test accuracy is reported only.",
        *label_lines(report.data),
        *assumption_lines([r.record for r in report.ranked]),
    ]


def label_lines(data: StudyData) -> list[str]:
    """Who labelled the held-out rows, when a model did: then a score there is agreement with it."""
    return [f"The {split} labels come from {teacher} (`roitune label`): '{split} accuracy' is {measures(data, split)}, "
            "not accuracy." for split in (DECISION_SPLIT, "test") if (teacher := data.teacher(split)) is not None]


# --- the value of more labels ---------------------------------------------------------------


def curve_paybacks(curve: LearningCurve, economics: Economics) -> tuple[LabelPayback | None, ...]:
    """The payback of the curve's ``more_rows`` labels at its estimated gain, then at the upper and
    lower ends of the gain's interval (fastest, slowest); () without a fit. The retraining's compute
    is the full-data retraining's, scaled by rows (an estimate: training time grows with rows)."""
    if curve.gain is None:
        return ()
    last = curve.points[-1]
    retrain = last.compute_dollars * (last.train_rows + curve.more_rows) / last.train_rows
    return tuple(label_payback(curve.more_rows, gain, economics, retrain_dollars=retrain)
                 for gain in (curve.gain.value, curve.gain.hi, curve.gain.lo))


def curve_lines(curve: LearningCurve, economics: Economics) -> list[str]:
    """The curve in words: the measured points, the fit, what more rows add, their payback, the check."""
    n = curve.points[-1].n
    lines = [f"Learning curve of {curve.candidate}: {curve.measures} on {n:,} {curve.split} items"]
    lines += [f"  {p.train_rows:,} rows ({100 * p.fraction:g}%): {pct(p.accuracy)} {interval(p.accuracy_ci)}"
              for p in curve.points]
    if curve.fit is None or curve.gain is None or curve.at_more is None:
        return lines + ["  too few training sizes to fit a curve (3 needed)"]
    f, g, now = curve.fit, curve.gain, curve.train_rows
    lines += [f"  fit: {f.a:.4f} - {f.b:.4g} x rows^-{f.c:.3f} (ceiling {pct(f.a)}, RMSE {100 * f.rmse:.2f} points)",
              f"  {curve.more_rows:,} more labelled rows ({now:,} -> {now + curve.more_rows:,}): {points(g.value)} "
              f"points (95% CI {points(g.lo)}..{points(g.hi)}), to {pct(curve.at_more.value)} "
              f"{interval((curve.at_more.lo, curve.at_more.hi))}"]
    payback = curve_paybacks(curve, economics)
    if payback[0] is None:
        lines.append("  set economics.cost_per_label to price them and see their payback")
    else:
        best, fast, slow = payback
        lines.append(f"  at {money(economics.cost_per_label)} a label: {money(best.one_off)} once (labels + "
                     f"retraining), saving {money(best.monthly_savings)}/month in errors; payback "
                     f"{payback_text(best.payback_months)} (across the interval: {payback_text(fast.payback_months)} "
                     f"to {payback_text(slow.payback_months)})")
    if curve.check is not None:
        c = curve.check
        verdict = "within" if c.within else "OUTSIDE"
        lines.append(f"  check: fitted without the {c.train_rows:,}-row point, the curve predicted "
                     f"{pct(c.predicted.value)} {interval((c.predicted.lo, c.predicted.hi))} there; measured "
                     f"{pct(c.measured)}, {verdict} the interval")
    return lines


def curve_json(curve: LearningCurve, economics: Economics) -> dict[str, Any]:
    """The curve as recorded, with its payback at these economics."""
    paybacks = curve_paybacks(curve, economics)
    return {**asdict(curve), "check_within": None if curve.check is None else curve.check.within,
            "payback": None if not paybacks or paybacks[0] is None else {
                **asdict(paybacks[0]), "cost_per_label": economics.cost_per_label,
                "payback_months_range": [paybacks[1].payback_months, paybacks[2].payback_months]}}
