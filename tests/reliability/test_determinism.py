"""The same config and seed on CPU give the same trial twice: same sampled settings, same
losses, same validation predictions and scores, same adapter weights (within 1e-6)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from evals.record import read_record, sweep_trials
from evals.storage import load_existing_study
from reliability_support import StudyFiles, roitune


def test_same_config_and_seed_give_the_same_trial(study: StudyFiles):
    run = roitune("sweep", "-c", study.config, "--study", "again", "--json")
    assert run.exit_code == 0, run.stderr
    studies = [load_existing_study(study.storage, name) for name in (study.study, "again")]
    [first], [second] = (sweep_trials(s) for s in studies)
    assert first.state == second.state == optuna.trial.TrialState.COMPLETE
    assert first.params == second.params

    a, b = (read_record(s, t) for s, t in zip(studies, (first, second)))
    assert a.settings == b.settings
    for key in ("loss_first", "loss_last"):
        assert getattr(b.training, key) == pytest.approx(getattr(a.training, key), abs=1e-6), key
    assert a.training.steps == b.training.steps and a.training.tokens == b.training.tokens
    assert a.validation.predictions == b.validation.predictions and a.validation.items == b.validation.items
    for key in ("accuracy", "macro_f1"):
        assert getattr(b.validation, key) == pytest.approx(getattr(a.validation, key), abs=1e-6), key
    assert b.validation.per_class_f1 == pytest.approx(a.validation.per_class_f1, abs=1e-6)
    # Only the measured speed (and what it prices) may differ between the runs.

    from safetensors.torch import load_file

    weights = [load_file(Path(r.adapter_path) / "adapter_model.safetensors") for r in (a, b)]
    assert weights[0].keys() == weights[1].keys() and weights[0]
    for name, tensor in weights[0].items():
        assert (tensor - weights[1][name]).abs().max().item() <= 1e-6, name
    assert Path(a.adapter_path) != Path(b.adapter_path)
    assert json.loads((Path(a.adapter_path) / "roitune.json").read_text()) == \
        json.loads((Path(b.adapter_path) / "roitune.json").read_text())
