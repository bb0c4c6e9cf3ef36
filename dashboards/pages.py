"""The dashboard's pages, one function each; ``dashboards/app.py`` routes between them.

Every page takes the same ``Context`` (the study snapshot and the report on it) and shows
numbers through ``evals.report``'s formatters, so they read exactly as ``roitune report``.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards.data import Context, Snapshot, heading
from evals.charts import (
    COLOURS,
    QUALITY_METRICS,
    pareto_figure,
    pareto_points,
    payback_figure,
    payback_horizon,
    payback_series,
)
from evals.formatting import money, payback_text, pct, volume_text
from evals.metrics import INVALID
from evals.record import CandidateRecord
from evals.report import (
    TABLE_COLUMNS,
    Report,
    candidate_row,
    headline_text,
    key_numbers,
    provenance_lines,
    table_cells,
    what_if,
)

LADDER_COLUMNS = ["", *TABLE_COLUMNS]
# The overview fits its ladder on one screen.
OVERVIEW_COLUMNS = ["", "candidate", TABLE_COLUMNS[2], "test accuracy", "$/item", "$/month", "saves $/month",
                    "payback", "vs current", "caps"]
_SENTENCE_BOX = {"replace": st.success, "keep_current": st.warning, "no_metrics": st.info}


# --- shared pieces --------------------------------------------------------------------------


def _sentence(report: Report) -> None:
    rec = report.recommendation
    _SENTENCE_BOX.get(rec.reason, st.info)(rec.sentence, icon=":material/lightbulb:")


def _metrics(numbers: Sequence[tuple[str, str]]) -> None:
    for column, (label, value) in zip(st.columns(len(numbers)), numbers):
        column.metric(label, value, border=True)


def ladder_frame(report: Report) -> pd.DataFrame:
    """The ranked candidates as the report's table; ★ marks the recommended one."""
    rows = [["★" if r.record.name == report.recommendation.winner else "", *table_cells(candidate_row(r))]
            for r in report.ranked]
    return pd.DataFrame(rows, columns=LADDER_COLUMNS)


def _ladder(report: Report, columns: Sequence[str] = LADDER_COLUMNS) -> None:
    if not report.ranked:
        st.info("No candidate has been scored yet: run `roitune baseline` and `roitune sweep`.")
        return
    st.dataframe(ladder_frame(report)[list(columns)], hide_index=True, width="stretch")


def _chart(figure, key: str, title: str | None = None) -> None:
    if title:
        st.markdown(f"**{title}**")
    st.plotly_chart(figure, width="stretch", key=key, config={"displaylogo": False})


# --- Overview -----------------------------------------------------------------------------


def overview(ctx: Context) -> None:
    report = ctx.report
    e = report.economics
    heading("Should you fine-tune?",
            f"Study **{ctx.snapshot.study}**: {len(report.ranked)} candidates scored on the same held-out items and "
            f"priced per item, against {e.current_solution} at {e.tickets_per_month:,} items a month.")
    _sentence(report)
    st.markdown(f"**{headline_text(report)}**")
    _metrics(key_numbers(report))
    st.subheader("The ladder, cheapest monthly cost first")
    _ladder(report, OVERVIEW_COLUMNS)
    left, right = st.columns(2)
    with left:
        _chart(pareto_figure(report), "overview-pareto", "Accuracy against $/item")
    with right:
        series = payback_series(report)
        _chart(payback_figure(series, payback_horizon(series)), "overview-payback",
               f"Cumulative net savings against {e.current_solution}")
    with st.expander("Where the numbers come from"):
        st.markdown("\n".join(f"- {line}" for line in provenance_lines(report)))


# --- Pareto front -------------------------------------------------------------------------


