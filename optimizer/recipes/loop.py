"""The training loop every recipe shares: AdamW on the trainable (LoRA) parameters, linear
warm-up and decay, NaN/inf detection, and periodic evaluation hooks (for pruning).

A plain loop rather than transformers' Trainer: on these small models the Trainer's defaults
(gradient checkpointing in TRL, full-vocabulary logits at every position, metric passes) made a
step up to 20x slower than this loop (see BENCHMARKS.md), and a sweep is many trials.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial fails with this reason."""


@dataclass
class TrainStats:
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0  # training only: evaluation hooks are excluded
    losses: list[float] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def train(
    model,
    batches: Callable[[int], Sequence],  # epoch -> batches of that epoch
    loss_of: Callable[[object], tuple["torch.Tensor", int]],  # batch -> (loss, tokens)
    *,
    learning_rate: float,
    epochs: int,
    evals_per_epoch: int = 1,
    on_eval: Callable[[int], None] | None = None,  # called with the eval index (1, 2, ...)
    on_step: Callable[[int, float], None] | None = None,
    warmup_fraction: float = 0.1,
) -> TrainStats:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    epoch_batches = [batches(epoch) for epoch in range(epochs)]
    total = sum(len(b) for b in epoch_batches)
    warmup = max(1, int(total * warmup_fraction))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    stats = TrainStats()
    evals_done = 0
    model.train()
    for epoch, this_epoch in enumerate(epoch_batches):
        checkpoints = {math.ceil(len(this_epoch) * (k + 1) / evals_per_epoch) for k in range(evals_per_epoch)}
        for index, batch in enumerate(this_epoch, start=1):
            began = time.perf_counter()
            loss, tokens = loss_of(batch)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at step {stats.steps + 1} "
                                       f"(learning rate {learning_rate:.3g})")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            stats.seconds += time.perf_counter() - began
            stats.steps += 1
            stats.tokens += tokens
            stats.losses.append(loss.item())
            if on_step:
                on_step(stats.steps, stats.losses[-1])
            if on_eval and index in checkpoints:
                evals_done += 1
                model.eval()
                on_eval(evals_done)
                model.train()
    model.eval()
    return stats
