"""The search space: which adaptation settings a sweep may try, and how a trial samples them.

Every dimension is optional: a list is a categorical choice (one element = fixed), a
``{low, high}`` range is sampled continuously (log scale for the learning rate and DPO beta).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evals.models import DEFAULT_LLM

if TYPE_CHECKING:
    import optuna

Method = Literal["lora", "qlora", "dpo", "full"]
Precision = Literal["auto", "float32", "bfloat16"]
Head = Literal["generative", "classifier"]
HeadInit = Literal["zero", "probe"]

# Names users write for common target-module sets; anything else is passed to PEFT as is.
TARGET_MODULE_SETS: dict[str, list[str] | str] = {
    "all-linear": "all-linear",
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "attention-qv": ["q_proj", "v_proj"],
    "mlp": ["gate_proj", "up_proj", "down_proj"],
}


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float = Field(..., description="Smallest value.")
    high: float = Field(..., description="Largest value.")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class SearchSpec(BaseModel):
    """What the sweep searches, and how it scores a trial."""

    model_config = ConfigDict(extra="forbid")
    objective: Literal["roi", "pareto"] = Field(
        "roi", description="roi: minimise expected monthly dollars; pareto: max macro-F1, min $/item."
    )
    trials: int = Field(4, ge=1, description="Finished trials to reach (resumed runs count earlier ones).")
    timeout_s: float | None = Field(None, gt=0, description="Stop starting trials after this many seconds.")
    base_models: list[str] = Field([DEFAULT_LLM], min_length=1, description="Bundled names, HF ids or paths.")
    methods: list[Method] = Field(["lora"], min_length=1,
                                  description="lora, qlora (4-bit NF4 base), dpo (SFT then DPO), full (every weight).")
    heads: list[Head] = Field(["generative"], min_length=1,
                              description="generative (label-constrained) or classifier; encoders take classifier only.")
    rank: list[int] = Field([8, 16], min_length=1, description="LoRA rank choices.")
    alpha_ratio: list[float] = Field([2.0], min_length=1, description="LoRA alpha = rank x ratio.")
    dropout: Range = Field(Range(low=0.0, high=0.1), description="LoRA dropout.")
    learning_rate: Range = Field(Range(low=2e-4, high=2e-3), description="LoRA learning rate (log scale).")
    full_learning_rate: Range = Field(Range(low=2e-5, high=2e-4),
                                      description="Full fine-tuning learning rate (log scale).")
    head_learning_rate: Range = Field(Range(low=1e-3, high=5e-3),
                                      description="A new classification head's own learning rate (log scale).")
    epochs: list[int] = Field([8], min_length=1,
                              description="Most epochs; early stopping and the time budget end a trial sooner.")
    patience: int | None = Field(3, ge=1, description="Validation checks without a gain before a trial stops "
                                                      "(its best checkpoint is kept); null: never stop early.")
    patience_from: float = Field(0.5, ge=0.0, le=1.0, description=(
        "Fraction of a trial's planned steps before which patience stops nothing: up to half-way the "
        "rate is above half its peak, where a flat run of checks is noise the decay may lift; 0: from "
        "the first check."))
    cooldown_checks: int = Field(0, ge=0, description="When patience runs out, the learning rate decays to zero "
                                                     "over this many check intervals (still checked, the best "
                                                     "kept) before the trial ends; 0: stop at once.")
    head_init: list[HeadInit] = Field(["zero", "probe"], min_length=1, description=(
        "How a new classification head starts: zero (chance, trained at head_learning_rate), or probe: a "
        "logistic regression fitted on the frozen base's features of the training rows, trained at the "
        "body's rate (LP-FT). One value fixes it; the known-good first trials say which each start takes."))
    trial_timeout_s: float | None = Field(None, gt=0, description="Training seconds per trial; the best checkpoint "
                                                                   "so far is kept.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps per trial at most.")
    precision: Precision = Field("auto", description="auto: bfloat16 autocast on CUDA and on CPUs with bf16 units "
                                                     "(AMX, AVX-512 BF16), float32 elsewhere.")
    batch_size: list[int] = Field([16], min_length=1, description="Training batch size choices.")
    target_modules: list[str] = Field(["all-linear"], min_length=1,
                                      description="all-linear, attention, attention-qv, mlp, or a module name.")
    list_labels_in_prompt: bool = Field(False, description="Also show the label list to fine-tuned models.")
    max_seq_tokens: int = Field(192, ge=16, description="Truncate training rows to this many tokens.")
    double_quant: list[bool] = Field([True], min_length=1, description="QLoRA: nested quantization choices.")
    compute_dtype: list[Literal["auto", "float32", "bfloat16", "float16"]] = Field(
        ["auto"], min_length=1, description="QLoRA compute dtype choices; auto: bfloat16 on CUDA, float32 on CPU.")
    dpo_beta: Range = Field(Range(low=0.05, high=0.5), description="DPO beta (log scale).")
    dpo_pairs: list[Literal["file", "mined"]] = Field(
        ["mined"], min_length=1, description="file: data.preferences; mined: from the SFT model's mistakes.")
    dpo_learning_rate: float = Field(5e-5, gt=0, description="DPO learning rate.")
    dpo_epochs: int = Field(1, ge=1, description="DPO epochs.")
    known_good_first: bool = Field(True, description="A new study's first trials use known-good settings "
                                                     "(optimizer/starts.py) before the sampler explores.")
    evals_per_epoch: int = Field(2, ge=1, description="Validation checks per epoch (pruning, early stopping).")
    max_eval_items: int | None = Field(None, gt=0, description="Validate on at most this many items.")
    pruner: Literal["hyperband", "halving", "median", "none"] = Field("hyperband", description="Optuna pruner.")
    serving_batch_size: int | None = Field(None, ge=1, description="Batch size at which $/item is measured; "
                                                                   "null: the device's (256 on CUDA, 32 on a CPU).")
    seed: int = Field(0, description="Sampler and training seed.")

    @field_validator("head_init", mode="before")
    @classmethod
    def _one_head_init(cls, value):
        return [value] if isinstance(value, str) else value  # `head_init: probe` fixes it


@dataclass(frozen=True)
class TrialSettings:
    """One trial's sampled settings (what the recipes read)."""

    base_model: str
    method: Method
    head: Head
    rank: int
    alpha: float
    dropout: float
    learning_rate: float
    epochs: int
    batch_size: int
    target_modules: str
    head_learning_rate: float | None = None  # a zero-initialised classifier head only
    head_init: HeadInit = "zero"  # classifier head only
    double_quant: bool = True
    compute_dtype: str = "auto"
    dpo_beta: float = 0.1
    dpo_pairs: str = "mined"

    def torch_compute_dtype(self):
        """QLoRA's compute dtype as torch's, None for the device's own (``auto``)."""
        import torch

        return None if self.compute_dtype == "auto" else getattr(torch, self.compute_dtype)


