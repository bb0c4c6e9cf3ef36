"""The report's charts, drawn the same in the HTML report and the dashboard: quality against
$/item with the non-dominated front, cumulative net savings by month, each cascade over its
threshold, and learning curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from evals.cascade import Point, threshold_curve
from evals.cost import Roi, payback_curve
from evals.formatting import money, payback_text, pct, shorten
from evals.record import CandidateRecord, LearningCurve
from evals.report import Report

if TYPE_CHECKING:
    import plotly.graph_objects as go

QUALITY_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}
PAYBACK_MONTHS = 12
# Colours shared by the report and the dashboard, so a candidate kind looks the same everywhere.
COLOURS = {"baseline": "#4C78A8", "trial": "#F58518", "cascade": "#B279A2", "current": "#6B6B6B",
           "front": "#2CA02C"}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (quality, $/item) points, True where no other point is as good on both and better on one."""
    return [
        not any(q2 >= q and c2 <= c and (q2 > q or c2 < c) for q2, c2 in points)
        for q, c in points
    ]


@dataclass(frozen=True)
class ParetoPoint:
    name: str
    kind: str  # baseline, trial, cascade or current
    quality: float
    cost_per_item: float
    split: str
    on_front: bool = False


def pareto_points(report: Report, metric: str = "accuracy") -> list[ParetoPoint]:
    """Every candidate with a known ``metric`` score on the decision split (a cascade into an assumed
    fallback has no macro-F1), and the current solution
    when its accuracy is known (measured or entered), flagged when on the non-dominated front."""
    points = [ParetoPoint(r.record.label, r.record.kind.value, getattr(r.result, metric), r.record.cost_per_item,
                          "validation") for r in report.ranked
              if r.record is not report.current.record and not math.isnan(getattr(r.result, metric))]
    current = report.current
    if metric == "accuracy" and current.error_rate is not None:
        points.append(ParetoPoint(f"{current.name} (current)", "current", 1 - current.error_rate,
                                  current.cost_per_item, current.provenance))
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
                                ("cascade", "cascades", "diamond"), ("current", "current solution", "star")):
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
    if p.kind == "trial":
        return p.name.split(":")[0]
    return shorten(p.name, 18)


def payback_figure(series: Sequence[tuple[str, Roi]], months: int = PAYBACK_MONTHS) -> go.Figure:
    """Cumulative net savings by month (one-off cost first); where a line crosses 0 it has paid back."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, roi in series:
        fig.add_trace(go.Scatter(x=list(range(months + 1)), y=payback_curve(roi, months), mode="lines+markers",
                                 name=f"{shorten(name, 40)} (payback {payback_text(roi.payback_months)})",
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
    return [(r.record.label, r.roi) for r in [best, *others]]


def payback_horizon(series: Sequence[tuple[str, Roi]]) -> int:
    """Months to draw: a year, or twice the first line's payback, up to five years."""
    payback = series[0][1].payback_months if series else None
    return PAYBACK_MONTHS if payback is None else min(60, max(PAYBACK_MONTHS, math.ceil(2 * payback)))


def cascade_figure(points: Sequence[Point], threshold: float) -> go.Figure:
    """A cascade over its threshold (validation): the share answered locally and the accuracy on the
    left axis, monthly dollars on the right, the chosen threshold marked."""
    import plotly.graph_objects as go

    xs = [p.threshold for p in points]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[p.coverage for p in points], mode="lines", name="answered locally",
                             line={"color": COLOURS["baseline"], "shape": "hv"},
                             hovertemplate="threshold %{x:.3f}: %{y:.1%} local<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[p.accuracy for p in points], mode="lines", name="accuracy",
                             line={"color": COLOURS["front"], "shape": "hv"},
                             hovertemplate="threshold %{x:.3f}: accuracy %{y:.1%}<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[p.monthly_cost for p in points], mode="lines", name="$/month", yaxis="y2",
                             line={"color": COLOURS["cascade"], "shape": "hv"},
                             hovertemplate="threshold %{x:.3f}: %{y:$,.0f}/month<extra></extra>"))
    chosen = min(points, key=lambda p: abs(p.threshold - threshold)) if points else None
    if chosen is not None:
        fig.add_trace(go.Scatter(x=[chosen.threshold], y=[chosen.monthly_cost], mode="markers", yaxis="y2",
                                 name=f"chosen: {chosen.threshold:.3f}", marker={"symbol": "diamond", "size": 13,
                                                                                  "color": COLOURS["cascade"]},
                                 hovertemplate=f"chosen threshold %{{x:.3f}}: {chosen.coverage:.1%} local, accuracy "
                                               f"{chosen.accuracy:.1%}, %{{y:$,.0f}}/month<extra></extra>"))
        fig.add_vline(x=chosen.threshold, line={"color": COLOURS["current"], "dash": "dot"})
    fig.update_layout(xaxis={"title": "threshold: answer locally at this calibrated confidence or above",
                             "range": [min(xs, default=0.0), 1.0]},
                      yaxis={"title": "share / accuracy", "tickformat": ".0%", "range": [0, 1.02]},
                      yaxis2={"title": "dollars a month", "tickformat": "$,.0f", "overlaying": "y", "side": "right"},
                      legend={"orientation": "h", "y": -0.25}, margin={"t": 20, "l": 60, "r": 70, "b": 40}, height=420)
    return fig


