"""One sweep trial: sample settings, train an adapter, score and price it like a baseline.

``Workbench`` is the per-worker state reused across trials: the base model is loaded once
(adapters are created on it and removed after the trial), the tokenizer and the tokenised
validation prompts are kept.
"""

from __future__ import annotations

import functools
import gc
import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from evals.cost import Figure
from evals.data import HeldOut, Splits, capped, load_preferences
from evals.meter import Throughput, metered, serving_device
from evals.metrics import score
from evals.models import load_causal_lm, load_tokenizer
from evals.record import CandidateRecord, Cap, Kind, SplitResult, TrainingSummary, write_trial_record
from evals.storage import objective_values
from optimizer.adapters import AdapterSpec
from optimizer.config import Config
from optimizer.recipes.common import Job, Trained
from optimizer.space import TrialSettings, sample


@dataclass
class Workbench:
    cfg: Config
    splits: Splits
    run_dir: Path
    hardware: Figure
    on_step: Callable[[str, int, int, float], None] | None = None  # (phase, step, total, loss)
    _base_key: tuple | None = field(default=None, init=False)
    _base: object = field(default=None, init=False)

    @functools.cached_property
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
        quantization = "nf4" if s.method == "qlora" else None
        key = (s.base_model, quantization, s.double_quant, s.compute_dtype)
        if key != self._base_key:
            self._base = None
            gc.collect()
            self._base = load_causal_lm(s.base_model, quantization=quantization, double_quant=s.double_quant,
                                        compute_dtype=s.torch_compute_dtype())
            self._base_key = key
        return self._base

    def spec_for(self, s: TrialSettings) -> AdapterSpec:
        return AdapterSpec(base_model=s.base_model, head=s.head, labels=tuple(self.splits.labels),
                           instruction=self.cfg.task.instruction,
                           list_labels=self.cfg.search.list_labels_in_prompt,
                           max_tokens=self.cfg.search.max_seq_tokens,
                           quantization="nf4" if s.method == "qlora" else None, full=s.method == "full")


def describe(s: TrialSettings) -> str:
    """A trial's settings in a few words (names are read in 80-column tables)."""
    from evals.models import BUNDLED

    model = s.base_model.removesuffix("-instruct") if s.base_model in BUNDLED else Path(s.base_model).name
    text = f"{model} {s.method}" + ("" if s.method == "full" else f" r{s.rank}") + f" lr {s.learning_rate:.0e}"
    if s.method == "dpo":
        text += f" beta {s.dpo_beta:.2f} {s.dpo_pairs} pairs"
    if s.head == "classifier":
        text += " + probed classifier" if s.head_init == "probe" else " + classifier"
    return text


