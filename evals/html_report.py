"""``roitune report --html``: one self-contained file (plotly.js inlined once, nothing fetched)."""

from __future__ import annotations

import html

from evals.charts import (cascade_curve, cascade_figure, cascade_rows, curve_figure, pareto_figure, payback_figure,
                          payback_horizon, payback_series)
from evals.report import (TABLE_COLUMNS, Report, candidate_row, curve_lines, headline_text, key_numbers,
                          provenance_lines, table_cells)

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
.sentence.keep_current, .sentence.no_metrics, .sentence.not_enough_items, .sentence.missing_current_quality { border-color: #b7791f; background: #fdf8ee; }
tr.winner { background: #f3faf3; font-weight: 600; }
"""


def _table_html(report: Report) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["#", *TABLE_COLUMNS])
    rows = []
    for i, r in enumerate(report.ranked, 1):
        cls = ' class="winner"' if r.record.name == report.recommendation.winner else ""
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in [str(i), *table_cells(candidate_row(r))])
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _numbers_html(report: Report) -> str:
    return "".join(
        f'<div class="number"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div></div>'
        for label, value in key_numbers(report))


def _provenance_html(report: Report) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in provenance_lines(report)) + "</ul>"


def _cascades_html(report: Report, config: dict) -> str:
    """The cascades (a table) and the cheapest one's curve over its threshold; nothing without any."""
    import plotly.io as pio

    rows = cascade_rows(report)
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row.values()) + "</tr>" for row in rows)
    first = next(r.record for r in report.ranked if r.record.cascade is not None)
    curve = pio.to_html(cascade_figure(cascade_curve(report, first), first.cascade.threshold), full_html=False,
                        include_plotlyjs=False, config=config)
    return f"""<h2>Cascades: local when confident, the fallback otherwise</h2>
<p class="muted">Threshold chosen on validation (the lowest monthly dollars), applied unchanged to test.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p class="muted">{html.escape(first.label)} over its threshold (validation):</p>
{curve}
"""


def _curves_html(report: Report, config: dict) -> str:
    """Each recorded learning curve: its figure and what more labels are worth; nothing without any."""
    import plotly.io as pio

    if not report.curves:
        return ""
    parts = ["<h2>The value of more labels</h2>",
             '<p class="muted">Retrained on growing fractions of the training rows (`roitune curve`); the line is '
             "accuracy(rows) = a - b x rows^-c fitted to the measured points, the band its 95% bootstrap interval.</p>"]
    for curve in report.curves:
        lines = curve_lines(curve, report.economics)
        parts.append(f"<h3>{html.escape(lines[0])}</h3><ul>"
                     + "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines[1:]) + "</ul>")
        parts.append(pio.to_html(curve_figure(curve), full_html=False, include_plotlyjs=False, config=config))
    return "\n".join(parts)


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
{_cascades_html(report, config)}
{_curves_html(report, config)}
<h2>Where the numbers come from</h2>
{_provenance_html(report)}
</body></html>
"""
