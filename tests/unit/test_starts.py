"""The known-good first trials: one per (base model, head, method) the space allows, inside
the user's ranges, and only for a study that has no sweep trial yet."""

from __future__ import annotations

import optuna
import pytest

from optimizer.space import Range, SearchSpec
from optimizer.starts import enqueue_first_trials, first_trials


def test_one_first_trial_per_model_head_and_method_in_order():
    spec = SearchSpec(base_models=["minilm-l6", "smollm2-135m-instruct"], methods=["full", "lora"],
                      heads=["classifier", "generative"], batch_size=[16, 32])
    trials = first_trials(spec)
    assert [(t["base_model"], t["method"], t.get("head")) for t in trials][:3] == [
        ("minilm-l6", "full", None),  # an encoder takes a classifier head: not sampled
        ("smollm2-135m-instruct", "lora", "classifier"),
        ("smollm2-135m-instruct", "lora", "generative")]
    assert trials[0] == {"base_model": "minilm-l6", "method": "full", "full_learning_rate": 2e-4,
                         "head_init": "zero", "head_learning_rate": 2e-3, "batch_size": 16}
    assert {"base_model": "smollm2-135m-instruct", "method": "full", "head": "generative",
            "full_learning_rate": 1e-4, "batch_size": 16} in trials  # a CPU trial's few dozen steps need 1e-4
    assert len(trials) == 7  # minilm full/lora, smollm2 {lora, full} x {classifier, generative}, minilm full again
    assert trials[-1] == {"base_model": "minilm-l6", "method": "full", "full_learning_rate": 1e-4,
                          "head_init": "probe", "batch_size": 32}  # a second setting after every first


def test_two_settings_clamped_into_one_are_one_trial():
    spec = SearchSpec(base_models=["minilm-l6"], methods=["full"], batch_size=[16], head_init=["zero"],
                      full_learning_rate=Range(low=1e-5, high=5e-5))
    assert first_trials(spec) == [{"base_model": "minilm-l6", "method": "full", "full_learning_rate": 5e-5,
                                   "head_init": "zero", "head_learning_rate": 2e-3, "batch_size": 16}]


@pytest.mark.parametrize("offered", [["zero"], ["probe"], ["zero", "probe"]])
def test_each_start_takes_a_head_init_the_space_offers(offered):
    spec = SearchSpec(base_models=["minilm-l6"], methods=["full"], batch_size=[16, 32], head_init=offered)
    inits = [t["head_init"] for t in first_trials(spec)]
    # its own where offered (zero, then probe for the second setting), else the space's only one
    assert inits == (["zero", "probe"] if len(offered) == 2 else offered * 2)
    for trial in first_trials(spec):  # a probed head trains at the body's rate: no rate of its own
        assert ("head_learning_rate" in trial) == (trial["head_init"] == "zero")


def test_settings_are_clamped_to_the_users_ranges_and_choices():
    spec = SearchSpec(methods=["lora"], heads=["generative"], rank=[4, 64], learning_rate=Range(low=1e-5, high=2e-4))
    [trial] = first_trials(spec)
    assert trial["learning_rate"] == 2e-4 and trial["rank"] == 4 and "head_init" not in trial  # generative


def test_only_a_new_study_gets_them(tmp_path):
    spec = SearchSpec(methods=["lora"], heads=["generative", "classifier"], trials=1)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s")
    assert enqueue_first_trials(study, spec) == 1  # no more than the sweep will run
    [waiting] = study.get_trials(deepcopy=False)
    assert waiting.state == optuna.trial.TrialState.WAITING and waiting.system_attrs["fixed_params"]["head"] == "classifier"
    assert enqueue_first_trials(study, spec) == 0


def test_an_enqueued_probed_start_is_what_the_trial_samples():
    # the start's head init reaches the trial through Optuna's fixed params, with no head rate
    from optimizer.space import sample

    spec = SearchSpec(base_models=["minilm-l6"], methods=["full"], batch_size=[16, 32], trials=2)
    study = optuna.create_study()
    enqueue_first_trials(study, spec)
    drawn = [sample(study.ask(), spec) for _ in range(2)]
    assert [(s.head_init, s.head_learning_rate, s.batch_size) for s in drawn] == [
        ("zero", 2e-3, 16), ("probe", None, 32)]
