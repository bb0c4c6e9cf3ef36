"""The dashboard's "More labels" page: each learning curve recorded by ``roitune curve`` (the measured
retrainings, the fitted line and its interval) and what more labelled rows are worth at the
economics of the config (a page of its own, routed by ``dashboards/app.py``)."""

from __future__ import annotations

import streamlit as st

from dashboards.data import Context, heading
from evals.charts import curve_figure
from evals.formatting import money, payback_text, pct, points
from evals.report import curve_lines, curve_paybacks, label_lines


CAPTION = ("What more labelled training rows would add: a candidate's settings retrained on growing fractions of "
           "the training rows, a learning curve accuracy(rows) = a - b x rows^-c fitted through them, and the "
           "payback of the labels at economics.cost_per_label. `roitune curve` records them.")


def labels(ctx: Context) -> None:
    report = ctx.report
    heading("More labels", CAPTION)
    for line in label_lines(report.data):
        st.warning(line, icon=":material/school:")
    if not report.curves:
        st.info("No learning curve recorded: run `roitune curve -c roitune.yaml` (the study's best candidate, or "
                "`--candidate classical`).")
        return
    names = [f"{c.candidate} ({c.created})" for c in report.curves]
    curve = report.curves[names.index(st.selectbox("Curve", names, key="curve"))]
    payback = curve_paybacks(curve, report.economics)
    figures = [("Rows today", f"{curve.train_rows:,}"), (f"{curve.measures.capitalize()} today",
                                                          pct(curve.points[-1].accuracy))]
    if curve.gain is not None:
        figures.append((f"+{curve.more_rows:,} rows add", f"{points(curve.gain.value)} points"))
    if payback and payback[0] is not None:
        figures += [("Labels cost", money(payback[0].one_off)), ("Payback", payback_text(payback[0].payback_months))]
    for column, (label, value) in zip(st.columns(len(figures)), figures):
        column.metric(label, value, border=True)
    st.plotly_chart(curve_figure(curve), width="stretch", key="learning-curve", config={"displaylogo": False})
    # "\$": Streamlit's markdown would read text between two dollar signs as LaTeX.
    st.markdown("\n".join(f"- {line.strip()}".replace("$", "\\$") for line in curve_lines(curve, report.economics)[1:]))
