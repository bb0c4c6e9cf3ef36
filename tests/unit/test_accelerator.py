"""evals.accelerator's arithmetic: batch sizes from a free-memory figure and a per-row
footprint, the serving batch per device, when compiling pays, and the CPU's compute dtype."""

from __future__ import annotations

import pytest

from evals import accelerator
from evals.accelerator import GIB, Footprint, batch_that_fits, compile_pays, serving_batch_size

H200 = 140 * GIB  # total bytes: the reserve is 10% of it (14 GiB)


def test_the_batch_is_the_largest_power_of_two_that_fits_beside_the_reserve():
    row = Footprint(per_row=100 * 2**20, fixed=2 * GIB)  # 100 MiB a row
    # 140 - 14 reserve - 2 fixed = 124 GiB of room: 1269 rows of 100 MiB; 1024 is the power of two
    assert batch_that_fits(140 * GIB, H200, row, cap=4096) == 1024
    assert batch_that_fits(140 * GIB, H200, row, cap=256) == 256  # the cap bounds it
    # another process holds 100 GiB: 40 - 14 - 2 = 24 GiB, 245 rows -> 128
    assert batch_that_fits(40 * GIB, H200, row, cap=4096) == 128


def test_a_requested_batch_is_kept_when_it_fits_and_lowered_when_not():
    row = Footprint(per_row=GIB // 4)
    assert batch_that_fits(140 * GIB, H200, row, cap=256, requested=48) == 48  # fits: as asked
    # 40 - 14 = 26 GiB: 104 rows fit, so 96 is kept and 128 is lowered to the power of two below
    assert batch_that_fits(40 * GIB, H200, row, cap=256, requested=96) == 96
    assert batch_that_fits(40 * GIB, H200, row, cap=256, requested=128) == 64


def test_nothing_fits_still_gives_one_row():
    assert batch_that_fits(GIB, 80 * GIB, Footprint(per_row=GIB), cap=256) == 1


def test_the_reserve_is_at_least_two_gib_on_a_small_card():
    # 16 GiB card: 10% is 1.6 GiB, so the 2 GiB floor applies: 10 - 2 = 8 GiB / 1 GiB a row
    assert batch_that_fits(10 * GIB, 16 * GIB, Footprint(per_row=GIB), cap=256) == 8


def test_footprint_is_fixed_plus_rows():
    assert Footprint(per_row=3, fixed=10).bytes_for(4) == 22


@pytest.mark.parametrize("device, requested, expected", [
    ("cuda", None, 256), ("cuda:0", None, 256), ("cpu", None, 32), ("cuda", 64, 64), ("cpu", 8, 8)])
def test_serving_batch_by_device(device, requested, expected):
    assert serving_batch_size(device, requested) == expected


def test_compiling_pays_only_for_long_enough_work():
    # at 1.69x, 300 s of eager work saves 122 s (> 74 s to compile); 100 s saves only 41 s
    assert compile_pays(300.0)
    assert not compile_pays(100.0)
    assert compile_pays(100.0, compile_seconds=10.0)


def test_maybe_compile_never_compiles_on_a_cpu():
    class Untouchable:  # any attribute access would mean it tried
        def __getattr__(self, name):
            raise AssertionError(f"touched {name}")

    assert accelerator.maybe_compile(Untouchable(), "cpu", eager_seconds=1e9) is False


@pytest.mark.parametrize("units, expected", [([], "float32"), (["AMX"], "bfloat16"),
                                             (["AVX-512 BF16"], "bfloat16")])
def test_cpu_compute_dtype_follows_the_bf16_units(monkeypatch, units, expected):
    import torch

    from evals import models

    monkeypatch.setattr(models, "cpu_bf16_units", lambda: units)
    assert accelerator.compute_dtype("cpu") == getattr(torch, expected)