def cascade_curve(report: Report, cascade: CandidateRecord) -> list[Point]:
    """A ranked cascade's validation curve over the threshold, at the report's economics."""
    by_number = {r.record.number: r.record for r in report.ranked}
    return threshold_curve(cascade, by_number, report.data, report.economics)


def cascade_rows(report: Report) -> list[dict[str, str]]:
    """The report's cascades, cheapest first, as the HTML report and the dashboard list them."""
    rows = []
    for r in report.ranked:
        parts = r.record.cascade
        if parts is None:
            continue
        test = r.record.test
        rows.append({"cascade": r.record.label, "threshold": f"{parts.threshold:.3f}",
                     "local (validation)": pct(parts.coverage), "local (test)": pct(parts.test_coverage),
                     "accuracy (validation)": pct(r.result.accuracy), "accuracy (test)": pct(test.accuracy if test else None),
                     "$/month": money(r.roi.monthly_cost),
                     "fallback accuracy": f"assumed {pct(parts.assumed_fallback_accuracy)}" if parts.assumed else "measured"})
    return rows


def curve_figure(curve: LearningCurve) -> go.Figure:
    """A learning curve: the measured retrainings (95% Wilson bars), the fitted line with its 95%
    bootstrap band, and the prediction at today's rows plus ``more_rows``; rows on a log axis."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if curve.band:
        rows, mid, lo, hi = (list(column) for column in zip(*curve.band))
        fig.add_trace(go.Scatter(x=rows + rows[::-1], y=hi + lo[::-1], fill="toself", fillcolor="rgba(245,133,24,0.18)",
                                 line={"width": 0}, hoverinfo="skip", name="95% interval"))
        fig.add_trace(go.Scatter(x=rows, y=mid, mode="lines", line={"color": COLOURS["trial"]}, name="fitted curve",
                                 hovertemplate="%{x:,.0f} rows: %{y:.1%}<extra>fitted</extra>"))
    fig.add_trace(go.Scatter(
        x=[p.train_rows for p in curve.points], y=[p.accuracy for p in curve.points], mode="markers", name="measured",
        marker={"color": COLOURS["baseline"], "size": 9},
        error_y={"type": "data", "symmetric": False, "array": [p.accuracy_ci[1] - p.accuracy for p in curve.points],
                 "arrayminus": [p.accuracy - p.accuracy_ci[0] for p in curve.points]},
        hovertemplate="%{x:,.0f} rows: %{y:.1%}<extra>measured</extra>"))
    if curve.at_more is not None:
        later, e = curve.train_rows + curve.more_rows, curve.at_more
        fig.add_trace(go.Scatter(x=[later], y=[e.value], mode="markers", name=f"with {curve.more_rows:,} more rows",
                                 marker={"symbol": "diamond", "size": 12, "color": COLOURS["front"]},
                                 error_y={"type": "data", "symmetric": False, "array": [e.hi - e.value],
                                          "arrayminus": [e.value - e.lo]},
                                 hovertemplate="%{x:,.0f} rows: %{y:.1%}<extra>predicted</extra>"))
    fig.add_vline(x=curve.train_rows, line={"color": COLOURS["current"], "dash": "dot"})
    fig.update_layout(xaxis={"title": "labelled training rows", "type": "log"},
                      yaxis={"title": f"{curve.measures} ({curve.split})", "tickformat": ".0%"},
                      legend={"orientation": "h", "y": -0.25}, margin={"t": 20, "l": 60, "r": 20, "b": 40}, height=420)
    return fig
