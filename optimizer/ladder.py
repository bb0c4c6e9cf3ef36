"""``roitune baseline``: run the configured ladder on validation and test, and record it in the study."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.console import Console

from evals.baselines import run_ladder
from evals.data import Splits, load_splits
from evals.record import CandidateRecord, Kind, add_record, records, remember_data
from evals.storage import objective_values, open_study
from optimizer.config import Config
from optimizer.progress import progress_bars


def load_data(cfg: Config, console: Console) -> Splits:
    """Validated splits (all problems raised together before any work); warnings and every cap
    that leaves data unused are printed."""
    splits = load_splits(cfg.data, cfg.task.labels or None)
    for warning in splits.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    for cap in splits.caps():
        console.print(f"[yellow]cap:[/] {cap}")
    return splits


def run_baselines(cfg: Config, *, only: list[str] | None, console: Console) -> list[CandidateRecord]:
    """Run and record the baselines not yet in the study; returns the new records."""
    splits = load_data(cfg, console)
    if cfg.baselines.max_llm_items:
        console.print(f"[yellow]cap:[/] baselines.max_llm_items: zero-/few-shot score at most "
                      f"{cfg.baselines.max_llm_items:,} of {len(splits.validation):,} validation and "
                      f"{len(splits.test):,} test items")
    study = open_study(cfg.storage, cfg.study, cfg.search.objective)
    remember_data(study, splits.labels, splits.validation, splits.test)
    measured = [r.name for r in records(study) if r.kind == Kind.baseline]
    if measured:
        console.print(f"already in study '{cfg.study}' (not run again): {', '.join(measured)}")
    with progress_bars(console) as start:
        found = run_ladder(cfg.baselines, splits, cfg.task.instruction, cfg.economics,
                           cache_dir=Path(cfg.runs_dir) / "hosted-cache", seed=cfg.seed, only=only, skip=measured,
                           on_start=start)
    new = []
    for record in found:
        result = record.validation
        values = None if result is None else objective_values(cfg.search.objective, cfg.economics, result.accuracy,
                                                                result.macro_f1, record.cost_per_item)
        new.append(replace(record, number=add_record(study, record, values)))
    return new
