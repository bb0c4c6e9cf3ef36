"""``roitune sweep``: an Optuna study of adaptation settings, priced like the baselines.

Runs trials one at a time through ``study.optimize(n_trials=1)`` so Optuna's RDB heartbeat,
stale-trial failing and retry work as designed, while the loop decides between trials whether
to go on: the requested number of finished trials (resumed runs count earlier ones; several
workers on one PostgreSQL study share the count), ``--timeout`` and ``budget.max_dollars``
each stop it cleanly with the reason printed.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from evals.metrics import score
from evals.record import (CandidateRecord, Kind, SplitResult, add_test_result, compute_dollars, read_record,
                          remember_data, sweep_trials, write_trial_record)
from evals.storage import open_study
from optimizer.cascades import build_cascades
from optimizer.config import Config
from optimizer.ladder import load_data
from optimizer.starts import enqueue_first_trials
from optimizer.trial import TrialRun, Workbench

class SurplusTrial(RuntimeError):
    """Another worker already started the last trial the study needed."""


@dataclass
class SweepSummary:
    stop_reason: str
    finished: int
    new_trials: list[int] = field(default_factory=list)
    tested: list[int] = field(default_factory=list)
    cascades: list[int] = field(default_factory=list)  # cascades recorded after the finalists were tested
    compute_dollars: float = 0.0


def _retried(trials) -> set[int]:
    """Numbers of stale (killed-worker) trials that Optuna re-queued: their copy counts."""
    return {number for t in trials for number in t.system_attrs.get("retry_history", [])}


def counted_trials(study) -> list:
    """Sweep trials that count towards the requested total, in order of number: every trial
    except re-queued failures and surplus starts. RUNNING trials of other workers count, so
    two workers never overshoot."""
    import optuna

    trials = sweep_trials(study)
    retried = _retried(trials)
    return [t for t in trials
            if t.state != optuna.trial.TrialState.WAITING and t.number not in retried
            and not str(t.user_attrs.get("fail_reason", "")).startswith("surplus")]


def finished_count(study) -> int:
    return sum(t.state.is_finished() for t in counted_trials(study))


def _make_pruner(kind: str, checks: int):
    import optuna

    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(checks, 1), reduction_factor=3)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:500]


def run_sweep(cfg: Config, *, console: Console, on_step=None) -> SweepSummary:
    import optuna

    spec = cfg.search
    splits = load_data(cfg, console)
    study = open_study(cfg.storage, cfg.study, spec.objective, heartbeat_interval=cfg.heartbeat_s,
                       sampler=optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=4),
                       pruner=_make_pruner(spec.pruner, spec.evals_per_epoch * max(spec.epochs)))
    if spec.trial_timeout_s:
        console.print(f"time budget: each trial trains for at most {spec.trial_timeout_s:.0f} s and keeps its best "
                      "validation checkpoint")
    remember_data(study, splits.labels, splits.validation, splits.test)
    started_well = enqueue_first_trials(study, spec)
    if started_well:
        console.print(f"the first {started_well} trial(s) use known-good settings per base model, head and method; "
                      "the sampler explores after them")
    run_dir = Path(cfg.runs_dir) / cfg.study
    bench = Workbench(cfg, splits, run_dir, cfg.economics.hardware_price(), on_step=on_step)
    cap = bench.eval_set.cap()
    if cap is not None:
        console.print(f"[yellow]cap:[/] search.max_eval_items: trials are checked and scored on {cap.text()}")
    summary = SweepSummary(stop_reason="", finished=finished_count(study))
    started = time.monotonic()

    def objective(trial):
        position = [t.number for t in counted_trials(study)].index(trial.number)
        if position >= spec.trials:
            reason = f"surplus: the study already has {spec.trials} trials"
            write_trial_record(trial, CandidateRecord(kind=Kind.trial, name=f"trial {trial.number}", method="",
                                                      fail_reason=reason))
            raise SurplusTrial(reason)
        summary.new_trials.append(trial.number)
        run = TrialRun(trial, bench)
        try:
            return run.run()
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded as the FAIL reason; the sweep goes on
            run.fail(_one_line(error))
            console.print(f"[red]trial {trial.number} failed:[/] {_one_line(error)}")
            raise

    waiting_for: list[int] = []
    while True:
        _fail_stale_trials(study)  # a killed worker's trial: FAIL, and re-queued by the retry callback
        _remove_orphan_staging(study, run_dir)
        counted = counted_trials(study)
        summary.finished = sum(t.state.is_finished() for t in counted)
        spent = compute_dollars(study)
        timed_out = bool(spec.timeout_s) and time.monotonic() - started >= spec.timeout_s
        if len(counted) >= spec.trials:
            running = [t.number for t in counted if t.state == optuna.trial.TrialState.RUNNING]
            if not running or timed_out:
                summary.stop_reason = f"the study has its {spec.trials} trials ({summary.finished} finished)"
                break
            # Another worker's trial, or a killed worker's whose heartbeat is not stale yet: wait
            # until it finishes, or goes stale and is re-queued (then this worker runs it).
            if running != waiting_for:
                console.print(f"waiting for trial(s) {', '.join(map(str, running))} of another worker "
                              f"(a killed worker's trial is retried after {3 * cfg.heartbeat_s} s)")
                waiting_for = running
            time.sleep(min(cfg.heartbeat_s, 5))
            continue
        if timed_out:
            summary.stop_reason = f"timeout of {spec.timeout_s:.0f} s reached"
            break
        if cfg.budget.max_dollars is not None and spent >= cfg.budget.max_dollars:
            summary.stop_reason = f"budget reached: trials cost ${spent:.4f} of ${cfg.budget.max_dollars:.2f}"
            break
        study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
    summary.finished = finished_count(study)
    summary.compute_dollars = compute_dollars(study)
    summary.tested = score_finalists(study, bench)
    summary.cascades = build_cascades(study, cfg.economics, objective=spec.objective, seed=cfg.seed,
                                      console=console, every_pair=False).recorded
    return summary


def _fail_stale_trials(study) -> None:
    """Fail trials whose worker stopped beating (Optuna does this only when a trial starts)."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _remove_orphan_staging(study, run_dir: Path) -> None:
    """Delete ``trial-NNNN.partial`` folders of finished trials: a worker killed while saving an
    adapter leaves one. A running trial's folder may be another worker's save in progress."""
    import optuna

    stagings = list(run_dir.glob("trial-*.partial"))
    if not stagings:  # the usual case: no storage query on every turn of the sweep loop
        return
    running = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    for staging in stagings:
        number = staging.name.removeprefix("trial-").removesuffix(".partial")
        if number.isdigit() and int(number) not in running:
            shutil.rmtree(staging, ignore_errors=True)


