"""A sweep worker killed with SIGKILL mid-trial: its trial is failed by the heartbeat and
retried, the study still reaches the requested number of finished trials, and every result
points at an intact adapter (never a half-written ``.partial`` folder, never one twice).

The worker that is killed is a real ``python -m optimizer.cli sweep`` process; the restart (or
the second worker) runs the same command in-process, right after the kill, i.e. well inside
the heartbeat's grace period (3 x ``heartbeat_s``), so the sweep has to wait for the dead
trial to go stale rather than count it as someone else's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

import optimizer.trial  # noqa: F401  (torch, transformers, peft: imported before any worker starts)
from evals.record import read_record, sweep_trials
from evals.storage import load_existing_study, storage_for
from reliability_support import CliRun, roitune
from sweep_fixtures import tiny_config

COMPLETE, FAIL, RUNNING = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                           optuna.trial.TrialState.RUNNING)


def start_worker(command: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[2])


def wait_for_trial_in_training(storage_url: str, study: str, number: int, worker: subprocess.Popen,
                               log: Path, timeout: float = 240) -> optuna.trial.FrozenTrial:
    """Poll the study until trial ``number`` is RUNNING and has started training."""
    storage = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, f"the worker ended early:\n{log.read_text()}"
        try:
            storage = storage or storage_for(storage_url)
            trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
        except KeyError:  # the study does not exist yet
            trials = []
        found = next((t for t in trials if t.number == number), None)
        # A trial writes its record before it trains, one attribute at a time (evals.record's
        # write_trial_record), so this waits for the settings attribute itself rather than reading
        # a record that may still be half written.
        if found is not None and found.state == RUNNING and "settings" in found.user_attrs:
            return found
        time.sleep(0.1)
    raise AssertionError(f"trial {number} never started training:\n{log.read_text()}")


def kill(worker: subprocess.Popen) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL


def assert_killed_trial_was_retried(study: optuna.Study, trials, victim: int) -> optuna.trial.FrozenTrial:
    by_number = {t.number: t for t in trials}
    killed = by_number[victim]
    assert killed.state == FAIL, killed.state
    assert read_record(study, killed).fail_reason is None  # no exception: the heartbeat failed it
    copies = [t for t in trials if victim in t.system_attrs.get("retry_history", [])]
    assert len(copies) == 1, [(t.number, t.state, t.system_attrs) for t in trials]
    [copy] = copies
    assert copy.system_attrs["failed_trial"] == killed.number
    assert copy.state == COMPLETE
    assert copy.params == killed.params  # the same settings, trained again from the start
    return copy


def assert_adapters_intact(study: optuna.Study, trials) -> None:
    """Every COMPLETE trial has its own whole adapter folder, which reproduces its score."""
    from evals.data import load_examples
    from optimizer.adapters import AdapterSpec, load_predictor

    complete = [read_record(study, t) for t in trials if t.state == COMPLETE]
    paths = [Path(r.adapter_path) for r in complete]
    assert len(set(paths)) == len(paths), paths  # none shared, none duplicated
    for record, path in zip(complete, paths):
        assert not path.name.endswith(".partial") and path.name == f"trial-{record.number:04d}", path
        assert {"adapter_config.json", "adapter_model.safetensors", "roitune.json"} <= {p.name for p in path.iterdir()}
        spec = AdapterSpec.from_json(json.loads((path / "roitune.json").read_text()))
        predictor = load_predictor(spec, path)
        validation = load_examples(path.parents[2] / "data" / "validation.jsonl")
        predicted = [p.label for p in predictor.predict([e.text for e in validation])]
        accuracy = sum(p == e.label for p, e in zip(predicted, validation)) / len(validation)
        assert record.validation.items is None  # every validation item was scored, as here
        assert accuracy == pytest.approx(record.validation.accuracy, abs=1e-9)


def sweep_command(config: Path, trials: int, *extra: str) -> list[str]:
    return ["sweep", "-c", str(config), "--trials", str(trials), "--set", "heartbeat_s=1", "--json", *extra]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sqlite_worker_killed_mid_trial_then_restarted(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, epochs=[1], rank=[4, 8], pruner="none")
    storage, log = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "worker.log"
    worker = start_worker([sys.executable, "-m", "optimizer.cli", *sweep_command(config, 3)], log)
    try:
        victim = wait_for_trial_in_training(storage, "demo", 1, worker, log)
    finally:
        kill(worker)
    # What a kill during the adapter's save leaves behind: it must never be taken for a result.
    stray = tmp_path / "runs" / "demo" / f"trial-{victim.number:04d}.partial"
    stray.mkdir(parents=True, exist_ok=True)
    (stray / "adapter_model.safetensors").write_bytes(b"half a file")

    restart = roitune(*sweep_command(config, 3))  # the same command, at once
    assert restart.exit_code == 0 and restart.exception is None, (restart.stderr, restart.exception)
    summary = json.loads(restart.stdout)
    assert summary["finished"] == 3, summary["stop_reason"]

    study = load_existing_study(storage, "demo")
    trials = sweep_trials(study)
    assert_killed_trial_was_retried(study, trials, victim.number)
    assert sum(t.state == COMPLETE for t in trials) == 3
    assert len(trials) == 4  # three results plus the killed attempt, nothing run twice
    assert not any(t.state == RUNNING for t in trials)
    assert_adapters_intact(study, trials)
    assert not stray.exists()  # the killed trial's half-saved adapter was cleaned up


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_postgres_two_workers_one_killed(tmp_path, tiny_model, postgres_url):
    # Three epochs: B's trial 0 must outlast A's start-up, so that A takes trial 1.
    config = tiny_config(tmp_path, tiny_model, epochs=[3], rank=[4, 8], pruner="none")
    flags = ("--storage", postgres_url, "--study", "killed-worker")
    log = tmp_path / "worker-b.log"
    doomed = start_worker([sys.executable, "-m", "optimizer.cli", *sweep_command(config, 2, *flags)], log)
    survivor: list[CliRun] = []
    thread = None
    try:
        victim = wait_for_trial_in_training(postgres_url, "killed-worker", 0, doomed, log)
        # Worker A joins while B trains trial 0, and takes the other trial the study needs.
        thread = threading.Thread(target=lambda: survivor.append(roitune(*sweep_command(config, 2, *flags))))
        thread.start()
        wait_for_trial_in_training(postgres_url, "killed-worker", 1, doomed, log)
        study = load_existing_study(postgres_url, "killed-worker")
        assert study.trials[0].state == RUNNING, "B finished trial 0 before A started: make trials longer"
    finally:
        kill(doomed)
        if thread is not None:
            thread.join(timeout=400)
    [run] = survivor
    assert run.exit_code == 0 and run.exception is None, (run.stderr, run.exception)
    summary = json.loads(run.stdout)
    assert summary["finished"] == 2, summary["stop_reason"]

    study = load_existing_study(postgres_url, "killed-worker")
    trials = sweep_trials(study)
    assert_killed_trial_was_retried(study, trials, victim.number)
    assert sum(t.state == COMPLETE for t in trials) == 2 and len(trials) == 3
    assert not any(t.state == RUNNING for t in trials)
    assert_adapters_intact(study, trials)
