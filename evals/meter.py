"""Throughput metering: items/second the way a candidate would be served, on a named machine.

Prediction runs batch by batch at the serving batch size; the first batch is a warm-up (lazy
initialisation, allocator growth, kernel selection) and is not timed. A figure needs enough
timed work to be stable: at least ``MIN_TIMED_ITEMS`` items, ``MIN_TIMED_BATCHES`` batches and
``MIN_TIMED_SECONDS`` seconds. When the scored items alone are fewer (a small validation split),
more timed passes over the same items follow, their answers discarded. The spread (slowest and
fastest batch) is kept, and the machine is named, because a throughput is only true of the
machine that measured it.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from evals.cost import HARDWARE_PRICES, Figure, Provenance, serving_cost_per_item
from evals.record import MeterStats

T = TypeVar("T")
R = TypeVar("R")

MIN_TIMED_ITEMS = 64
MIN_TIMED_BATCHES = 3
MIN_TIMED_SECONDS = 2.0


class TooLittleTimed(ValueError):
    """A throughput timed on too few items to price anything by."""


@dataclass(frozen=True)
class Machine:
    """Where a throughput was measured: words for people, and its key in the price table."""

    description: str
    hardware: str | None  # None: no row of evals.cost.HARDWARE_PRICES is this machine


@dataclass(frozen=True)
class Throughput:
    items_per_second: float
    stats: MeterStats
    machine: Machine

    def cost_per_item(self, hardware: Figure, hardware_name: str | None = None) -> Figure:
        """$/item from this throughput and the $/hour of ``hardware_name`` (the serving hardware).

        Measured when this machine is that hardware; otherwise an estimate that says so. Refuses
        a throughput timed on fewer than ``MIN_TIMED_ITEMS`` items.
        """
        if self.stats.timed_items < MIN_TIMED_ITEMS:
            raise TooLittleTimed(f"throughput timed on {self.stats.timed_items} items; at least "
                                 f"{MIN_TIMED_ITEMS} are needed to price a candidate")
        return price_throughput(self.items_per_second, self.machine, hardware, hardware_name,
                                f"{self.items_per_second:.1f} items/s at batch {self.stats.batch_size} "
                                f"({self.stats.timed_items} items timed)")


def price_throughput(items_per_second: float, machine: Machine, hardware: Figure, hardware_name: str | None,
                     measurement: str) -> Figure:
    """$/item of a throughput measured on ``machine`` when served on ``hardware_name``."""
    value = serving_cost_per_item(hardware.value, items_per_second)
    rate = f"{hardware.value:g} $/h ({hardware.provenance.value}: {hardware.source})"
    if hardware_name is None or machine.hardware == hardware_name:
        return Figure(value, Provenance.measured, f"measured {measurement} on {machine.description}; {rate}")
    return Figure(value, Provenance.estimated,
                  f"estimated: {measurement} measured on {machine.description}, priced at {hardware_name}'s "
                  f"{rate}; run `roitune meter` on a {hardware_name} for a measured price")


@functools.cache
def this_machine() -> Machine:
    """The machine this process runs on (the GPU when torch sees one, else the CPU)."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return Machine(name, _gpu_hardware(name))
    cores = os.cpu_count() or 1
    key = f"cpu-{cores}core"
    return Machine(f"{_cpu_model()} ({cores} cores{_cpu_features()}, {torch.get_num_threads()} torch threads)",
                   key if key in HARDWARE_PRICES else None)


def serving_device() -> str:
    """Where this machine's predictors run: the models load on CUDA whenever torch sees it."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# The first word of a GPU's name (lower case, before any "-") -> its row in the price table.
_GPU_MODELS = {"h200": "nvidia-h200", "h100": "nvidia-h100", "a100": "nvidia-a100-80gb", "a10g": "nvidia-a10g",
               "l4": "nvidia-l4", "t4": "nvidia-t4"}


def _gpu_hardware(name: str) -> str | None:
    """"NVIDIA H200" -> nvidia-h200; an A100 only when it is the 80 GB one the table prices."""
    for word in name.lower().split():
        key = _GPU_MODELS.get(word.split("-")[0])
        if key and (key != "nvidia-a100-80gb" or "80gb" in name.lower().replace(" ", "")):
            return key
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_features() -> str:
    """The CPU features that decide low-precision speed (bf16 units: AMX, AVX-512 BF16)."""
    from evals.models import cpu_bf16_units

    units = cpu_bf16_units()
    return f", {' + '.join(units)}" if units else ", no bf16 units"


def metered(
    predict: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    *,
    batch_size: int | None,
    machine: Machine | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[R], Throughput]:
    """Run ``predict`` over ``items`` in batches; time every batch but the first, then more
    passes over the items (answers discarded) until the floor of timed work is reached.
    ``batch_size=None``: the batch a server would use on this machine's device
    (``evals.accelerator.serving_batch_size``: 256 on CUDA, 32 on a CPU)."""
    if batch_size is None:
        from evals.accelerator import serving_batch_size

        batch_size = serving_batch_size(serving_device())
    results: list[R] = []
    rates: list[float] = []
    timed_seconds, timed_items = 0.0, 0
    starts = list(range(0, len(items), batch_size))

    def run(start: int, keep: bool, timed: bool) -> None:
        nonlocal timed_seconds, timed_items
        batch = items[start : start + batch_size]
        began = time.perf_counter()
        answers = predict(batch)
        seconds = time.perf_counter() - began
        if keep:
            results.extend(answers)
            if progress:
                progress(len(batch))
        if timed:
            timed_seconds += seconds
            timed_items += len(batch)
            rates.append(len(batch) / seconds if seconds > 0 else float("inf"))

    for index, start in enumerate(starts):
        run(start, keep=True, timed=index > 0)
    while starts and (timed_items < MIN_TIMED_ITEMS or len(rates) < MIN_TIMED_BATCHES
                      or timed_seconds < MIN_TIMED_SECONDS):
        for start in starts:
            run(start, keep=False, timed=True)
    rate = timed_items / timed_seconds if timed_seconds > 0 else float("inf")
    stats = MeterStats(timed_items=timed_items, timed_batches=len(rates), seconds=round(timed_seconds, 4),
                       batch_size=batch_size, slowest=min(rates, default=0.0), fastest=max(rates, default=0.0))
    return results, Throughput(rate, stats, machine or this_machine())
