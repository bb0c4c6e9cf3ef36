"""Throughput metering: items/second the way a candidate would be served.

Prediction runs batch by batch at the serving batch size; the first batch is a warm-up (lazy
initialisation, allocator growth, kernel selection) and is excluded from the timing, so the
figure is the steady state a deployment would see. The predictions themselves are returned, so
a candidate is scored and metered in one pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from evals.cost import Figure, Provenance, serving_cost_per_item

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Throughput:
    items_per_second: float
    batch_size: int
    timed_items: int
    device: str

    def cost_per_item(self, hardware: Figure) -> Figure:
        """$/item from this throughput and the hardware's $/hour, with provenance."""
        value = serving_cost_per_item(hardware.value, self.items_per_second)
        source = (f"measured {self.items_per_second:.1f} items/s at batch {self.batch_size} on "
                  f"{self.device}; hardware {hardware.value}$/h ({hardware.provenance.value}: {hardware.source})")
        return Figure(value, Provenance.measured, source)


def current_device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu x{torch.get_num_threads()} threads"


def metered(
    predict: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    *,
    batch_size: int,
    device: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[R], Throughput]:
    """Run ``predict`` over ``items`` in batches; time all batches but the first."""
    results: list[R] = []
    timed_seconds, timed_items = 0.0, 0
    for index, start in enumerate(range(0, len(items), batch_size)):
        batch = items[start : start + batch_size]
        began = time.perf_counter()
        results.extend(predict(batch))
        if index > 0 or len(items) <= batch_size:  # a single batch is all we have to time
            timed_seconds += time.perf_counter() - began
            timed_items += len(batch)
        if progress:
            progress(len(batch))
    rate = timed_items / timed_seconds if timed_seconds > 0 else float("inf")
    return results, Throughput(rate, batch_size, timed_items, device or current_device())
