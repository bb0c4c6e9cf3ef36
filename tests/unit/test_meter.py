"""The throughput meter: enough timed work for a stable figure, and the machine named."""

from __future__ import annotations

import time

import pytest

from evals.cost import Figure, Provenance
from evals.meter import MIN_TIMED_ITEMS, Machine, Throughput, TooLittleTimed, metered
from evals.record import MeterStats

HARDWARE = Figure(0.0893, Provenance.price_table, "a price table")


def slow_predict(batch):
    time.sleep(0.002 * len(batch))
    return [f"label-{x}" for x in batch]


def test_a_small_split_is_timed_again_until_the_floor_and_answers_stay_in_order():
    items = list(range(40))  # 40 items at batch 32: the old meter timed only the last 8

    answers, throughput = metered(slow_predict, items, batch_size=32, machine=Machine("test box", "cpu-2core"))

    assert answers == [f"label-{x}" for x in items]
    assert throughput.stats.timed_items >= MIN_TIMED_ITEMS and throughput.stats.timed_batches >= 3
    assert throughput.stats.seconds >= 2.0
    assert throughput.stats.slowest <= throughput.items_per_second <= throughput.stats.fastest
    assert 100 < throughput.items_per_second < 600  # ~2 ms an item, give or take the machine


def test_the_meter_refuses_to_price_from_8_items():
    eight = Throughput(500.0, MeterStats(timed_items=8, timed_batches=1, seconds=0.016, batch_size=32,
                                         slowest=500.0, fastest=500.0), Machine("test box", "cpu-2core"))

    with pytest.raises(TooLittleTimed, match="8 items"):
        eight.cost_per_item(HARDWARE, "cpu-2core")


def test_a_price_on_other_hardware_than_the_measuring_machine_is_an_estimate():
    stats = MeterStats(timed_items=640, timed_batches=20, seconds=2.0, batch_size=32, slowest=300.0, fastest=340.0)
    throughput = Throughput(320.0, stats, Machine("Intel Xeon (2 cores)", "cpu-2core"))

    here = throughput.cost_per_item(HARDWARE, "cpu-2core")
    on_l4 = throughput.cost_per_item(Figure(0.805, Provenance.price_table, "AWS g6.xlarge"), "nvidia-l4")

    assert here.provenance == Provenance.measured and "Intel Xeon (2 cores)" in here.source
    assert here.value == pytest.approx(0.0893 / (3600 * 320))
    assert on_l4.provenance == Provenance.estimated
    assert on_l4.source.startswith("estimated:") and "run `roitune meter` on a nvidia-l4" in on_l4.source


def test_without_a_batch_size_the_meter_uses_the_devices_serving_batch(monkeypatch):
    from evals import meter

    seen = []

    def predict(batch):
        seen.append(len(batch))
        return slow_predict(batch)

    monkeypatch.setattr(meter, "serving_device", lambda: "cpu")
    _, throughput = metered(predict, list(range(100)), batch_size=None, machine=Machine("test box", "cpu-2core"))
    assert throughput.stats.batch_size == 32 and max(seen) == 32

    monkeypatch.setattr(meter, "serving_device", lambda: "cuda")
    _, throughput = metered(predict, list(range(300)), batch_size=None, machine=Machine("test box", "nvidia-h200"))
    assert throughput.stats.batch_size == 256
