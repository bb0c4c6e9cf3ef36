"""``roitune curve``: retrain one candidate's settings on growing fractions of the training rows,
fit a learning curve, and record what more labelled rows would be worth (``evals.curve``).

The fractions are nested stratified samples (the 1/8 rows are among the 1/4 rows, every label
kept where it has rows enough), each retraining is scored on the whole decision split (the gold
rows when ``data.gold`` is set), and every point is scored on the same items, which the curve's
bootstrap needs.

How a candidate is retrained:

- a baseline that learns from rows (``classical``, ``embedding``): its own fitting function in
  ``evals.baselines``, on the fraction;
- a sweep trial: the sweep itself, as a black box. A child study in the same storage
  (``<study>.curve.trial-<n>.<fraction>``) gets the fraction as its training file, the study's own
  validation and test rows, and the trial's parameters enqueued, and ``run_sweep`` trains it once.
  A rerun finds the child study done and trains nothing again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from evals.baselines import Pricing, classical, embedding
from evals.curve import Measured, check_fractions, learning_curve
from evals.data import DataSpec, Example, Splits, capped, stratified_split
from evals.recommend import measure_word
from evals.record import (CandidateRecord, Kind, LearningCurve, SplitResult, add_curve, compute_dollars, records,
                          split_teacher)
from evals.storage import load_existing_study, open_study
from optimizer.config import BudgetSpec, Config
from optimizer.ladder import load_data

DEFAULT_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
RETRAINABLE = ("classical", "embedding")  # baselines that learn from training rows
# (training rows, fraction, progress starter) -> the validation result and what producing it cost
Retrain = Callable[[list[Example], float, Callable], tuple[SplitResult, float]]


class CurveError(ValueError):
    """A curve that cannot be measured as asked (one line)."""


def choose(found: Sequence[CandidateRecord], candidate: str) -> CandidateRecord:
    """``best``: the most accurate sweep trial on validation, else the most accurate baseline that
    learns from rows; a trial number; or a candidate's name."""
    complete = [r for r in found if r.state == "COMPLETE" and r.validation is not None]
    learns = [r for r in complete if r.kind == Kind.trial or (r.kind == Kind.baseline and r.method in RETRAINABLE)]
    if candidate == "best":
        trials = [r for r in learns if r.kind == Kind.trial]
        pool = trials or learns
        if not pool:
            raise CurveError("no candidate that learns from training rows in the study: run `roitune baseline` "
                             "(classical, embedding) or `roitune sweep` first")
        return max(pool, key=lambda r: (r.validation.accuracy, -(r.number or 0)))
    named = [r for r in complete if (candidate.isdigit() and r.number == int(candidate))
             or candidate in (r.name, r.label)]
    if not named:
        raise CurveError(f"--candidate {candidate}: no complete candidate of that number or name in the study")
    if named[0] not in learns:
        raise CurveError(f"--candidate {candidate}: {named[0].label} does not learn from training rows; choose a "
                         f"sweep trial or one of the baselines {', '.join(RETRAINABLE)}")
    return named[0]


def fraction_of(train: list[Example], fraction: float, seed: int) -> list[Example]:
    """A stratified sample of ``fraction`` of the rows; nested: a smaller fraction's rows are in every
    larger one's (the same per-label shuffle, cut shorter)."""
    if fraction >= 1.0:
        return list(train)
    return stratified_split(train, [fraction], seed)[1]


def _baseline_retrain(cfg: Config, splits: Splits, record: CandidateRecord) -> Retrain:
    pricing = Pricing(cfg.economics.hardware_price(), cfg.economics.hardware)
    held = [capped("validation", splits.validation, None, cfg.seed)]

    def retrain(train: list[Example], fraction: float, on_start) -> tuple[SplitResult, float]:
        common = dict(batch_size=cfg.baselines.batch_size, seed=cfg.seed, on_start=on_start)
        if record.method == "classical":
            done = classical(train, held, splits.labels, pricing, **common)
        else:
            done = embedding(train, held, splits.labels, pricing,
                             encoder_name=record.settings.get("encoder", cfg.baselines.encoder), **common)
        return done.validation, done.compute_dollars

    return retrain