class TrialRun:
    """Runs one trial, sample -> recipe -> evaluate -> record; ``run()`` returns the objective
    values and writes the trial's record."""

    def __init__(self, trial, bench: Workbench):
        from evals.models import bf16_training

        self.trial, self.bench, self.cfg = trial, bench, bench.cfg
        self.spec = bench.cfg.search
        self.settings = sample(trial, self.spec)
        self.adapter_spec = bench.spec_for(self.settings)
        self.bf16 = bf16_training(self.spec.precision, serving_device())
        self.timings = {"train": 0.0, "eval": 0.0}
        self.model = None  # the trained model, kept so a failed trial can still release it
        self.checked: list[tuple[SplitResult, Figure, Throughput]] = []  # each validation check's result
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
    def evaluate(self, predictor, held: HeldOut, *, throughput: Throughput | None = None):
        """Score ``held``; time it too unless a ``throughput`` of this model is given (the
        validation checks of one trial reuse the first check's: training changes no shapes)."""
        from evals.accelerator import serving_batch_size

        began = time.perf_counter()
        size = serving_batch_size(serving_device(), self.spec.serving_batch_size)

        def predict(batch):  # one forward batch = one serving batch
            return predictor.predict([e.text for e in batch], batch_size=len(batch))

        if throughput is None:
            answers, throughput = metered(predict, held.items, batch_size=size)
        else:  # the same batches as metered's: padding, and so the numbers, are the same
            answers = [a for start in range(0, len(held.items), size) for a in predict(held.items[start:start + size])]
        labels = self.bench.splits.labels
        predictions = [a.label for a in answers]
        scores = score([e.label for e in held.items], predictions, labels, seed=self.cfg.seed)
        self.timings["eval"] += time.perf_counter() - began
        cost = throughput.cost_per_item(self.bench.hardware, self.cfg.economics.hardware)
        return SplitResult.of(scores, predictions, labels, held.index, [a.distribution for a in answers]), cost, throughput

    def _values(self, result: SplitResult, cost: Figure) -> list[float]:
        return objective_values(self.spec.objective, self.cfg.economics, result.accuracy, result.macro_f1, cost.value)

    def _checker(self, predictor) -> Callable[[int], float]:
        """Each validation check: its accuracy decides early stopping and the kept checkpoint,
        and (single objective) is reported to Optuna, which may prune the trial. The first check
        times the model; later ones reuse its throughput (training changes no shapes)."""
        import optuna

        prunable = self.spec.objective == "roi" and self.spec.pruner != "none"  # multi-objective cannot prune

        def on_eval(step: int) -> float:
            timed = self.checked[0][2] if self.checked else None
            result, cost, throughput = self.evaluate(predictor, self.bench.eval_set, throughput=timed)
            self.checked.append((result, cost, throughput))
            if prunable:
                self.trial.report(self._values(result, cost)[0], step)
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at check {step}: validation accuracy {result.accuracy:.3f}")
            return result.accuracy

        return on_eval

    # -- the recipe ------------------------------------------------------------------------
    def _train(self) -> Trained:
        from optimizer.recipes import classifier, dpo, sft

        s, bench = self.settings, self.bench
        job = Job(settings=s, search=self.spec, labels=bench.splits.labels, train=bench.splits.train,
                  seed=self.cfg.seed, bf16=self.bf16, checker=self._checker, on_step=bench.on_step,
                  hold=lambda model: setattr(self, "model", model))
        tokenizer = load_tokenizer(s.base_model)
        if s.head == "classifier":
            return classifier.run(job, tokenizer)
        # A full fine-tune changes the base itself, so it gets its own copy; adapters share one.
        base = load_causal_lm(s.base_model) if s.method == "full" else bench.causal_lm(s)
        template = self.adapter_spec.template()
        if s.method != "dpo":
            return sft.run(job, base, tokenizer, template)
        preferences = None
        if self.cfg.data.preferences:
            preferences = [(p.prompt, p.chosen, p.rejected)
                           for p in load_preferences(self.cfg.data.preferences, labels=bench.splits.labels)]
        return dpo.run(job, base, tokenizer, template, preferences)

    # -- the trial -------------------------------------------------------------------------
    def run(self) -> list[float]:
        began = time.perf_counter()
        try:
            trained = self._train()
            self.model, predictor, stats = trained.model, trained.predictor, trained.stats
            self.timings["train"] = stats.seconds
            if stats.best_check is not None:  # the kept weights are that check's: its score is theirs
                result, cost, throughput = self.checked[stats.best_check - 1]
            else:
                result, cost, throughput = self.evaluate(predictor, self.bench.eval_set)
            adapter_dir = self._save(trained.model)
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
                                     train_rows=len(self.bench.splits.train),
                                     precision="bfloat16" if self.bf16 else "float32",
                                     checks=tuple(round(c, 4) for c in stats.checks), best_check=stats.best_check,
                                     stop_reason=stats.stop_reason, planned_steps=stats.planned_steps),
            details={**self.record.details, **trained.details,
                     "timings": {**{k: round(v, 3) for k, v in self.timings.items()},
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

        if self.model is not None and self.settings.head == "generative" and self.settings.method != "full":
            self.model.unload()  # strips LoRA layers without merging: the shared base is as loaded
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        gc.collect()
