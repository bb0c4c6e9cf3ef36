"""The learning curve (evals.curve) and the payback of more labels (evals.cost), against cases
computed by hand."""

from __future__ import annotations

import math

import optuna
import pytest

from evals.cost import Economics, label_payback
from evals.curve import Measured, check_fractions, fit_curve, learning_curve, predict
from evals.record import add_curve, learning_curves
from evals.report import curve_json, curve_lines, curve_paybacks

# accuracy(n) = 0.9 - 4 / n: at 10, 20, 40, 80 rows 0.5, 0.7, 0.8, 0.85, i.e. exactly 10, 14, 16 and 17
# of 20 items right. Nested right answers (an item right at n stays right), as retrainings tend to be.
ROWS = [10, 20, 40, 80]
RIGHT = [10, 14, 16, 17]
ITEMS = 20


def points() -> list[Measured]:
    return [Measured(n / 80, n, [i < k for i in range(ITEMS)], compute_dollars=0.01 * n / 80)
            for n, k in zip(ROWS, RIGHT)]


def curve(**changes):
    return learning_curve(points(), candidate="classical", number=0, method="classical", split="validation",
                          measures="accuracy", more_rows=changes.pop("more_rows", 80), seed=0, **changes)


def test_the_fit_recovers_the_law_the_points_were_made_from():
    for a, b, c in [(0.9, 4.0, 1.0), (0.9, 2.0, 0.5), (0.95, 1.5, 0.4), (0.7, 0.3, 0.25)]:
        rows = [125, 250, 500, 1000, 2000]
        fit = fit_curve(rows, [a - b * n ** -c for n in rows])
        assert (fit.a, fit.b, fit.c) == pytest.approx((a, b, c), rel=1e-6)
        assert fit.rmse < 1e-9 and fit.fitted_points == 5


def test_the_fit_keeps_its_bounds():
    flat = fit_curve([10, 20, 40], [0.9, 0.8, 0.7])  # falling accuracy: the nearest allowed curve is flat
    assert flat.b == 0 and flat.a == pytest.approx(0.8)
    capped = fit_curve([10, 20, 40], [0.99, 1.0, 1.0])
    assert capped.a == 1.0 and capped.b >= 0
    with pytest.raises(ValueError, match="at least 3 different training sizes"):
        fit_curve([10, 10, 20], [0.5, 0.6, 0.7])


def test_prediction_and_what_more_rows_add_match_hand_arithmetic():
    c = curve()
    assert (c.fit.a, c.fit.b, c.fit.c) == pytest.approx((0.9, 4.0, 1.0), rel=1e-6)
    # 80 more rows: 0.9 - 4 / 160 = 0.875, a gain of 0.875 - 0.85 = 0.025 over today's 80 rows.
    assert c.at_more.value == pytest.approx(0.875, abs=1e-9)
    assert c.gain.value == pytest.approx(0.025, abs=1e-9)
    assert c.gain.lo <= c.gain.value <= c.gain.hi and c.at_more.lo <= 0.875 <= c.at_more.hi
    assert [p.train_rows for p in c.points] == ROWS and [p.accuracy for p in c.points] == [0.5, 0.7, 0.8, 0.85]
    # The check: fitted on 10, 20 and 40 rows only (exact again), it predicts 0.9 - 4 / 80 = 0.85 at 80.
    assert c.check.train_rows == 80 and c.check.predicted.value == pytest.approx(0.85, abs=1e-9)
    assert c.check.measured == 0.85 and c.check.within
    assert len(c.band) == 40 and c.band[0][0] == 10 and c.band[-1][0] == pytest.approx(160)
    assert all(lo <= hi for _, _, lo, hi in c.band)


def test_the_interval_is_deterministic_and_narrows_with_more_items():
    first, again = curve(), curve()
    assert first.gain == again.gain and first.band == again.band
    many = [Measured(p.fraction, p.train_rows, list(p.correct) * 25) for p in points()]  # 500 items, same rates
    wide = predict(points(), 160)[1]
    narrow = predict(many, 160)[1]
    assert narrow.value == pytest.approx(wide.value)
    assert narrow.hi - narrow.lo < (wide.hi - wide.lo) / 2


def test_points_on_different_items_are_refused():
    uneven = points()[:3] + [Measured(1.0, 80, [True] * 10)]
    with pytest.raises(ValueError, match="same"):
        learning_curve(uneven, candidate="x", number=None, method="x", split="validation", measures="accuracy",
                       more_rows=10)


def test_two_sizes_give_points_but_no_curve():
    c = learning_curve(points()[2:], candidate="x", number=None, method="x", split="validation",
                       measures="accuracy", more_rows=10)
    assert c.fit is None and c.gain is None and c.check is None and len(c.points) == 2
    assert curve_lines(c, Economics())[-1] == "  too few training sizes to fit a curve (3 needed)"


def test_payback_of_more_labels_by_hand():
    economics = Economics(tickets_per_month=100_000, cost_per_error=0.5, cost_per_label=0.2)
    # 1,000 labels x $0.20 + $10 retraining = $210 once; 100,000 x 0.02 x $0.50 = $1,000 a month saved.
    payback = label_payback(1000, 0.02, economics, retrain_dollars=10.0)
    assert payback.one_off == pytest.approx(210) and payback.monthly_savings == pytest.approx(1000)
    assert payback.payback_months == pytest.approx(0.21)
    assert label_payback(1000, 0.0, economics).payback_months is None  # no gain: never
    assert label_payback(1000, 0.02, Economics(cost_per_error=0.5)) is None  # no price per label


def test_the_report_prices_the_curve_at_its_gain_and_interval():
    economics = Economics(tickets_per_month=100_000, cost_per_error=0.5, cost_per_label=0.2)
    c = curve()
    best, fast, slow = curve_paybacks(c, economics)
    # 80 labels x $0.20 + the 80-row retraining ($0.01) scaled to 160 rows ($0.02) = $16.02.
    assert best.one_off == pytest.approx(16.02)
    assert best.monthly_savings == pytest.approx(100_000 * 0.025 * 0.5)
    assert best.payback_months == pytest.approx(16.02 / 1250)
    assert fast.monthly_savings == pytest.approx(100_000 * c.gain.hi * 0.5)
    assert slow.monthly_savings == pytest.approx(100_000 * c.gain.lo * 0.5)
    text = "\n".join(curve_lines(c, economics))
    assert "80 more labelled rows (80 -> 160): +2.5 points" in text and "to 87.5%" in text
    assert "at $0.2 a label: $16 once" in text and "measured 85.0%, within the interval" in text
    assert curve_json(c, economics)["payback"]["one_off"] == pytest.approx(16.02)
    assert "set economics.cost_per_label" in "\n".join(curve_lines(c, Economics()))


def test_a_curve_survives_the_study_storage():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    c = curve()
    add_curve(study, c)
    [back] = learning_curves(study)
    assert back == c and back.check.within


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, math.nan])
def test_fractions_outside_0_1_are_refused(bad):
    with pytest.raises(ValueError, match=r"--fractions: .* is outside \(0, 1\]"):
        check_fractions([0.5, bad])


def test_fractions_are_sorted_and_always_end_with_all_rows():
    assert check_fractions([0.5, 0.125, 0.5]) == [0.125, 0.5, 1.0]
