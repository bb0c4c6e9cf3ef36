"""The report: the recommendation, the candidates ranked by dollars, and the two charts.

One model, built from the study and the user's economics, feeds ``roitune report`` (table,
JSON, self-contained HTML) and the dashboard, so every surface shows the same numbers
formatted the same way. Torch-free; plotly is imported only by the chart functions.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from evals.candidates import Candidate
from evals.cost import Economics, Roi, monthly_cost, one_off_cost, payback_curve, serving_cost_per_item
from evals.recommend import DAYS_PER_MONTH, RankedCandidate, Recommendation, rank, recommend
from evals.recommend import money  # the sentence's formatter: tables and sentence agree
from evals.results import candidates, compute_dollars

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

QUALITY_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}
PAYBACK_MONTHS = 12
# Colours shared by the report and the dashboard, so a candidate kind looks the same everywhere.
COLOURS = {"baseline": "#4C78A8", "trial": "#F58518", "current": "#6B6B6B", "front": "#2CA02C"}


@dataclass(frozen=True)
class Report:
    """Everything the report and the dashboard show about one study."""

    study: str
    recommendation: Recommendation
    ranked: list[RankedCandidate]  # cheapest monthly cost first
    economics: Economics
    compute_dollars: float

    @property
    def headline(self) -> RankedCandidate | None:
        """The candidate the key numbers are about: the recommended one, else the cheapest."""
        chosen = [r for r in self.ranked if r.candidate.name == self.recommendation.winner]
        return (chosen or self.ranked or [None])[0]

    @property
    def current_monthly_cost(self) -> float:
        """What the current solution costs a month, its errors included (as ``roi`` counts it)."""
        e = self.economics
        return monthly_cost(e.tickets_per_month, e.current_cost_per_item, e.current_error_rate or 0.0,
                            e.cost_per_error)


def build_report(found: Sequence[Candidate], gold: Sequence[str], economics: Economics, *,
                 compute_dollars: float, study: str = "") -> Report:
    """Rank and recommend; ``gold`` aligns with the candidates' test predictions."""
    scored = [c for c in found if c.accuracy is not None]
    return Report(
        study=study,
        recommendation=recommend(found, gold, economics, compute_dollars=compute_dollars),
        ranked=rank(scored, economics, compute_dollars=compute_dollars),
        economics=economics,
        compute_dollars=compute_dollars,
    )


def study_report(study: optuna.Study, economics: Economics) -> Report:
    return build_report(candidates(study), study.user_attrs.get("test_gold", []), economics,
                        compute_dollars=compute_dollars(study), study=study.study_name)


# --- what-if: the ROI calculator's inputs -------------------------------------------------


def is_hosted(c: Candidate) -> bool:
    # A hosted API is billed per token, so its $/item does not follow our hardware's price;
    # results.record_baseline names those baselines "baseline:hosted:<model>".
    return c.name.startswith("baseline:hosted")


def reprice(found: Sequence[Candidate], dollars_per_hour: float) -> list[Candidate]:
    """Candidates served on hardware at another $/hour: $/item from their measured items/s."""
    return [
        replace(c, cost_per_item=serving_cost_per_item(dollars_per_hour, c.items_per_second))
        if c.items_per_second and not is_hosted(c) else c
        for c in found
    ]


def what_if(found: Sequence[Candidate], gold: Sequence[str], economics: Economics, *, compute_dollars: float,
            volume: int, dollars_per_hour: float, current_cost_per_item: float, cost_per_error: float) -> Report:
    """The report under other economics; at the config's own values it equals the report."""
    changed = economics.model_copy(update={
        "tickets_per_month": volume,
        "current_monthly_cost": current_cost_per_item * volume,
        "cost_per_error": cost_per_error,
        "hardware_dollars_per_hour": dollars_per_hour,
    })
    return build_report(reprice(found, dollars_per_hour), gold, changed, compute_dollars=compute_dollars)


# --- numbers for people -------------------------------------------------------------------


def payback_text(months: float | None) -> str:
    if months is None:
        return "never"
    if months >= 1:
        return f"{months:.1f} months"
    days = months * DAYS_PER_MONTH
    return "within a day" if days < 1 else f"{round(days)} days"


def pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def interval(ci: Sequence[float] | None) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def volume_text(x: float | None) -> str:
    if x is None:
        return "none"
    return "any" if x == 0 else f"{x:,.0f}/month"


