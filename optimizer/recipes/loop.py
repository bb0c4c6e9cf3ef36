"""The training loop every recipe shares.

AdamW with one learning rate for the body (LoRA weights, or every weight in full fine-tuning)
and its own for a new classification head; linear warm-up then cosine decay; gradient clipping;
NaN/inf detection; validation checks that prune, stop early and keep the best point.

A plain loop rather than transformers' Trainer: on these small models the Trainer's defaults
(gradient checkpointing in TRL, full-vocabulary logits at every position, metric passes) made a
step up to 20x slower than this loop (see BENCHMARKS.md), and a sweep is many trials.

Why the stopping rules look the way they do (measured on the demo tickets, docs/design.md):
a 135M model with a classifier head reached its best validation accuracy after 1-2 epochs and
then overfit (train loss 0.02), while MiniLM at a too-high learning rate never left chance
level. So every check may become the kept checkpoint, ``patience`` checks without a gain stop
the trial, and a loss that has not left its starting level after some 60 steps fails it.
Patience stops nothing before ``patience_from`` of the schedule (Keras' ``start_from_epoch``):
on Banking77 a MiniLM whose head started from a linear probe sat flat for three checks at its
peak rate and was stopped after 3.5 of 12 epochs at 90.4% validation; let go on, it reached 92.9%.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence


TIMED_STEPS = 10  # steps timed before a time budget starts setting how many steps a trial can afford
STUCK_AFTER_STEPS = 60  # enough steps for any working learning rate to move the loss


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial fails with this reason."""


class StuckAtChance(RuntimeError):
    """The loss never left its starting (chance) level: the trial fails with this reason."""


@dataclass(frozen=True)
class Schedule:
    """How long and how fast a recipe trains."""

    learning_rate: float
    epochs: int  # at most; early stopping and the time budget may end training sooner
    head_learning_rate: float | None = None  # parameters ``is_head`` picks; None: learning_rate
    warmup_fraction: float = 0.06
    evals_per_epoch: int = 1
    patience: int | None = None  # checks without a better validation score before stopping
    # the fraction of the planned steps before which patience stops nothing: while the rate is
    # above half its peak, a flat run of checks is noise around a point the decay may still lift
    patience_from: float = 0.0
    cooldown_checks: int = 0  # check intervals of decay to zero after patience runs out; 0: stop at once
    time_budget_s: float | None = None  # training seconds (checks excluded) before stopping
    max_steps: int | None = None
    bf16: bool = False  # autocast the forward and backward to bfloat16
    fail_if_stuck: bool = True  # a loss that has not fallen after STUCK_AFTER_STEPS fails the run
    # the loss of a chance-level guess (ln of the number of labels), for a run that does not start
    # at chance (a probed head): the stuck check then asks whether the loss fell back to it
    chance_loss: float | None = None


@dataclass
class TrainStats:
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0  # training only: evaluation hooks are excluded
    losses: list[float] = field(default_factory=list)
    checks: list[float] = field(default_factory=list)  # validation score at each check
    best_check: int | None = None  # 1-based index into checks of the kept checkpoint
    stop_reason: str = "epochs done"
    planned_steps: int = 0  # the steps the learning-rate schedule spans

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def is_head(name: str) -> bool:
    """A new classification head's parameters (Llama's ``score``, BERT's ``classifier``), under
    PEFT's ``modules_to_save`` wrapper or not."""
    parts = name.split(".")
    return "score" in parts or "classifier" in parts


def _parameter_groups(model, schedule: Schedule) -> list[dict]:
    body, head = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if schedule.head_learning_rate is not None and is_head(name) else body).append(param)
    groups = [{"params": body, "lr": schedule.learning_rate}]
    if head:
        groups.append({"params": head, "lr": schedule.head_learning_rate})
    return [g for g in groups if g["params"]]


