"""One sweep trial: sample settings, train an adapter, score and price it like a baseline.

``Workbench`` is the per-worker state reused across trials: the base model is loaded once
(adapters are created on it and removed after the trial), the tokenizer and the tokenised
validation prompts are kept.
"""

from __future__ import annotations

import gc
import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from evals.classify import HeadClassifier, LabelScorer
from evals.cost import Figure
from evals.data import HeldOut, Splits, capped, load_preferences
from evals.meter import metered
from evals.metrics import score
from evals.models import load_causal_lm, load_sequence_classifier, load_tokenizer
from evals.record import CandidateRecord, Cap, Kind, SplitResult, TrainingSummary, write_trial_record
from evals.storage import objective_values
from optimizer.adapters import AdapterSpec
from optimizer.config import Config
from optimizer.space import TrialSettings, sample, target_modules


@dataclass
class Workbench:
    cfg: Config
    splits: Splits
    run_dir: Path
    hardware: Figure
    on_step: Callable[[str, int, int, float], None] | None = None  # (phase, step, total, loss)
    _base_key: tuple | None = field(default=None, init=False)
    _base: object = field(default=None, init=False)

    @property
    def eval_set(self) -> HeldOut:
        """The validation items a trial is checked and scored on (``search.max_eval_items``)."""
        return capped("validation", self.splits.validation, self.cfg.search.max_eval_items, self.cfg.seed)

    def caps(self) -> tuple[Cap, ...]:
        found = [self.eval_set.cap()]
        if self.splits.train_available > len(self.splits.train):
            found.append(Cap("train rows", len(self.splits.train), self.splits.train_available))
        return tuple(c for c in found if c is not None)

    def causal_lm(self, s: TrialSettings):
        """The base LM for these settings, loaded once and reused while the key is unchanged."""
        import torch

        quantization = "nf4" if s.method == "qlora" else None
        key = (s.base_model, quantization, s.double_quant, s.compute_dtype)
        if key != self._base_key:
            self._base = None
            gc.collect()
            self._base = load_causal_lm(s.base_model, quantization=quantization, double_quant=s.double_quant,
                                        compute_dtype=getattr(torch, s.compute_dtype))
            self._base_key = key
        return self._base

    def spec_for(self, s: TrialSettings) -> AdapterSpec:
        return AdapterSpec(base_model=s.base_model, head=s.head, labels=tuple(self.splits.labels),
                           instruction=self.cfg.task.instruction,
                           list_labels=self.cfg.search.list_labels_in_prompt,
                           max_tokens=self.cfg.search.max_seq_tokens,
                           quantization="nf4" if s.method == "qlora" else None)


def describe(s: TrialSettings) -> str:
    text = f"{s.method} r{s.rank} lr {s.learning_rate:.1e} {s.epochs}ep"
    if s.method == "dpo":
        text += f" beta {s.dpo_beta:.2f} {s.dpo_pairs} pairs"
    return text + (" + classifier head" if s.head == "classifier" else "")


def _lora_config(s: TrialSettings, task_type: str):
    from peft import LoraConfig

    return LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout,
                      target_modules=target_modules(s.target_modules), task_type=task_type)


