"""``roitune baseline``: run the configured ladder on the test split and record it in the study."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from evals.baselines import run_ladder
from evals.data import load_splits
from evals.results import candidates, open_study, record_baseline, remember_split
from optimizer.config import Config
from optimizer.progress import progress_bars


def load_data(cfg: Config, console: Console):
    """Validated splits (all problems raised together before any work), warnings printed."""
    splits = load_splits(cfg.data, cfg.task.labels or None)
    for warning in splits.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    return splits


def run_baselines(cfg: Config, *, only: list[str] | None, console: Console) -> list[dict]:
    """Run, record and summarise the baselines; returns one dict per baseline."""
    splits = load_data(cfg, console)
    study = open_study(cfg.storage, cfg.study, cfg.search.objective)
    remember_split(study, splits.labels, splits.test)
    measured = [c.name.removeprefix("baseline:") for c in candidates(study) if c.kind == "baseline"]
    if measured:
        console.print(f"already in study '{cfg.study}' (not run again): {', '.join(measured)}")
    with progress_bars(console) as start:
        results = run_ladder(cfg.baselines, splits.train, splits.test, splits.labels, cfg.task.instruction,
                             cfg.economics, cache_dir=Path(cfg.runs_dir) / "hosted-cache", seed=cfg.seed,
                             only=only, skip=measured, on_start=start)
    rows = []
    for result in results:
        number = record_baseline(study, result, cfg.economics, cfg.search.objective, splits.test)
        scores = result.scores
        rows.append({
            "name": f"baseline:{result.name}", "trial": number,
            "accuracy": scores.accuracy if scores else None,
            "accuracy_ci": list(scores.accuracy_ci) if scores else None,
            "macro_f1": scores.macro_f1 if scores else None,
            "macro_f1_ci": list(scores.macro_f1_ci) if scores else None,
            "n": scores.n if scores else 0,
            "cost_per_item": result.cost_per_item.value,
            "cost_provenance": result.cost_per_item.provenance.value,
            "items_per_second": result.items_per_second,
            "tokens_per_item": result.tokens_per_item,
        })
    return rows
