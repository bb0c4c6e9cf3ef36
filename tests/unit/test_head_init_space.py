"""A classifier head's start (zero or a linear probe) is a searched dimension: sampled only where
a classifier head is, with a head rate only for a zero head (a probed one trains at the body's)."""

from __future__ import annotations

import optuna
import pytest

from optimizer.config import Config
from optimizer.space import SearchSpec, sample


def _drawn(spec: SearchSpec, trials: int = 12) -> list[dict]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(trials):
        trial = study.ask()
        drawn.append({"settings": sample(trial, spec), "params": dict(trial.params)})
        study.tell(trial, 0.0)
    return drawn


def test_a_probed_head_has_no_rate_of_its_own_and_a_zero_head_has_one():
    drawn = _drawn(SearchSpec(base_models=["minilm-l6"], methods=["full"]), trials=16)
    assert {d["settings"].head_init for d in drawn} == {"zero", "probe"}  # both offered by default
    for d in drawn:
        s, params = d["settings"], d["params"]
        assert params["head_init"] == s.head_init
        assert ("head_learning_rate" in params) == (s.head_init == "zero")
        assert (s.head_learning_rate is None) == (s.head_init == "probe")


def test_a_generative_trial_samples_no_head_init():
    drawn = _drawn(SearchSpec(base_models=["smollm2-135m-instruct"], methods=["lora"], heads=["generative"]))
    assert all("head_init" not in d["params"] and "head_learning_rate" not in d["params"] for d in drawn)


@pytest.mark.parametrize("written, offered", [("probe", ["probe"]), (["zero"], ["zero"])])
def test_one_head_init_written_plainly_fixes_it(written, offered):
    spec = Config.model_validate({"data": {"train": "t.jsonl"}, "search": {"head_init": written}}).search
    assert spec.head_init == offered
    drawn = _drawn(SearchSpec(base_models=["minilm-l6"], methods=["full"], head_init=written), trials=4)
    assert {d["settings"].head_init for d in drawn} == set(offered)