class TrialRun:
    """Runs one trial; ``run()`` returns the objective values and writes the trial's record."""

    def __init__(self, trial, bench: Workbench):
        self.trial, self.bench, self.cfg = trial, bench, bench.cfg
        self.spec = bench.cfg.search
        self.settings = sample(trial, self.spec)
        self.adapter_spec = bench.spec_for(self.settings)
        self.timings = {"train": 0.0, "eval": 0.0}
        self.model = None  # the adapter-wrapped model, kept so a failed trial can still release it
        self.record = CandidateRecord(kind=Kind.trial, name=f"trial {trial.number}: {describe(self.settings)}",
                                      method=self.settings.method, settings=asdict(self.settings),
                                      caps=bench.caps())
        write_trial_record(trial, self.record)

    def update(self, **changes) -> None:
        self.record = replace(self.record, **changes)
        write_trial_record(self.trial, self.record)

    def fail(self, reason: str) -> None:
        """Record why this trial failed (the sweep goes on)."""
        self.update(fail_reason=reason)

    # -- scoring ---------------------------------------------------------------------------
    def _predictor(self, model, tokenizer):
        if self.settings.head == "classifier":
            return HeadClassifier(model, tokenizer, self.bench.splits.labels, max_tokens=self.spec.max_seq_tokens)
        return LabelScorer(model, tokenizer, self.adapter_spec.template(), max_prompt_tokens=self.spec.max_seq_tokens)

    def evaluate(self, predictor, held: HeldOut):
        began = time.perf_counter()

        def predict(batch):  # one forward batch = one serving batch
            return predictor.predict([e.text for e in batch], batch_size=len(batch))

        answers, throughput = metered(predict, held.items, batch_size=self.spec.serving_batch_size)
        labels = self.bench.splits.labels
        predictions = [a.label for a in answers]
        scores = score([e.label for e in held.items], predictions, labels, seed=self.cfg.seed)
        self.timings["eval"] += time.perf_counter() - began
        cost = throughput.cost_per_item(self.bench.hardware, self.cfg.economics.hardware)
        return SplitResult.of(scores, predictions, labels, held.index, [a.distribution for a in answers]), cost, throughput

    def _values(self, result: SplitResult, cost: Figure) -> list[float]:
        return objective_values(self.spec.objective, self.cfg.economics, result.accuracy, result.macro_f1, cost.value)

    def _pruning_hook(self, predictor) -> Callable[[int], None] | None:
        """Report validation results during training; prune when the pruner says so."""
        import optuna

        if self.spec.objective != "roi" or self.spec.pruner == "none":  # multi-objective cannot prune
            return None

        def on_eval(step: int) -> None:
            result, cost, _ = self.evaluate(predictor, self.bench.eval_set)
            self.trial.report(self._values(result, cost)[0], step)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at check {step}: validation accuracy {result.accuracy:.3f}")

        return on_eval

    def _step_hook(self, phase: str, total: int):
        if self.bench.on_step is None:
            return None
        return lambda step, loss: self.bench.on_step(phase, step, total, loss)

    # -- methods ---------------------------------------------------------------------------
    def _train_generative(self):
        import torch
        from peft import get_peft_model

        from optimizer.recipes.answers import answer_rows
        from optimizer.recipes.sft import train_sft

        s = self.settings
        tokenizer = load_tokenizer(s.base_model)
        torch.manual_seed(self.cfg.seed)
        model = self.model = get_peft_model(self.bench.causal_lm(s), _lora_config(s, "CAUSAL_LM"))
        predictor = self._predictor(model, tokenizer)
        rows = answer_rows(predictor, self.bench.splits.train)
        steps = s.epochs * -(-len(rows) // s.batch_size)
        stats = train_sft(model, rows, pad_id=tokenizer.pad_token_id, learning_rate=s.learning_rate,
                          epochs=s.epochs, batch_size=s.batch_size, seed=self.cfg.seed,
                          evals_per_epoch=self.spec.evals_per_epoch, on_eval=self._pruning_hook(predictor),
                          on_step=self._step_hook("sft", steps))
        if s.method == "dpo":
            stats = self._train_dpo(model, predictor, tokenizer, stats)
        return model, predictor, stats

    def _train_dpo(self, model, predictor, tokenizer, sft_stats):
        from optimizer.recipes.answers import AnswerRow
        from optimizer.recipes.dpo import mine_pairs, train_dpo
        from evals.classify import label_token_ids

        s = self.settings
        if s.dpo_pairs == "file":
            if not self.cfg.data.preferences:
                raise ValueError("dpo_pairs 'file' needs data.preferences")
            triples = [(p.prompt, p.chosen, p.rejected)
                       for p in load_preferences(self.cfg.data.preferences, labels=self.bench.splits.labels)]
        else:
            triples = mine_pairs(predictor, self.bench.splits.train)
        answers = label_token_ids(tokenizer, self.bench.splits.labels)
        pairs = [(AnswerRow(predictor.prompt_ids(text), answers[chosen]),
                  AnswerRow(predictor.prompt_ids(text), answers[rejected])) for text, chosen, rejected in triples]
        steps = self.spec.dpo_epochs * -(-len(pairs) // s.batch_size)
        stats = train_dpo(model, pairs, pad_id=tokenizer.pad_token_id, beta=s.dpo_beta,
                          learning_rate=self.spec.dpo_learning_rate, epochs=self.spec.dpo_epochs,
                          batch_size=s.batch_size, seed=self.cfg.seed, on_step=self._step_hook("dpo", steps))
        self.update(details={**self.record.details, "dpo_pairs_used": len(pairs)})
        stats.steps += sft_stats.steps
        stats.tokens += sft_stats.tokens
        stats.seconds += sft_stats.seconds
        stats.losses = sft_stats.losses + stats.losses
        return stats

    def _train_classifier(self):
        import torch
        from peft import get_peft_model

        from optimizer.recipes.classifier import train_classifier

        s = self.settings
        tokenizer = load_tokenizer(s.base_model)
        torch.manual_seed(self.cfg.seed)
        base = load_sequence_classifier(s.base_model, self.bench.splits.labels)
        model = self.model = get_peft_model(base, _lora_config(s, "SEQ_CLS"))
        predictor = self._predictor(model, tokenizer)
        index = {label: i for i, label in enumerate(self.bench.splits.labels)}
        train = self.bench.splits.train
        steps = s.epochs * -(-len(train) // s.batch_size)
        stats = train_classifier(model, tokenizer, [e.text for e in train], [index[e.label] for e in train],
                                 learning_rate=s.learning_rate, epochs=s.epochs, batch_size=s.batch_size,
                                 seed=self.cfg.seed, max_tokens=self.spec.max_seq_tokens,
                                 evals_per_epoch=self.spec.evals_per_epoch, on_eval=self._pruning_hook(predictor),
                                 on_step=self._step_hook("classifier", steps))
        return model, predictor, stats

    # -- the trial -------------------------------------------------------------------------
    def run(self) -> list[float]:
        began = time.perf_counter()
        train = self._train_classifier if self.settings.head == "classifier" else self._train_generative
        try:
            model, predictor, stats = train()
            self.timings["train"] = stats.seconds
            result, cost, throughput = self.evaluate(predictor, self.bench.eval_set)
            adapter_dir = self._save(model)
        finally:
            self._release()
            wall = time.perf_counter() - began
            self.update(compute_seconds=round(wall, 3), compute_dollars=wall * self.bench.hardware.value / 3600)
        first, last = stats.losses[:5], stats.losses[-5:]
        self.update(
            validation=result, cost_per_item=cost.value, cost_provenance=cost.provenance.value,
            cost_source=cost.source, items_per_second=throughput.items_per_second,
            measured_on=throughput.machine.description, measured_hardware=throughput.machine.hardware,
            meter=throughput.stats, adapter_path=str(adapter_dir),
            training=TrainingSummary(steps=stats.steps, tokens=stats.tokens, seconds=round(stats.seconds, 3),
                                     tokens_per_second=round(stats.tokens_per_second, 1),
                                     loss_first=sum(first) / len(first), loss_last=sum(last) / len(last),
                                     train_rows=len(self.bench.splits.train)),
            details={**self.record.details, "timings": {**{k: round(v, 3) for k, v in self.timings.items()},
                                                        "overhead": round(wall - sum(self.timings.values()), 3)}})
        return self._values(result, cost)

    def _save(self, model) -> Path:
        """Adapter + the spec to rebuild its predictor, written to a temp folder then renamed."""
        target = self.bench.run_dir / f"trial-{self.trial.number:04d}"
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging, safe_serialization=True)
        (staging / "roitune.json").write_text(json.dumps(self.adapter_spec.to_json(), indent=2))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target

    def _release(self) -> None:
        """Remove the adapter from the shared base (it is reused) and free memory."""
        import torch

        if self.model is not None and self.settings.head == "generative":
            self.model.unload()  # strips LoRA layers without merging: the base is as loaded
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        gc.collect()
