"""``roitune.yaml``: the typed config, composed from the small specs each part defines.

Precedence: defaults < YAML < ``--set key=value`` flags. Every problem is reported together,
each on its own line, and an unknown key names the nearest valid one. Relative data paths are
resolved against the config file's folder, so a config works from any working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evals.baselines import BaselinesSpec
from evals.configfile import ConfigError, parse_overrides, read_config
from evals.cost import Economics
from evals.data import DataSpec, is_path_text
from evals.storage import DEFAULT_STORAGE, DEFAULT_STUDY
from optimizer.space import SearchSpec

# ConfigError and parse_overrides are part of this module's surface (the CLI and tests use them).
__all__ = ["Config", "ConfigError", "load_config", "parse_overrides", "demo_config_text"]


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instruction: str = Field("Route the customer support ticket to exactly one category.",
                             description="What the model is asked to do (system prompt).")
    labels: list[str] = Field([], description="The label set; empty = the labels seen in train.")


class BudgetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_dollars: float | None = Field(None, gt=0, description="Stop the sweep once trials cost this much compute.")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: TaskSpec = Field(default_factory=TaskSpec, description="The classification task.")
    data: DataSpec = Field(..., description="Train / validation / test / preference files.")
    economics: Economics = Field(default_factory=Economics, description="Volumes and prices.")
    baselines: BaselinesSpec = Field(default_factory=BaselinesSpec, description="The baseline ladder.")
    search: SearchSpec = Field(default_factory=SearchSpec, description="The sweep's search space.")
    budget: BudgetSpec = Field(default_factory=BudgetSpec, description="Spending limits.")
    storage: str = Field(DEFAULT_STORAGE, description="Optuna storage URL (SQLite or PostgreSQL).")
    study: str = Field(DEFAULT_STUDY, description="Study name inside the storage.")
    heartbeat_s: int = Field(20, ge=1, description="Trial heartbeat; a trial silent for 3x this is failed and retried.")
    runs_dir: str = Field("runs", description="Where adapters, caches and reports are written.")
    seed: int = Field(0, description="Seed for splits, sampling and training.")


def _prepare(raw: dict[str, Any], base: Path, overrides: list[tuple[str, Any]]) -> None:
    """Relative data paths: from the config's folder, or the working directory for a --set one."""
    if not isinstance(raw.get("data"), dict):
        return
    from_command_line = {key.removeprefix("data.") for key, value in overrides
                         if key.startswith("data.") and isinstance(value, str)}
    for key in ("train", "validation", "test", "preferences", "gold"):
        value = raw["data"].get(key)
        # A value that cannot be a path (resolve() would raise) is left as is for validation to report.
        if isinstance(value, str) and value and is_path_text(value) and not Path(value).is_absolute():
            raw["data"][key] = str(((Path.cwd() if key in from_command_line else base) / value).resolve())


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read, merge and validate ``roitune.yaml``; raise ConfigError listing every problem."""
    return read_config(path, overrides, Config, prepare=_prepare)


DEMO_CONFIG = """\
# roitune.yaml: the demo on the bundled support tickets. Every key is optional except data.train;
# `roitune <command> --set key=value` overrides any key (e.g. --set search.trials=8).

task:
  instruction: Route the customer support ticket to exactly one category.
  labels: []                  # empty: the labels seen in the training data

data:
  train: {data}/train.jsonl
  validation: {data}/validation.jsonl
  test: {data}/test.jsonl
  preferences: {data}/preferences.jsonl   # DPO pairs (prompt, chosen, rejected)
  # gold: human_checked.jsonl # human-checked rows: the validation split (replaces validation), never trained on
  text_field: text            # for {{"text", "label"}} JSONL and CSV inputs
  label_field: label

economics:                    # the seed case: 5M tickets/month routed by Claude Haiku for $2,500
  tickets_per_month: 5000000
  current_solution: claude-haiku
  current_monthly_cost: 2500
  current_error_rate: 0.10    # entered by you; measure it with the hosted baseline
  cost_per_error: 0.05        # dollars a misrouted ticket costs (rework, delay)
  hardware: cpu-2core         # serving hardware: a row of the price table (README, Cost and ROI)
  engineering_hours: 8
  engineering_rate: 100
  # cost_per_label: 0.10      # dollars a labelled row costs: prices `roitune curve`'s "N more rows"

baselines:
  run: [classical, embedding, zero-shot, few-shot]
  llm: smollm2-135m-instruct
  encoder: minilm-l6
  few_shot: {{k: [4], selection: nearest}}
  max_llm_items: 120          # zero-/few-shot score a stratified subset of validation and test (CPU)
  batch_size: 16
  # hosted:                   # an OpenAI-compatible endpoint; the key comes from the env var
  #   base_url: https://api.anthropic.com/v1/
  #   model: claude-haiku-4-5
  #   api_key_env: ANTHROPIC_API_KEY
  #   max_dollars: 2.0

search:
  objective: roi              # roi: min monthly dollars; pareto: max macro-F1, min $/item
  trials: 2                   # the first trials use known-good settings (optimizer/starts.py)
  base_models: [minilm-l6, smollm2-135m-instruct]   # an encoder and a decoder LM; any HF id or path
  methods: [full, lora]       # lora, qlora (4-bit base), dpo (SFT then DPO), full (every weight)
  heads: [classifier, generative]   # classifier head (one forward) or generative (label-constrained)
  rank: [8, 16]
  alpha_ratio: [2.0]
  learning_rate: {{low: 0.0002, high: 0.002}}       # LoRA
  full_learning_rate: {{low: 0.00002, high: 0.0002}}  # full fine-tuning
  head_learning_rate: {{low: 0.001, high: 0.005}}    # a new classifier head started at zero
  head_init: [zero, probe]    # probe: the head starts from a linear probe of the frozen base (LP-FT)
  epochs: [12]                # at most: a trial stops when validation stops improving (patience)
  patience: 3                 # checks without a gain; the best checkpoint is kept
  patience_from: 0.5          # ... counted only from half the schedule, where the rate is below half its peak
  trial_timeout_s: 240        # training seconds per trial; the schedule fits it (CPU-sized; raise on a GPU)
  batch_size: [16, 32]
  target_modules: [all-linear]
  evals_per_epoch: 2
  precision: auto             # bfloat16 where the CPU has bf16 units (AMX), else float32
  pruner: none                # a 3-trial sweep gives each trial its full chance; hyperband on longer ones

budget:
  max_dollars: 5.0

storage: sqlite:///runs/roitune.db
study: demo
runs_dir: runs
seed: 0
"""


def demo_data_dir() -> Path:
    """The bundled demo tickets: ./datasets/tickets, else next to the installed package."""
    local = Path("datasets/tickets")
    if (local / "train.jsonl").is_file():
        return local.resolve()
    return (Path(__file__).resolve().parent.parent / "datasets" / "tickets").resolve()


def demo_config_text() -> str:
    return DEMO_CONFIG.format(data=demo_data_dir())
