"""Numbers for people, formatted the same way in the sentence, the tables, the HTML report, the
dashboard, the model card and the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence

DAYS_PER_MONTH = 365.25 / 12


def money(x: float | None) -> str:
    """Dollars: $2,450 / $3.20 / $0.000004 (never scientific notation); '-' when unknown."""
    if x is None:
        return "-"
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 10:
        return f"{sign}${x:,.0f}"
    if x >= 1 or x == 0:
        return f"{sign}${x:,.2f}"
    # Per-item prices: two significant digits.
    decimals = -math.floor(math.log10(x)) + 1
    return f"{sign}${x:.{decimals}f}".rstrip("0").rstrip(".")


def pct(x: float | None) -> str:
    """A proportion as a percentage with one decimal; '-' when unknown."""
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def interval(ci: Sequence[float] | None) -> str:
    """A proportion's interval in percent: [84.1, 88.9]; '' when there is none."""
    return "" if not ci or math.isnan(ci[0]) else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def points(x: float) -> str:
    """A difference of proportions in percentage points, signed: +1.2 / -0.4 / 0.0."""
    value = round(100 * x, 1) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
    return f"{value:+.1f}" if value else "0.0"


def payback_text(months: float | None) -> str:
    if months is None:
        return "never"
    if months >= 1:
        return f"{months:.1f} months"
    days = round(months * DAYS_PER_MONTH)
    return "within a day" if months * DAYS_PER_MONTH < 1 else f"{days} day{'s' if days > 1 else ''}"


def volume_text(x: float | None) -> str:
    """A break-even volume: 'any' (saves at every volume), 'none', or items a month."""
    if x is None:
        return "none"
    return "any" if x == 0 else f"{x:,.0f}/month"


def p_value(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
