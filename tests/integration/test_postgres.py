"""Several `roitune sweep` workers share one study on a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest

from evals.record import read_record, sweep_trials
from evals.storage import load_existing_study
from postgres_server import available
from sweep_fixtures import tiny_config, write_tiny_model

pytestmark = [pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=str(available()))]


def test_two_workers_share_one_study_and_run_each_trial_once(tmp_path, smollm_tokenizer, postgres_url):
    model = write_tiny_model(tmp_path / "model", smollm_tokenizer)
    config = tiny_config(tmp_path, model, rank=[4, 8, 16], epochs=[1], trials=4, pruner="none")
    roitune = [sys.executable, "-m", "optimizer.cli", "sweep", "-c", str(config),
               "--storage", postgres_url, "--study", "shared"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    workers = [subprocess.Popen(roitune, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs

    study = load_existing_study(postgres_url, "shared")
    trials = sweep_trials(study)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4, [(t.number, t.state, read_record(study, t).fail_reason) for t in trials]
    assert len({read_record(study, t).adapter_path for t in complete}) == 4  # each trial ran once, own adapter
    # Both workers took part: each printed its closing line.
    assert all("sweep stopped" in out for out in outputs)