def headline_text(report: Report) -> str:
    """Which candidate the key numbers are about, and why that one."""
    best = report.headline
    if best is None:
        return f"No candidate scored yet; {report.economics.current_solution} costs:"
    why = "recommended" if best.candidate.name == report.recommendation.winner else "cheapest"
    return f"{best.candidate.name} ({why}) against {report.economics.current_solution}:"


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


# --- JSON ---------------------------------------------------------------------------------


def _listed(ci: Sequence[float] | None) -> list[float] | None:
    return None if ci is None else list(ci)


def candidate_row(r: RankedCandidate) -> dict[str, Any]:
    c = r.candidate
    return {
        "name": c.name, "kind": c.kind, "trial_number": c.trial_number,
        "accuracy": c.accuracy, "accuracy_ci": _listed(c.accuracy_ci),
        "macro_f1": c.macro_f1, "macro_f1_ci": _listed(c.macro_f1_ci),
        "split": c.split, "n": c.extra.get("n"),
        "cost_per_item": c.cost_per_item, "cost_provenance": c.cost_provenance,
        "items_per_second": c.items_per_second,
        "monthly_cost": r.roi.monthly_cost, "monthly_savings": r.roi.monthly_savings,
        "payback_months": r.roi.payback_months, "break_even_volume": r.roi.break_even_volume,
    }


def report_json(report: Report) -> dict[str, Any]:
    e = report.economics
    price = e.hardware_price()
    rec = report.recommendation
    return {
        "study": report.study,
        "recommendation": {"sentence": rec.sentence, "winner": rec.winner, "reason": rec.reason,
                           "evidence": rec.evidence},
        "candidates": [candidate_row(r) for r in report.ranked],
        "current": {
            "name": e.current_solution, "cost_per_item": e.current_cost_per_item,
            "error_rate": e.current_error_rate, "monthly_cost": report.current_monthly_cost,
            "monthly_cost_excluding_errors": e.current_monthly_cost, "provenance": "user",
        },
        "compute_dollars": report.compute_dollars,
        "economics": {
            **e.model_dump(),
            "hardware_price": {"dollars_per_hour": price.value, "provenance": price.provenance.value,
                               "source": price.source},
            "one_off_cost": one_off_cost(report.compute_dollars, e.engineering_hours, e.engineering_rate),
        },
    }


# --- charts -------------------------------------------------------------------------------


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (quality, $/item) points, True where no other point is as good on both and better on one."""
    return [
        not any(q2 >= q and c2 <= c and (q2 > q or c2 < c) for q2, c2 in points)
        for q, c in points
    ]


@dataclass(frozen=True)
class ParetoPoint:
    name: str
    kind: str  # baseline, trial or current
    quality: float
    cost_per_item: float
    split: str
    on_front: bool = False


def pareto_points(report: Report, metric: str = "accuracy") -> list[ParetoPoint]:
    """Every candidate with a ``metric`` score, and the current solution when its quality is
    known (the user's error rate), flagged when on the non-dominated front."""
    points = [
        ParetoPoint(r.candidate.name, r.candidate.kind, getattr(r.candidate, metric), r.candidate.cost_per_item,
                    r.candidate.split)
        for r in report.ranked if getattr(r.candidate, metric) is not None
    ]
    e = report.economics
    if metric == "accuracy" and e.current_error_rate is not None:
        points.append(ParetoPoint(f"{e.current_solution} (current)", "current", 1 - e.current_error_rate,
                                  e.current_cost_per_item, "entered"))
    flags = pareto_front([(p.quality, p.cost_per_item) for p in points])
    return [replace(p, on_front=f) for p, f in zip(points, flags)]


def pareto_figure(report: Report, metric: str = "accuracy") -> go.Figure:
    """Quality against $/item (log scale), the non-dominated front drawn as a line."""
    import plotly.graph_objects as go

    points = pareto_points(report, metric)
    fig = go.Figure()
    front = sorted((p for p in points if p.on_front), key=lambda p: p.cost_per_item)
    fig.add_trace(go.Scatter(
        x=[_log_safe(p.cost_per_item) for p in front], y=[p.quality for p in front], mode="lines",
        line={"color": COLOURS["front"], "width": 2, "shape": "hv"}, name="Pareto front", hoverinfo="skip"))
    for kind, label, symbol in (("baseline", "baselines", "square"), ("trial", "sweep trials", "circle"),
                                ("current", "current solution", "star")):
        chosen = [p for p in points if p.kind == kind]
        if not chosen:
            continue
        fig.add_trace(go.Scatter(
            x=[_log_safe(p.cost_per_item) for p in chosen], y=[p.quality for p in chosen],
            mode="markers+text", name=label, text=[_tag(p) for p in chosen],
            # Alternate above and below, so neighbours' labels (similar trials) do not overprint.
            textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(len(chosen))],
            customdata=[[p.name, money(p.cost_per_item), p.split, "yes" if p.on_front else "no"] for p in chosen],
            hovertemplate="%{customdata[0]}<br>" + QUALITY_METRICS[metric] + " %{y:.1%} (%{customdata[2]})"
                          "<br>%{customdata[1]} an item<br>on the front: %{customdata[3]}<extra></extra>",
            marker={"symbol": symbol, "size": 13, "color": COLOURS[kind],
                    "line": {"width": [3 if p.on_front else 0 for p in chosen], "color": COLOURS["front"]}}))
    fig.update_layout(
        xaxis={"title": "$ per item (log scale): cheaper to the left", "type": "log",
               **_log_axis([p.cost_per_item for p in points])},
        yaxis={"title": f"{QUALITY_METRICS[metric]}: better up", "tickformat": ".0%",
               "range": _padded([p.quality for p in points])},
        legend={"orientation": "h", "y": -0.22}, margin={"t": 20, "l": 60, "r": 20, "b": 40}, height=440)
    return fig


