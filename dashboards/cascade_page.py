"""The dashboard's Cascades page: each cascade over its threshold, the chosen point, and how well
every candidate's confidence is calibrated (a page of its own, routed by ``dashboards/app.py``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.data import Context, heading
from evals.charts import cascade_curve, cascade_figure, cascade_rows
from evals.formatting import money, pct


CAPTION = ("A cascade lets a cheap local candidate answer the items it is confident about and escalates the "
           "rest to a fallback. The threshold is chosen on validation (the lowest monthly dollars) and applied "
           "unchanged to test; `roitune cascade` records them, `roitune serve --escalate-to` serves them.")


def cascades(ctx: Context) -> None:
    heading("Cascades", CAPTION)
    report = ctx.report
    ranked = [r for r in report.ranked if r.record.cascade is not None]
    if not ranked:
        st.info("No cascade recorded: run `roitune cascade` (the sweep does at its end). A cascade is recorded only "
                "when it costs less a month than its local candidate alone and its fallback alone.")
    else:
        names = [r.record.label for r in ranked]
        name = st.selectbox("Cascade", names, key="cascade")
        chosen = ranked[names.index(name)]
        parts = chosen.record.cascade
        for column, (label, value) in zip(st.columns(5), [
                ("Threshold", f"{parts.threshold:.3f}"), ("Answered locally", pct(parts.coverage)),
                ("Accuracy (validation)", pct(chosen.result.accuracy)), ("Monthly cost", money(chosen.roi.monthly_cost)),
                ("Answered locally (test)", pct(parts.test_coverage))]):
            column.metric(label, value, border=True)
        if parts.assumed:
            st.warning(chosen.record.details.get("assumption", "The fallback's accuracy is assumed."),
                       icon=":material/warning:")
        st.plotly_chart(cascade_figure(cascade_curve(report, chosen.record), parts.threshold), width="stretch",
                        key="cascade-curve", config={"displaylogo": False})
        st.subheader("Every cascade")
        st.dataframe(pd.DataFrame(cascade_rows(report)), hide_index=True, width="stretch")
    st.subheader("Calibration")
    rows = [{"candidate": r.record.label, "temperature": f"{c.temperature:.3f}", "fitted on": c.fitted_on,
             "ECE validation, before": f"{c.ece_validation[0]:.3f}", "after": f"{c.ece_validation[1]:.3f}",
             "ECE test, before": "-" if c.ece_test is None else f"{c.ece_test[0]:.3f}",
             "after ": "-" if c.ece_test is None else f"{c.ece_test[1]:.3f}"}
            for r in report.ranked if (c := r.record.calibration) is not None]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        st.caption("Temperature scaling fitted on validation; expected calibration error (15 bins) before and after, "
                   "on validation (where it was fitted) and on test (held out).")
    else:
        st.info("No candidate is calibrated yet: `roitune cascade` calibrates them.")
