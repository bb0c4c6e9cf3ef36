"""The sweep's live display: trial, phase, step, loss."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn



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