def _trainable_state(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def _restore(model, state: dict) -> None:
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in state:
                param.copy_(state[name])


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def train(
    model,
    batches: Callable[[int], Sequence],  # epoch -> batches of that epoch
    loss_of: Callable[[object], tuple["torch.Tensor", int]],  # batch -> (loss, tokens)
    schedule: Schedule,
    *,
    on_eval: Callable[[int], float] | None = None,  # check index (1, 2, ...) -> score, higher is better
    on_step: Callable[[int, float], None] | None = None,
) -> TrainStats:
    import torch

    groups = _parameter_groups(model, schedule)
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    first_epoch = batches(0)  # every epoch has as many batches; later epochs are drawn as they start
    full_steps = min(len(first_epoch) * schedule.epochs, schedule.max_steps or 1 << 62)
    full_warmup = max(1, int(full_steps * schedule.warmup_fraction))
    stats = TrainStats(planned_steps=full_steps)
    warmup = full_warmup

    cooldown: tuple[int, float, int] | None = None  # (its first step, the factor it starts at, its steps)

    def planned_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, stats.planned_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    def factor(step: int) -> float:
        if cooldown is None:
            return planned_factor(step)
        start, start_factor, length = cooldown
        return start_factor * max(0.0, (start + length - step) / length)

    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    autocast = (torch.autocast(device_type=next(model.parameters()).device.type, dtype=torch.bfloat16)
                if schedule.bf16 else contextlib.nullcontext())
    best: tuple[float, dict] | None = None
    model.train()

    def check() -> bool:
        """One validation check; False when training should stop."""
        nonlocal best, cooldown
        model.eval()
        value = on_eval(len(stats.checks) + 1)
        model.train()
        stats.checks.append(value)
        if best is None or value > best[0]:
            best = (value, _trainable_state(model))
            stats.best_check = len(stats.checks)
            return True
        waited = len(stats.checks) - stats.best_check
        if (cooldown is None and schedule.patience is not None and waited >= schedule.patience
                and stats.steps >= schedule.patience_from * stats.planned_steps):
            stats.stop_reason = f"early stop: no better validation score in {waited} checks"
            length = schedule.cooldown_checks * math.ceil(steps_per_epoch / schedule.evals_per_epoch)
            if not length or stats.planned_steps - stats.steps <= length:
                return False
            # A plateau at a still-high learning rate is noise around a point that annealing
            # may improve (on Banking77 a 12-epoch cosine stopped after 6, at about half its
            # peak rate): decay to zero from here, keep checking, and keep the best check.
            cooldown = (stats.steps, planned_factor(stats.steps), length)
            stats.planned_steps = stats.steps + length
            stats.stop_reason += f", then {length} steps of decay to zero"
        return True

    steps_per_epoch = len(first_epoch)
    going, checked_last, judged = True, False, False
    for epoch in range(schedule.epochs):
        this_epoch = first_epoch if epoch == 0 else batches(epoch)
        checkpoints = {math.ceil(len(this_epoch) * (k + 1) / schedule.evals_per_epoch)
                       for k in range(schedule.evals_per_epoch)}
        for index, batch in enumerate(this_epoch, start=1):
            began = time.perf_counter()
            with autocast:
                loss, tokens = loss_of(batch)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at step {stats.steps + 1} "
                                       f"(learning rate {schedule.learning_rate:.3g})")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            lr_schedule.step()
            optimizer.zero_grad(set_to_none=True)
            stats.seconds += time.perf_counter() - began
            stats.steps += 1
            stats.tokens += tokens
            stats.losses.append(loss.item())
            if stats.steps >= TIMED_STEPS and schedule.time_budget_s is not None and cooldown is None:
                # Epochs come from the time budget: warm-up and decay end where the budget will,
                # so a trial cut by time has annealed instead of stopping at a high learning rate.
                # Refitted at every step from the mean step time so far, since steps vary with
                # their batches' lengths: fitting once on the first steps cut schedules short.
                affordable = int(schedule.time_budget_s / (stats.seconds / stats.steps))
                stats.planned_steps = min(full_steps, max(stats.steps + 1, affordable))
                warmup = min(full_warmup, max(1, int(stats.planned_steps * schedule.warmup_fraction)))
            if on_step:
                on_step(stats.steps, stats.losses[-1])
            checked_last = bool(on_eval) and index in checkpoints
            if checked_last and not check():
                going = False
            elif cooldown is not None and stats.steps >= stats.planned_steps:
                going = False
            elif schedule.max_steps is not None and stats.steps >= schedule.max_steps:
                stats.stop_reason, going = f"step budget of {schedule.max_steps} reached", False
            elif schedule.time_budget_s is not None and stats.seconds >= schedule.time_budget_s:
                stats.stop_reason, going = f"time budget of {schedule.time_budget_s:.0f} s reached", False
            if not going:
                break
        if schedule.fail_if_stuck and not judged and stats.steps >= STUCK_AFTER_STEPS:
            judged = True
            _fail_if_stuck(stats, schedule.chance_loss)
        if not going:
            break
    if on_eval and not checked_last:
        check()  # a budget cut training between checks: the point where it ended competes too
    if best is not None and stats.best_check != len(stats.checks):
        _restore(model, best[1])
    model.eval()
    return stats


def _fail_if_stuck(stats: TrainStats, chance_loss: float | None = None) -> None:
    """Once, at the end of the first epoch that completes ``STUCK_AFTER_STEPS`` steps: a loss
    still at its starting level means the run learns nothing (the MiniLM collapse at a too-high
    learning rate: loss at ln(40) from the first steps on). A shorter run is not judged. A run
    that starts below chance (``chance_loss``) fails only if it climbed back to chance level."""
    window = max(5, len(stats.losses) // 5)
    first, last = _mean(stats.losses[:window]), _mean(stats.losses[-window:])
    start = first if chance_loss is None else chance_loss
    if last > 0.9 * start and last > 0.5:  # a loss below 0.5 has learned something wherever it began
        where = ("stayed at its starting level" if chance_loss is None
                 else f"climbed back to chance level ({chance_loss:.2f})")
        raise StuckAtChance(f"loss {where} ({first:.2f} -> {last:.2f}) over the first {stats.steps} steps: "
                            f"the learning rate is too high or too low for this model")