def finalists(study) -> list:
    """The trials chosen on validation, whose test score the report shows: the winner by the
    objective (roi) or the front (pareto). Test results never take part in this choice."""
    import optuna

    complete = [t for t in sweep_trials(study) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return []
    if len(study.directions) == 1:
        return [min(complete, key=lambda t: t.values[0])]
    front = {t.number for t in study.best_trials}
    return [t for t in complete if t.number in front]


def score_finalists(study, bench: Workbench) -> list[int]:
    """Score the finalists on the test split once, after they were chosen on validation."""
    from optimizer.adapters import AdapterSpec, load_predictor

    tested = []
    for trial in finalists(study):
        record = read_record(study, trial)
        if record.test is not None:
            continue
        path = Path(record.adapter_path)
        predictor = load_predictor(AdapterSpec.from_json(json.loads((path / "roitune.json").read_text())), path)
        test, labels = bench.splits.test, bench.splits.labels
        answers = predictor.predict([e.text for e in test])
        predictions = [a.label for a in answers]
        scores = score([e.label for e in test], predictions, labels, seed=bench.cfg.seed)
        add_test_result(study, trial.number,
                        SplitResult.of(scores, predictions, labels, distributions=[a.distribution for a in answers]))
        tested.append(trial.number)
    return tested