def pareto(ctx: Context) -> None:
    st.title("Quality against cost")
    metric = st.radio("Quality", list(QUALITY_METRICS), format_func=QUALITY_METRICS.get, horizontal=True,
                      key="pareto-metric")
    _chart(pareto_figure(ctx.report, metric), "pareto")
    st.caption("Baselines, sweep trials and cascades together, at their validation score (where the verdict is "
               "decided); ringed points are on the non-dominated front (no other candidate is both better and "
               "cheaper).")
    front = _front_rows(ctx.report, metric)
    st.subheader("On the front")
    st.dataframe(pd.DataFrame(front), hide_index=True, width="stretch")


def _front_rows(report: Report, metric: str) -> list[dict[str, Any]]:
    return [{"candidate": p.name, "kind": p.kind, "split": p.split, QUALITY_METRICS[metric]: pct(p.quality),
             "$/item": money(p.cost_per_item)}
            for p in sorted(pareto_points(report, metric), key=lambda p: p.cost_per_item) if p.on_front]


# --- ROI calculator -----------------------------------------------------------------------


def roi_calculator(ctx: Context) -> None:
    heading("ROI calculator", "Move the sliders: monthly cost, savings and payback are recomputed with the same "
            "formulas as the report. Self-served candidates are repriced from their measured items/second.")
    snap, e = ctx.snapshot, ctx.source.economics
    if not ctx.report.ranked:
        st.info("No candidate has been scored yet: run `roitune baseline` and `roitune sweep`.")
        return
    names = [r.record.name for r in ctx.report.ranked]
    name = st.selectbox("Candidate", names, index=names.index(ctx.report.headline.record.name),
                        key="roi-candidate")
    volume, dollars_per_hour, api_price, cost_per_error = _roi_inputs(e)
    result = what_if(ctx.report, found=snap.records, measured=snap.measured, volume=volume,
                     dollars_per_hour=dollars_per_hour, current_cost_per_item=api_price, cost_per_error=cost_per_error)
    chosen = next(r for r in result.ranked if r.record.name == name)
    _metrics([("Current monthly cost", money(chosen.roi.current_monthly_cost)),
              ("Candidate monthly cost", money(chosen.roi.monthly_cost)),
              ("Monthly savings", money(chosen.roi.monthly_savings)),
              ("Payback", payback_text(chosen.roi.payback_months)),
              ("Break-even volume", volume_text(chosen.roi.break_even_volume))])
    left, right = st.columns(2, gap="large")
    with left:
        series = [(name, chosen.roi)]
        _chart(payback_figure(series, payback_horizon(series)), "roi-payback", "Cumulative net savings")
    with right:
        st.markdown("**The recommendation at these numbers**")
        _sentence(result)
    st.subheader("Every candidate at these numbers")
    _ladder(result)


def _roi_inputs(e) -> tuple[int, float, float, float]:
    hardware = e.hardware_price().value
    current = e.current_cost_per_item
    left, right = st.columns(2, gap="large")
    volume = left.slider("Tickets per month", 1_000, max(10 * e.tickets_per_month, 1_000_000),
                         max(e.tickets_per_month, 1_000), step=1_000, format="%d", key="volume")
    dollars_per_hour = left.slider("Serving hardware, $/hour", 0.01, max(10.0, 2 * hardware), hardware, step=0.0001,
                                   format="$%.4f", key="hardware", help=f"{e.hardware} by default")
    api_price = right.slider(f"{e.current_solution}, $/item (API price)", 0.0, max(0.005, 4 * current), current,
                             step=0.00001, format="$%.5f", key="api-price")
    cost_per_error = right.slider("Cost per error, $", 0.0, max(1.0, 4 * e.cost_per_error), e.cost_per_error,
                                  step=0.01, format="$%.2f", key="cost-per-error")
    return volume, dollars_per_hour, api_price, cost_per_error


# --- Trials -------------------------------------------------------------------------------


