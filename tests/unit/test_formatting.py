"""Numbers for people: the formatting every output shares."""

from evals.formatting import DAYS_PER_MONTH, money, payback_text, points, volume_text


def test_money_never_uses_scientific_notation():
    assert [money(x) for x in (2450.4, 3.2, 0.000004, 0.0000123, 0, -12.5, None)] == \
        ["$2,450", "$3.20", "$0.000004", "$0.000012", "$0.00", "-$12", "-"]


def test_payback_reads_in_days_below_a_month():
    assert payback_text(None) == "never"
    assert payback_text(0.5 / DAYS_PER_MONTH) == "within a day"
    assert payback_text(1.2 / DAYS_PER_MONTH) == "1 day"
    assert payback_text(10.6 / DAYS_PER_MONTH) == "11 days"
    assert payback_text(1.98) == "2.0 months"


def test_points_and_volumes():
    assert [points(x) for x in (0.0123, -0.004, -0.0004)] == ["+1.2", "-0.4", "0.0"]
    assert [volume_text(x) for x in (None, 0, 12345.6)] == ["none", "any", "12,346/month"]