def _write_rows(path: Path, rows: Sequence[Example]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps({"text": e.text, "label": e.label}, ensure_ascii=False) + "\n" for e in rows),
                   encoding="utf-8")
    tmp.replace(path)
    return str(path)


def _trial_retrain(cfg: Config, splits: Splits, study, record: CandidateRecord, console: Console) -> Retrain:
    from optimizer.sweep import run_sweep

    params = study.trials[record.number].params
    folder = Path(cfg.runs_dir) / "curves" / cfg.study / f"trial-{record.number}"
    validation = _write_rows(folder / "validation.jsonl", splits.validation)
    test = _write_rows(folder / "test.jsonl", splits.test)

    def retrain(train: list[Example], fraction: float, on_start) -> tuple[SplitResult, float]:
        tag = f"{fraction:g}"
        data = DataSpec(train=_write_rows(folder / f"train-{tag}.jsonl", train), validation=validation, test=test,
                        preferences=cfg.data.preferences)
        child = cfg.model_copy(update={
            "data": data, "study": f"{cfg.study}.curve.trial-{record.number}.{tag}", "budget": BudgetSpec(),
            "task": cfg.task.model_copy(update={"labels": list(splits.labels)}),
            "search": cfg.search.model_copy(update={"trials": 1, "pruner": "none", "timeout_s": None}),
        })
        child_study = open_study(child.storage, child.study, child.search.objective)
        if not child_study.trials:
            child_study.enqueue_trial(params)
        run_sweep(child, console=console)  # prints its own progress
        trained = [r for r in records(child_study) if r.kind == Kind.trial]
        done = next((r for r in trained if r.state == "COMPLETE" and r.validation is not None), None)
        if done is None:
            why = trained[-1].fail_reason if trained else "no trial ran"
            raise CurveError(f"retraining trial {record.number} on {len(train):,} rows failed: {why}")
        return done.validation, compute_dollars(child_study)

    return retrain


def _correct(result: SplitResult, labels: Sequence[str], gold: Sequence[Example]) -> dict[int, bool]:
    return {item: label == gold[item].label for item, label in result.predicted_labels(labels).items()}


def measure_curve(cfg: Config, *, candidate: str = "best", fractions: Sequence[float] = DEFAULT_FRACTIONS,
                  more_rows: int | None = None, console: Console) -> LearningCurve:
    """Retrain ``candidate`` on each fraction, fit the curve, record it in the study and return it."""
    from optimizer.progress import progress_bars

    fractions = check_fractions(fractions)
    if more_rows is not None and more_rows < 1:
        raise CurveError(f"--more {more_rows}: must be at least 1 row")
    splits = load_data(cfg, console)
    study = load_existing_study(cfg.storage, cfg.study)
    record = choose(records(study), candidate)
    retrain = (_trial_retrain(cfg, splits, study, record, console) if record.kind == Kind.trial
               else _baseline_retrain(cfg, splits, record))
    console.print(f"learning curve of {record.label}: {len(fractions)} retrainings on "
                  f"{', '.join(f'{f:g}' for f in fractions)} of {len(splits.train):,} training rows", highlight=False)
    scored = []
    with progress_bars(console) as start:
        for fraction in fractions:
            train = fraction_of(splits.train, fraction, cfg.seed)
            result, dollars = retrain(train, fraction, lambda name, total: start(f"{name} ({fraction:g})", total))
            scored.append((fraction, len(train), _correct(result, splits.labels, splits.validation), dollars))
    shared = sorted(set.intersection(*(set(correct) for _, _, correct, _ in scored)))
    points = [Measured(fraction, rows, [correct[i] for i in shared], dollars)
              for fraction, rows, correct, dollars in scored]
    curve = learning_curve(points, candidate=record.label, number=record.number, method=record.method,
                           split="validation", measures=measure_word(split_teacher(splits.validation)),
                           more_rows=more_rows or len(splits.train), seed=cfg.seed)
    add_curve(study, curve)
    return curve