def _log_axis(costs: Sequence[float]) -> dict[str, list]:
    """Room each side so labels stay inside, ticks at powers of ten written as
    dollars ($0.000001) rather than SI prefixes (1µ)."""
    logs = [math.log10(_log_safe(c)) for c in costs] or [0.0]
    lo, hi = min(logs) - 0.7, max(logs) + 0.7
    decades = [10.0 ** k for k in range(math.ceil(lo), math.floor(hi) + 1)]
    return {"range": [lo, hi], "tickvals": decades, "ticktext": [money(d) for d in decades]}


def _padded(values: Sequence[float]) -> list[float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(0.02, 0.12 * (hi - lo))  # room for the labels above the best point
    return [max(0.0, lo - pad), min(1.05, hi + pad)]


def _log_safe(cost: float) -> float:
    # A log axis cannot place $0 (a free cached API answer); draw it at a tenth of a micro-cent.
    return max(cost, 1e-9)


def _tag(p: ParetoPoint) -> str:
    """A short on-chart label ("classical", "trial 3"); the hover shows the full name."""
    if p.kind == "baseline":
        return _short(p.name.removeprefix("baseline:"), 18)
    if p.kind == "trial":
        return p.name.split(":")[0]
    return _short(p.name, 18)


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def payback_figure(series: Sequence[tuple[str, Roi]], months: int = PAYBACK_MONTHS) -> go.Figure:
    """Cumulative net savings by month (one-off cost first); where a line crosses 0 it has paid back."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, roi in series:
        fig.add_trace(go.Scatter(x=list(range(months + 1)), y=payback_curve(roi, months), mode="lines+markers",
                                 name=f"{_short(name, 40)} (payback {payback_text(roi.payback_months)})",
                                 hovertemplate="month %{x}: %{y:$,.0f}<extra></extra>"))
    fig.add_hline(y=0, line={"color": COLOURS["current"], "dash": "dot"})
    fig.update_layout(xaxis={"title": "months after switching", "dtick": max(1, months // 12)},
                      yaxis={"title": "dollars", "tickformat": "$,.0f"},
                      legend={"orientation": "h", "y": -0.25}, margin={"t": 20, "l": 70, "r": 20, "b": 40},
                      height=420)
    return fig


def payback_series(report: Report, top: int = 3) -> list[tuple[str, Roi]]:
    """The headline candidate and the next cheapest that save money (the headline alone if it
    does not: a loss-maker's steep line would flatten the others)."""
    best = report.headline
    if best is None:
        return []
    others = [r for r in report.ranked if r is not best and r.roi.monthly_savings > 0][: top - 1]
    return [(r.candidate.name, r.roi) for r in [best, *others]]


def payback_horizon(series: Sequence[tuple[str, Roi]]) -> int:
    """Months to draw: a year, or twice the first line's payback, up to five years."""
    payback = series[0][1].payback_months if series else None
    return PAYBACK_MONTHS if payback is None else min(60, max(PAYBACK_MONTHS, math.ceil(2 * payback)))


# --- HTML ---------------------------------------------------------------------------------

_TABLE_COLUMNS = ["#", "candidate", "kind", "split", "accuracy (95% CI)", "macro-F1", "$/item", "items/s",
                  "$/month", "saves $/month", "payback", "break-even volume"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } .muted { color: #6b6b6b; }
.sentence { font-size: 1.15rem; border-left: 4px solid #2ca02c; background: #f3faf3; padding: .8rem 1rem; }
.numbers { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.number { border: 1px solid #ddd; border-radius: 8px; padding: .6rem 1rem; min-width: 12rem; }
.number .label { color: #6b6b6b; font-size: .85rem; } .number .value { font-size: 1.4rem; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .35rem .5rem; text-align: right; }
th:nth-child(2), td:nth-child(2), th:nth-child(3), td:nth-child(3) { text-align: left; }
.sentence.keep_current, .sentence.no_metrics { border-color: #b7791f; background: #fdf8ee; }
tr.winner { background: #f3faf3; font-weight: 600; }
"""


def table_cells(r: RankedCandidate) -> list[str]:
    """One ranked candidate as the report's table cells (the dashboard's ladder too)."""
    c = r.candidate
    return [c.name, c.kind, c.split, f"{pct(c.accuracy)} {interval(c.accuracy_ci)}".strip(), pct(c.macro_f1),
            money(c.cost_per_item), "-" if c.items_per_second is None else f"{c.items_per_second:,.1f}",
            money(r.roi.monthly_cost), money(r.roi.monthly_savings), payback_text(r.roi.payback_months),
            volume_text(r.roi.break_even_volume)]


def _table_html(report: Report) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _TABLE_COLUMNS)
    rows = []
    for i, r in enumerate(report.ranked, 1):
        cls = ' class="winner"' if r.candidate.name == report.recommendation.winner else ""
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in [str(i), *table_cells(r)])
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _numbers_html(report: Report) -> str:
    return "".join(
        f'<div class="number"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div></div>'
        for label, value in key_numbers(report))


def _provenance_html(report: Report) -> str:
    e = report.economics
    price = e.hardware_price()
    items = [
        f"Volume: {e.tickets_per_month:,} items a month (entered by you).",
        f"Current solution: {e.current_solution}, {money(e.current_monthly_cost)}/month "
        f"({money(e.current_cost_per_item)} an item), error rate {pct(e.current_error_rate)} (entered by you).",
        f"Cost per error: {money(e.cost_per_error)} (entered by you).",
        f"Serving hardware: {e.hardware} at {money(price.value)}/hour ({price.provenance.value}: {price.source}).",
        f"One-off cost: sweep compute {money(report.compute_dollars)} (measured) + {e.engineering_hours:g} "
        f"engineering hours x {money(e.engineering_rate)}.",
        "$/item of served candidates: measured items/second at the serving batch size on this machine.",
    ]
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def render_html(report: Report) -> str:
    """One self-contained HTML file: plotly.js is inlined once, nothing is fetched."""
    import plotly.io as pio

    config = {"displaylogo": False, "responsive": True}
    pareto = pio.to_html(pareto_figure(report), full_html=False, include_plotlyjs="inline", config=config)
    series = payback_series(report)
    payback = pio.to_html(payback_figure(series, payback_horizon(series)), full_html=False,
                          include_plotlyjs=False, config=config)
    title = f"roitune report: {report.study}" if report.study else "roitune report"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">Every candidate scored on the same held-out items and priced per item; ranked by monthly cost
(serving + errors) against {html.escape(report.economics.current_solution)}.</p>
<p class="sentence {report.recommendation.reason}">{html.escape(report.recommendation.sentence)}</p>
<p><strong>{html.escape(headline_text(report))}</strong></p>
<div class="numbers">{_numbers_html(report)}</div>
<h2>Candidates</h2>
{_table_html(report)}
<h2>Quality against cost</h2>
<p class="muted">Baselines and sweep trials together; ringed points are on the non-dominated front.</p>
{pareto}
<h2>Payback: cumulative net savings against {html.escape(report.economics.current_solution)}</h2>
{payback}
<h2>Where the numbers come from</h2>
{_provenance_html(report)}
</body></html>
"""
