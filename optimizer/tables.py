"""Terminal tables of candidates (rich)."""

from __future__ import annotations

from rich.table import Table


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _interval(ci) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def dollars(value) -> str:
    from evals.recommend import money

    return "-" if value is None else money(value)


def candidates_table(rows: list[dict], *, title: str) -> Table:
    """Rows with name, accuracy(+ci), macro_f1, cost_per_item, items_per_second and, when
    present, monthly_cost / monthly_savings / payback_months."""
    money = any("monthly_cost" in r for r in rows)
    table = Table(title=title)
    for column in ["candidate", "n", "accuracy (95% CI)", "macro-F1", "$/item", "items/s"] + (
            ["$/month", "saves $/month", "payback (months)"] if money else []):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    for r in rows:
        cells = [r["name"], str(r.get("n") or "-"), f"{_pct(r.get('accuracy'))} {_interval(r.get('accuracy_ci'))}",
                 _pct(r.get("macro_f1")), dollars(r.get("cost_per_item")),
                 "-" if r.get("items_per_second") is None else f"{r['items_per_second']:.1f}"]
        if money:
            payback = r.get("payback_months")
            cells += [dollars(r.get("monthly_cost")), dollars(r.get("monthly_savings")),
                      "never" if payback is None else f"{payback:.2f}"]
        table.add_row(*cells)
    return table
