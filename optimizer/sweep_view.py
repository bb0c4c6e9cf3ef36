"""The sweep's live display (trial, phase, step, loss) and its closing table rows."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evals.results import candidates, load_existing_study
from optimizer.config import Config


class SweepView:
    """A progress bar over the current trial's training steps, showing the loss."""

    def __init__(self, console: Console, trials: int):
        self.trials = trials
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=console)
        self.task = None
        self.phase = None

    def __enter__(self) -> SweepView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_step(self, phase: str, step: int, total: int, loss: float) -> None:
        if self.task is None or step == 1 or phase != self.phase:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(f"training ({phase})", total=total, loss="-")
            self.phase = phase
        self.progress.update(self.task, completed=step, loss=f"{loss:.4f}")


def sweep_rows(cfg: Config) -> list[dict]:
    """Every candidate of the study (baselines and trials) as table/JSON rows."""
    study = load_existing_study(cfg.storage, cfg.study)
    rows = []
    for c in candidates(study):
        rows.append({"name": c.name, "kind": c.kind, "trial": c.trial_number, "split": c.split,
                     "n": c.extra.get("n"), "accuracy": c.accuracy, "accuracy_ci": c.accuracy_ci,
                     "macro_f1": c.macro_f1, "cost_per_item": c.cost_per_item,
                     "cost_provenance": c.cost_provenance, "items_per_second": c.items_per_second})
    return rows
