"""What every recipe takes and gives back, and the one choice they share: which weights train.

A recipe (``sft``, ``dpo``, ``classifier``) is read top to bottom: set up the model for its
head, train it with the shared loop, return it with the predictor that scores it. The method
decides the weights: ``lora`` / ``qlora`` / ``dpo`` train LoRA adapters (QLoRA over a 4-bit
base), ``full`` trains every weight of a model small enough for this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from evals.data import Example
from optimizer.recipes.loop import Schedule, TrainStats
from optimizer.space import SearchSpec, TrialSettings, target_modules

# Full fine-tuning holds weights, gradients and AdamW's two moments: four float32 copies.
FULL_BYTES_PER_PARAMETER = 16


class RefusedFullFineTune(RuntimeError):
    """The model is too large for full fine-tuning on this machine (the trial fails with this)."""


@dataclass(frozen=True)
class Job:
    """One recipe run: the sampled settings, the data, and the sweep's hooks."""

    settings: TrialSettings
    search: SearchSpec
    labels: Sequence[str]
    train: Sequence[Example]
    seed: int
    bf16: bool
    # predictor -> (check index -> validation score); prunes by raising optuna.TrialPruned
    checker: Callable[[object], Callable[[int], float]] | None = None
    on_step: Callable[[str, int, int, float], None] | None = None  # (phase, step, total, loss)
    # given the model as soon as its weights are set up, so a trial that fails while training
    # can still strip the adapter from the base it shares with the next trial
    hold: Callable[[object], None] | None = None

    def prepared(self, model, task_type: str):
        """``model`` with this method's weights trainable, handed to ``hold``."""
        model = train_weights(model, self.settings, task_type)
        if self.hold:
            self.hold(model)
        return model

    def schedule(self, *, learning_rate: float | None = None, epochs: int | None = None,
                 checks: bool = True) -> Schedule:
        """The loop's schedule from the settings; DPO passes its own rate and epochs, without checks."""
        s, spec = self.settings, self.search
        return Schedule(learning_rate=s.learning_rate if learning_rate is None else learning_rate,
                        epochs=s.epochs if epochs is None else epochs,
                        head_learning_rate=s.head_learning_rate, evals_per_epoch=spec.evals_per_epoch,
                        patience=spec.patience if checks else None, patience_from=spec.patience_from,
                        cooldown_checks=spec.cooldown_checks, time_budget_s=spec.trial_timeout_s,
                        max_steps=spec.max_steps, bf16=self.bf16, fail_if_stuck=checks)

    def step_hook(self, phase: str, total: int) -> Callable[[int, float], None] | None:
        if self.on_step is None:
            return None
        return lambda step, loss: self.on_step(phase, step, total, loss)


@dataclass
class Trained:
    """A trained model, the predictor that scores it, and what training did."""

    model: object
    predictor: object
    stats: TrainStats
    details: dict


def train_weights(model, settings: TrialSettings, task_type: str):
    """The model with the weights this method trains made trainable: LoRA adapters, or all."""
    if settings.method == "full":
        _check_full_fits(model, settings.base_model)
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=target_modules(settings.target_modules), task_type=task_type)
    return get_peft_model(model, config)


def _check_full_fits(model, name: str) -> None:
    import torch

    needed = sum(p.numel() for p in model.parameters()) * FULL_BYTES_PER_PARAMETER
    device = next(model.parameters()).device
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = _available_memory()
    if free and needed > 0.8 * free:  # activations and the data need the rest
        raise RefusedFullFineTune(f"full fine-tuning of {name} needs about {needed / 2**30:.1f} GiB for weights, "
                                  f"gradients and optimizer state; this machine has {free / 2**30:.1f} GiB free: "
                                  "use lora or qlora")


def _available_memory() -> int:
    """Bytes of memory available on this machine (Linux), 0 when unknown."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            line = next(line for line in info if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[1]) * 1024
