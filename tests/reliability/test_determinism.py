"""The same config and seed on CPU give the same trial twice: same sampled settings, same
losses, same validation predictions and scores, same adapter weights (within 1e-6)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from evals.results import load_existing_study, sweep_trials
from reliability_support import StudyFiles, roitune


def test_same_config_and_seed_give_the_same_trial(study: StudyFiles):
    run = roitune("sweep", "-c", study.config, "--study", "again", "--json")
    assert run.exit_code == 0, run.stderr
    [first] = sweep_trials(load_existing_study(study.storage, study.study))
    [second] = sweep_trials(load_existing_study(study.storage, "again"))
    assert first.state == second.state == optuna.trial.TrialState.COMPLETE
    assert first.params == second.params

    a, b = first.user_attrs, second.user_attrs
    for key in ("loss_first", "loss_last"):
        assert b["training"][key] == pytest.approx(a["training"][key], abs=1e-6), key
    assert a["training"]["steps"] == b["training"]["steps"] and a["training"]["tokens"] == b["training"]["tokens"]
    assert a["validation_predictions"] == b["validation_predictions"]
    for key in ("accuracy", "macro_f1"):
        assert b["validation_scores"][key] == pytest.approx(a["validation_scores"][key], abs=1e-6), key
    assert b["validation_scores"]["per_class_f1"] == pytest.approx(a["validation_scores"]["per_class_f1"], abs=1e-6)
    # Only the measured speed (and what it prices) may differ between the runs.

    from safetensors.torch import load_file

    weights = [load_file(Path(t.user_attrs["adapter_path"]) / "adapter_model.safetensors") for t in (first, second)]
    assert weights[0].keys() == weights[1].keys() and weights[0]
    for name, tensor in weights[0].items():
        assert (tensor - weights[1][name]).abs().max().item() <= 1e-6, name
    assert Path(a["adapter_path"]) != Path(b["adapter_path"])
    assert json.loads((Path(a["adapter_path"]) / "roitune.json").read_text()) == \
        json.loads((Path(b["adapter_path"]) / "roitune.json").read_text())
