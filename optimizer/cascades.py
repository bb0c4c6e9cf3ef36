"""``roitune cascade`` (and the end of ``roitune sweep``): calibrate every local candidate, then
record the cascades worth having.

Cascades pair candidates, so they are built once the candidates exist: after the sweep (the
usual order, baseline -> sweep -> report) and on demand, for a study that has only baselines or
got its live hosted baseline later. For each local candidate at most two are recorded: the
cheapest into the current solution (its live hosted baseline, else its entered error rate, an
assumption), and the cheapest into another, more accurate candidate when that one is cheaper
still. A pair already in the study is not recorded again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evals.calibration import calibrate
from evals.cascade import build, fallbacks_for, is_local, objective_quality
from evals.cost import Economics
from evals.recommend import Current
from evals.record import CandidateRecord, Kind, StudyData, add_calibration, add_record, measurements, records, study_data
from evals.report import priced
from evals.storage import objective_values

if TYPE_CHECKING:
    import optuna
    from rich.console import Console


@dataclass
class CascadeSummary:
    calibrated: list[int] = field(default_factory=list)  # candidate numbers (re)calibrated now
    recorded: list[int] = field(default_factory=list)  # numbers of the new cascades
    notes: list[str] = field(default_factory=list)  # one line per pair considered


def calibrate_candidates(study: optuna.Study) -> list[int]:
    """Fit the calibration of every local candidate that has none yet (or lacks its test ECE)."""
    data = study_data(study)
    done = []
    for r in records(study, states=["COMPLETE"]):
        stale = r.calibration is None or (r.calibration.ece_test is None and r.test is not None)
        if r.kind != Kind.cascade and not r.hosted and r.validation is not None and r.validation.top_probs and stale:
            add_calibration(study, r.number, calibrate(r.validation, data.labels, data.validation_gold,
                                                       r.test, data.test_gold))
            done.append(r.number)
    return done


def _options(local: CandidateRecord, found: list[CandidateRecord], current: Current, data: StudyData,
             economics: Economics, seed: int) -> tuple[list[CandidateRecord], list[str]]:
    """The cascades of ``local`` worth recording (see the module's docstring) and a note per pair."""
    into_current, into_others, notes = None, [], []
    for fallback in fallbacks_for(local, found, current.record):
        if fallback is None and current.error_rate is None:
            notes.append(f"{local.label} -> {current.name}: its accuracy is unknown (enter "
                         "economics.current_error_rate or run the hosted baseline live)")
            continue
        assumed = 1 - current.error_rate if fallback is None else None
        record, note = build(local, fallback, data, economics,
                             current_cost_per_item=economics.current_cost_per_item, assumed_accuracy=assumed,
                             current_name=current.name, seed=seed)
        notes.append(note)
        if record is None:
            continue
        if fallback is current.record:
            into_current = record
        else:
            into_others.append(record)
    chosen = [into_current] if into_current else []

    def monthly(r: CandidateRecord) -> float:
        return objective_values("roi", economics, r.validation.accuracy, 0.0, r.cost_per_item)[0]

    cheapest = min(into_others, key=monthly, default=None)
    if cheapest is not None and (into_current is None or monthly(cheapest) < monthly(into_current)):
        chosen.append(cheapest)
    return chosen, notes


def build_cascades(study: optuna.Study, economics: Economics, *, objective: str, seed: int = 0,
                   console: Console | None = None, every_pair: bool = True) -> CascadeSummary:
    """Calibrate the study's local candidates and record the cascades worth it (validation decides;
    each is scored on test once, with the threshold chosen). ``console`` hears about every pair
    considered, or with ``every_pair=False`` (the end of a sweep) only the cascades recorded."""
    summary = CascadeSummary(calibrated=calibrate_candidates(study))
    data = study_data(study)
    found = priced(records(study, states=["COMPLETE"]), economics, measurements(study))
    current = Current.of(economics, found)
    existing = {(r.cascade.local_number, r.cascade.fallback_number) for r in found if r.cascade is not None}
    recorded_lines = []
    for local in [r for r in found if is_local(r)]:
        chosen, notes = _options(local, found, current, data, economics, seed)
        summary.notes += notes
        for record in chosen:
            if (record.cascade.local_number, record.cascade.fallback_number) in existing:
                summary.notes.append(f"{record.name}: already in the study")
                continue
            values = objective_values(objective, economics, record.validation.accuracy,
                                      objective_quality(record.validation), record.cost_per_item)
            summary.recorded.append(add_record(study, record, values))
            recorded_lines.append(f"recorded cascade {record.name}: {record.cascade.coverage:.0%} answered locally at "
                                  f"confidence >= {record.cascade.threshold:.3f}")
    if console is not None:
        lines = [f"cascade {note}" for note in summary.notes] if every_pair else recorded_lines
        for line in lines:
            console.print(line, markup=False, highlight=False)
    return summary