def trials(ctx: Context) -> None:
    snap = ctx.snapshot
    st.title("Sweep trials")
    if not snap.trials:
        st.info("No sweep trial yet: `roitune sweep` adds them (this page follows a running sweep).")
        return
    states = pd.Series([t.state.name for t in snap.trials]).value_counts()
    _metrics([("Trials", str(len(snap.trials))), *((s.title(), str(states.get(s, 0)))
              for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")), ("Compute so far", money(snap.compute_dollars))])
    st.subheader("History")
    st.dataframe(trial_frame(snap), hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left:
        st.subheader("Which settings matter")
        _importances(snap)
    with right:
        st.subheader("Validation checks during training")
        _intermediate(snap)
    st.subheader("Failures")
    failed = [snap.record(t.number) for t in snap.trials if t.state.name == "FAIL"]
    if failed:
        st.dataframe(pd.DataFrame([{"trial": r.number, "name": r.name,
                                    "reason": r.fail_reason or "(no reason recorded)"} for r in failed]),
                     hide_index=True, width="stretch")
    else:
        st.success("No trial failed.")


def trial_frame(snap: Snapshot) -> pd.DataFrame:
    rows = []
    for t in snap.trials:
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        values = ", ".join(f"{v:,.4g}" for v in t.values) if t.values else ""
        rows.append({"trial": t.number, "state": t.state.name, "value": values, "name": snap.record(t.number).name,
                     "seconds": None if duration is None else round(duration, 1), **t.params})
    return pd.DataFrame(rows)


def _varying_params(complete: Sequence) -> list[str]:
    names = sorted({p for t in complete for p in t.params})
    return [p for p in names if len({repr(t.params.get(p)) for t in complete}) > 1]


def _importances(snap: Snapshot) -> None:
    complete = [t for t in snap.trials if t.state.name == "COMPLETE" and t.values]
    if len(complete) < 2:
        st.info(f"Parameter importances need at least 2 completed trials; the sweep has {len(complete)}.")
        return
    varying = _varying_params(complete)
    if not varying:
        st.info(f"The {len(complete)} completed trials all used the same settings: nothing to attribute.")
        return
    importances = param_importances(snap.fingerprint, _trials=complete, _directions=snap.directions,
                                    _params=varying)
    names = list(importances)[::-1]
    figure = go.Figure(go.Bar(x=[importances[n] for n in names], y=names, orientation="h",
                              marker_color=COLOURS["trial"]))
    figure.update_layout(xaxis={"title": "importance (fANOVA, share of the objective's variance)"},
                         height=max(240, 40 * len(names) + 120), margin={"t": 20, "l": 10, "r": 10, "b": 40})
    _chart(figure, "importances")
    st.caption(f"From {len(complete)} completed trials (objective: {_objective_label(snap)}).")


@st.cache_data(show_spinner=False)
def param_importances(fingerprint: str, *, _trials: Sequence, _directions: Sequence[str],
                      _params: Sequence[str]) -> dict[str, float]:
    """fANOVA importances of the first objective; cached until a trial changes (the fingerprint)."""
    import optuna

    study = optuna.create_study(directions=list(_directions))
    study.add_trials(list(_trials))
    target = (lambda t: t.values[0]) if len(_directions) > 1 else None
    return optuna.importance.get_param_importances(study, params=list(_params), target=target)


def _objective_label(snap: Snapshot) -> str:
    return "expected monthly $" if len(snap.directions) == 1 else "macro-F1"


def _intermediate(snap: Snapshot) -> None:
    reported = [t for t in snap.trials if t.intermediate_values]
    if not reported:
        st.info("No trial has reported a validation check yet (the pruner needs them; checks run during training).")
        return
    figure = go.Figure()
    for t in reported:
        steps = sorted(t.intermediate_values)
        figure.add_trace(go.Scatter(x=steps, y=[t.intermediate_values[s] for s in steps], mode="lines+markers",
                                    name=f"trial {t.number} ({t.state.name.lower()})"))
    figure.update_layout(xaxis={"title": "validation check"}, yaxis={"title": _objective_label(snap)},
                         height=360, margin={"t": 20, "l": 10, "r": 10, "b": 40})
    _chart(figure, "intermediate")


# --- Errors -------------------------------------------------------------------------------


def errors(ctx: Context) -> None:
    snap = ctx.snapshot
    st.title("Where the candidates go wrong")
    # A cascade into an assumed fallback has no answers for the items it escalates: nothing to list.
    scored = {r.number: r for r in snap.records if r.state == "COMPLETE" and (r.validation or r.test)
              and not (r.cascade is not None and r.cascade.assumed)}
    if not scored:
        st.info("No candidate has been scored yet: run `roitune baseline` and `roitune sweep`.")
        return
    number = st.selectbox("Candidate", list(scored), format_func=lambda n: _candidate_label(scored[n]),
                          key="errors-candidate")
    record = scored[number]
    split = "test" if record.test is not None else "validation"
    result = record.result(split)
    _metrics([("Accuracy", pct(result.accuracy)), ("Macro-F1", pct(result.macro_f1)),
              (f"Items ({split})", f"{result.n:,}"), (f"Wrong ({split})", f"{result.n - result.correct:,}")])
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Confusion matrix")
        show_correct = st.toggle("Show correct answers (the diagonal)", value=False, key="errors-diagonal")
        _chart(confusion_figure(result.confusion, result.confusion_columns, snap.data.labels, show_correct),
               "confusion")
    with right:
        st.subheader("F1 by class")
        _chart(per_class_figure(result.per_class_f1), "per-class")
    st.subheader(f"Misclassified {split} examples")
    rows = misclassified_rows(snap, record, split)
    st.caption(f"{len(rows)} of {result.n} scored {split} items are wrong."
               + ("" if split == "test" else " This candidate was not scored on test: the sweep scores only its "
                  "finalists there, once, after choosing them on validation."))
    st.dataframe(pd.DataFrame(rows, columns=["text", "gold", "predicted"]), hide_index=True, width="stretch")


def _candidate_label(r: CandidateRecord) -> str:
    hosted = " (hosted)" if r.hosted else ""
    split = "test" if r.test is not None else "validation"
    return f"{r.label}{hosted}: {pct(r.result(split).accuracy)} on {split}"


def confusion_figure(confusion: list[list[int]], columns: Sequence[str], labels: Sequence[str],
                     show_correct: bool) -> go.Figure:
    columns = list(columns) or list(labels)
    rows = [list(r) for r in confusion]
    if not show_correct:  # blank the diagonal so the confusions set the colour scale
        for i in range(min(len(rows), len(columns))):
            rows[i][i] = None
    figure = go.Figure(go.Heatmap(z=rows, x=columns, y=list(labels)[: len(rows)], colorscale="Oranges",
                                  hovertemplate="gold %{y}<br>predicted %{x}<br>%{z} items<extra></extra>"))
    figure.update_layout(xaxis={"title": "predicted", "tickangle": -60}, yaxis={"title": "gold", "autorange": "reversed"},
                         height=max(420, 16 * len(rows) + 200), margin={"t": 10, "l": 10, "r": 10, "b": 10})
    return figure


def per_class_figure(per_class_f1: dict[str, float]) -> go.Figure:
    ordered = sorted(per_class_f1.items(), key=lambda kv: kv[1], reverse=True)  # worst at the top
    figure = go.Figure(go.Bar(x=[v for _, v in ordered], y=[k for k, _ in ordered], orientation="h",
                              marker_color=COLOURS["baseline"], hovertemplate="%{y}: F1 %{x:.2f}<extra></extra>"))
    figure.update_layout(xaxis={"title": "F1", "range": [0, 1]}, height=max(420, 16 * len(ordered) + 120),
                         margin={"t": 10, "l": 10, "r": 10, "b": 10})
    return figure


def misclassified_rows(snap: Snapshot, record: CandidateRecord, split: str) -> list[dict[str, str]]:
    """The scored items of ``split`` the candidate got wrong."""
    gold, texts = snap.data.gold(split), snap.data.texts(split)
    rows = []
    for item, predicted in record.result(split).predicted_labels(snap.data.labels).items():
        if predicted != gold[item]:
            rows.append({"text": texts[item], "gold": gold[item], "predicted": predicted or INVALID})
    return rows
