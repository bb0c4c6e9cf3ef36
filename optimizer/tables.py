"""The terminal table of candidates: readable in an 80-column terminal.

Five narrow columns (quality on the decision split and on test, monthly dollars, payback, the
standing against the current solution); names wrap instead of being cut. What does not fit, the
caps that left data unused and the prices that are estimates, follows the table as notes.
"""

from __future__ import annotations

from rich.table import Table

from evals.formatting import money, payback_text, pct
from evals.recommend import DECISION_SPLIT
from evals.report import STANDING_MARKS, Report, candidate_row, label_lines


def candidates_table(report: Report, *, title: str, only: set[int] | None = None) -> Table:
    """The ranked candidates (those numbered in ``only``, if given), cheapest monthly cost first."""
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    table.add_column("candidate", overflow="fold", ratio=1, min_width=16)
    for name in (DECISION_SPLIT[:5] + ".", "test", "$/month", "payback", "vs now"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in report.ranked:
        if only is not None and r.record.number not in only:
            continue
        row = candidate_row(r)
        test = row["test"]
        marks = ("*" if row["caps"] else "") + ("~" if row["cost_provenance"] == "estimated" else "")
        table.add_row(f"{row['label']}{marks}", pct(row["accuracy"]), "-" if test is None else pct(test["accuracy"]),
                      money(row["monthly_cost"]), payback_text(row["payback_months"]),
                      STANDING_MARKS[row["standing"]])
    return table


def notes(report: Report, only: set[int] | None = None) -> list[str]:
    """Lines under the table: the current solution, caps (*), estimated prices (~), unjudged."""
    current = report.current
    lines = [f"now: {current.name} at {money(report.current_monthly_cost)}/month, accuracy "
             f"{pct(None if current.error_rate is None else 1 - current.error_rate)} ({current.provenance})"]
    for r in report.ranked:
        if only is not None and r.record.number not in only:
            continue
        if r.record.caps:
            lines.append(f"* {r.record.label}: " + "; ".join(cap.text() for cap in r.record.caps))
        if r.record.cost_provenance == "estimated":
            lines.append(f"~ {r.record.label}: $ estimated: {r.record.cost_source}")
    lines += [f"not judged: {r.label} (no {DECISION_SPLIT} result)" for r in report.unjudged]
    return lines + label_lines(report.data)
