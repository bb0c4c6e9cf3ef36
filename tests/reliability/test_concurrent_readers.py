"""Readers while a sweep writes: ``roitune report --json`` and a plain
``optuna.load_study(...).trials`` loop, each in its own process, run over and over while a
sweep (heartbeat every second) writes trials into the same SQLite file or PostgreSQL database.
Nobody fails with "database is locked", or at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml

from evals.record import sweep_trials
from evals.storage import load_existing_study
from reliability_support import REPO, CliRun, roitune
from sweep_fixtures import tiny_config

# A user's own script: plain Optuna, default SQLAlchemy settings (SQLite's 5 s lock timeout).
PLAIN_READER = """
import sys, time, optuna
from pathlib import Path
url, name, stop = sys.argv[1:4]
optuna.logging.set_verbosity(optuna.logging.WARNING)
reads = 0
while not Path(stop).exists():
    trials = optuna.load_study(study_name=name, storage=url).trials
    reads += 1
    time.sleep(0.25)
print(reads)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def readers_while_sweeping(tmp_path: Path, tiny_model: Path, storage: str, plain_url: str, trials: int) -> None:
    config = tiny_config(tmp_path, tiny_model, epochs=[1], rank=[4, 8], pruner="none", trials=trials)
    data = yaml.safe_load(config.read_text())
    data.update(storage=storage, study="readers", heartbeat_s=1)
    config.write_text(yaml.safe_dump(data))
    first = roitune("baseline", "-c", config, "--only", "classical")  # the study exists, report has a row
    assert first.exit_code == 0, first.stderr

    stop = tmp_path / "stop"
    plain = subprocess.Popen([sys.executable, "-c", PLAIN_READER, plain_url, "readers", str(stop)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    swept: list[CliRun] = []
    writer = threading.Thread(target=lambda: swept.append(roitune("sweep", "-c", config, "--json")))
    writer.start()
    reports = []
    try:
        while writer.is_alive() or len(reports) < 2:
            report = subprocess.run([sys.executable, "-m", "optimizer.cli", "report", "-c", str(config), "--json"],
                                    capture_output=True, text=True, timeout=120, env=_env(), cwd=REPO)
            assert report.returncode == 0, report.stderr
            assert "locked" not in report.stderr and "Traceback" not in report.stderr, report.stderr
            reports.append(json.loads(report.stdout))
            time.sleep(2.0)  # a report is CPU work too: leave the writer some of the two cores
    finally:
        writer.join(timeout=600)
        stop.touch()
        out, err = plain.communicate(timeout=60)
    assert plain.returncode == 0 and "locked" not in err, err
    assert int(out) >= 5  # it really read, many times, while the sweep wrote

    [run] = swept
    assert run.exit_code == 0 and run.exception is None, (run.stderr, run.exception)
    assert "locked" not in run.stderr
    assert json.loads(run.stdout)["finished"] == trials
    states = [t.state for t in sweep_trials(load_existing_study(storage, "readers"))]
    assert states == [optuna.trial.TrialState.COMPLETE] * trials, states
    assert len(reports) >= 2
    assert len(reports[-1]["candidates"]) >= len(reports[0]["candidates"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sqlite_readers_while_a_sweep_writes(tmp_path, tiny_model):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    readers_while_sweeping(tmp_path, tiny_model, url, url, trials=2)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)
def test_postgres_readers_while_a_sweep_writes(tmp_path, tiny_model, postgres_url):
    plain = "postgresql+psycopg://" + postgres_url.removeprefix("postgresql://")  # the driver shipped
    readers_while_sweeping(tmp_path, tiny_model, postgres_url, plain, trials=1)
