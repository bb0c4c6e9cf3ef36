"""``roitune meter BUNDLE``: measure an exported candidate's throughput on this machine, and
record it in the study as that candidate's throughput on this hardware.

A price is only measured on the machine that measured the throughput. Run this on the serving
hardware (an L4, say) after a sweep on another machine, and the report prices the candidate on
that hardware as *measured* instead of *estimated*. The items timed are the study's own
validation texts, at the serving batch size, with the meter's floor of timed work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from evals.cost import HARDWARE_PRICES
from evals.meter import Machine, metered, price_throughput, this_machine
from evals.record import Measurement, add_measurement, study_data
from evals.storage import load_existing_study
from optimizer.config import Config
from optimizer.predict import load_bundle_predictor, open_bundle
from optimizer.progress import progress_bars


class MeterError(ValueError):
    """A bundle or machine that cannot be metered against the study (one line)."""


@dataclass(frozen=True)
class Metered:
    measurement: Measurement
    cost_per_item: float


def meter_bundle(cfg: Config, path: Path, *, trial: int | None, hardware: str | None, batch_size: int | None,
                 console: Console) -> Metered:
    bundle = open_bundle(path)
    number = trial if trial is not None else bundle.trial
    if number is None:
        raise MeterError(f"{path}: the bundle does not say which trial it is (exported before source.json): "
                         "pass --trial N")
    machine = this_machine()
    key = hardware or machine.hardware
    if key is None:
        raise MeterError(f"this machine ({machine.description}) is no row of the price table: pass --hardware with "
                         f"one of {', '.join(HARDWARE_PRICES)}")
    if key not in HARDWARE_PRICES:
        raise MeterError(f"unknown hardware {key!r}: use one of {', '.join(HARDWARE_PRICES)}")
    study = load_existing_study(cfg.storage, cfg.study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise MeterError(f"study '{cfg.study}' has no trial {number}")
    texts = study_data(study).validation_texts
    if not texts:
        raise MeterError(f"study '{cfg.study}' holds no validation texts to time (written by an older roitune)")
    predictor = load_bundle_predictor(bundle)
    batch = batch_size or cfg.search.serving_batch_size
    with progress_bars(console) as start:
        _, throughput = metered(lambda chunk: predictor.predict(chunk, batch_size=len(chunk)), texts,
                                batch_size=batch, progress=start(f"timing trial {number} on {key}", len(texts)))
    # --hardware declares what this machine is (a GPU the table names differently, say).
    where = machine.description if machine.hardware == key else f"{machine.description}, declared {key}"
    measurement = Measurement(number=number, hardware=key, items_per_second=throughput.items_per_second,
                              measured_on=where, meter=throughput.stats,
                              measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    add_measurement(study, measurement)
    economics = cfg.economics if key == cfg.economics.hardware else \
        cfg.economics.model_copy(update={"hardware": key, "hardware_dollars_per_hour": None})
    cost = price_throughput(measurement.items_per_second, Machine(where, key), economics.hardware_price(), key,
                            f"{measurement.items_per_second:,.1f} items/s")
    return Metered(measurement, cost.value)
