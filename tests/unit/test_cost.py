import socket

import pytest
from pydantic import ValidationError

from evals.cost import (
    HARDWARE_PRICES,
    Economics,
    Provenance,
    api_price,
    hosted_cost_per_item,
    monthly_cost,
    one_off_cost,
    payback_curve,
    roi,
    serving_cost_per_item,
)


def test_seed_case():
    econ = Economics()  # 5,000,000 tickets, $2,500/month, 8 h x $100 engineering
    assert econ.current_cost_per_item == 0.0005

    same_errors = Economics(current_error_rate=0.1, cost_per_error=2.0)
    r = roi(1e-5, 0.1, same_errors, compute_dollars=50)

    assert r.current_monthly_cost == pytest.approx(2500 + 1_000_000)
    assert r.monthly_cost == pytest.approx(50 + 1_000_000)
    assert r.monthly_savings == 2450
    assert r.one_off_cost == 850
    assert r.payback_months == 850 / 2450
    assert r.break_even_volume == 0.0  # no fixed cost: it saves at any volume


def test_candidate_that_never_pays_back():
    r = roi(0.001, 0.0, Economics(), compute_dollars=50)

    assert r.monthly_savings == pytest.approx(2500 - 5000)
    assert r.payback_months is None
    assert r.break_even_volume is None


def test_break_even_volume_with_dedicated_instance_floor():
    econ = Economics(
        dedicated_instance=True, hardware="nvidia-l4", hardware_dollars_per_hour=1.0
    )
    r = roi(1e-5, 0.0, econ, compute_dollars=0)

    assert r.fixed_monthly == 730.0  # $1/h x 730 h
    assert r.monthly_cost == pytest.approx(50 + 730)
    assert r.monthly_savings == pytest.approx(2500 - 780)
    # The floor is paid for after 730 / (0.0005 - 0.00001) tickets a month.
    assert r.break_even_volume == pytest.approx(730 / 0.00049)

    volume = round(r.break_even_volume)
    there = econ.model_copy(
        update={"tickets_per_month": volume, "current_monthly_cost": 0.0005 * volume}
    )
    assert roi(1e-5, 0.0, there, compute_dollars=0).monthly_savings == pytest.approx(0, abs=0.01)


def test_explicit_fixed_monthly_overrides_the_dedicated_floor():
    econ = Economics(dedicated_instance=True)
    assert roi(1e-5, 0.0, econ, compute_dollars=0, dedicated_fixed_monthly=0.0).fixed_monthly == 0
    assert roi(1e-5, 0.0, econ, compute_dollars=0).fixed_monthly == pytest.approx(
        HARDWARE_PRICES["cpu-2core"].dollars_per_hour * 730
    )


def test_error_costs_count_and_unknown_current_error_rate_costs_nothing():
    known = Economics(current_error_rate=0.10, cost_per_error=1.0)
    r = roi(1e-5, 0.05, known, compute_dollars=0)
    assert r.current_monthly_cost == pytest.approx(2500 + 500_000)
    assert r.monthly_cost == pytest.approx(50 + 250_000)
    assert r.monthly_savings == pytest.approx(252_450)

    unknown = Economics(cost_per_error=1.0)
    assert roi(1e-5, 0.05, unknown, compute_dollars=0).current_monthly_cost == 2500


def test_unit_formulas():
    assert serving_cost_per_item(3.6, 100) == 1e-5
    assert hosted_cost_per_item(200, 5, 1.0, 5.0) == pytest.approx(225e-6)
    assert monthly_cost(1000, 0.01, 0.1, 2.0, fixed_monthly=5.0) == pytest.approx(1000 * 0.21 + 5)
    assert one_off_cost(50, 8, 100) == 850
    with pytest.raises(ValueError):
        serving_cost_per_item(1.0, 0)


def test_payback_curve_starts_at_minus_one_off():
    r = roi(1e-5, 0.0, Economics(), compute_dollars=50)
    assert payback_curve(r, 2) == pytest.approx([-850, 1600, 4050])


def test_hardware_price_provenance():
    table = Economics(hardware="nvidia-h100").hardware_price()
    assert table.provenance is Provenance.price_table
    assert table.value == HARDWARE_PRICES["nvidia-h100"].dollars_per_hour
    assert "as of" in table.source

    user = Economics(hardware_dollars_per_hour=0.5).hardware_price()
    assert (user.value, user.provenance) == (0.5, Provenance.user)
    assert all(p.source and p.as_of for p in HARDWARE_PRICES.values())


def test_economics_rejects_unknown_keys_and_hardware():
    with pytest.raises(ValidationError, match="tickets_per_mnth"):
        Economics(tickets_per_mnth=5)
    with pytest.raises(ValidationError, match="unknown hardware 'tpu-v9'"):
        Economics(hardware="tpu-v9")
    assert Economics(hardware="my-box", hardware_dollars_per_hour=2.0).hardware_price().value == 2.0


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_api_price_offline(offline):
    haiku_in, haiku_out, source = api_price("claude-haiku-4-5")
    assert (haiku_in, haiku_out) == pytest.approx((1.0, 5.0))
    assert "genai-prices" in source and "Anthropic" in source

    mini_in, mini_out, _ = api_price("gpt-4o-mini", "openai")
    assert (mini_in, mini_out) == pytest.approx((0.15, 0.60))


def test_api_price_unknown_model_names_it():
    with pytest.raises(ValueError, match="no-such-model-xyz"):
        api_price("no-such-model-xyz")