def _log_float(trial: optuna.Trial, name: str, span: Range) -> float:
    return trial.suggest_float(name, span.low, span.high, log=span.low > 0 and span.low != span.high)


def sample(trial: optuna.Trial, spec: SearchSpec) -> TrialSettings:
    """Sample one trial's settings; conditional dimensions only where they apply.

    An encoder (BERT-like) has no generative head and DPO trains a generative answer, so those
    combinations are not sampled but mapped to what applies (classifier; generative)."""
    from evals.models import is_encoder

    base_model = trial.suggest_categorical("base_model", spec.base_models)
    method = trial.suggest_categorical("method", spec.methods)
    if method == "dpo":
        head = "generative"
    elif is_encoder(base_model):
        head = "classifier"
    else:
        head = trial.suggest_categorical("head", spec.heads)
    full = method == "full"
    rank = 0 if full else trial.suggest_categorical("rank", spec.rank)
    settings = dict(
        base_model=base_model,
        method=method,
        head=head,
        rank=rank,
        alpha=0.0 if full else rank * trial.suggest_categorical("alpha_ratio", spec.alpha_ratio),
        dropout=0.0 if full else trial.suggest_float("dropout", spec.dropout.low, spec.dropout.high),
        learning_rate=_log_float(trial, "full_learning_rate", spec.full_learning_rate) if full
        else _log_float(trial, "learning_rate", spec.learning_rate),
        epochs=trial.suggest_categorical("epochs", spec.epochs),
        batch_size=trial.suggest_categorical("batch_size", spec.batch_size),
        target_modules="all" if full else trial.suggest_categorical("target_modules", spec.target_modules),
    )
    if head == "classifier":
        settings["head_init"] = trial.suggest_categorical("head_init", spec.head_init)
        if settings["head_init"] == "zero":  # a probed head trains at the body's rate
            settings["head_learning_rate"] = _log_float(trial, "head_learning_rate", spec.head_learning_rate)
    if method == "qlora":
        settings["double_quant"] = trial.suggest_categorical("double_quant", spec.double_quant)
        settings["compute_dtype"] = trial.suggest_categorical("compute_dtype", spec.compute_dtype)
    if method == "dpo":
        settings["dpo_beta"] = _log_float(trial, "dpo_beta", spec.dpo_beta)
        settings["dpo_pairs"] = trial.suggest_categorical("dpo_pairs", spec.dpo_pairs)
    return TrialSettings(**settings)


def target_modules(name: str) -> list[str] | str:
    return TARGET_MODULE_SETS.get(name, [name])
