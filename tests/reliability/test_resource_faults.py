"""Resource faults: a trial that runs out of memory, a trial whose loss diverges, an export
into a full disk. Each fails alone, says why in one line, and leaves the study, the other
trials and the output folder as they were."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
from pathlib import Path

import optuna
import pytest

from evals.record import read_record, sweep_trials
from evals.storage import load_existing_study
from reliability_support import StudyFiles, roitune
from sweep_fixtures import tiny_config

COMPLETE, FAIL = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL
HUGE_RANK = 50_000_000  # one LoRA matrix of the tiny model would need 12.8 GB


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


def _seed_where_first_trial_is_huge(config: Path) -> int:
    """A sampler seed whose first trial draws the huge rank and whose second draws rank 4,
    found with the sweep's own sampler and sampling code (in memory)."""
    from optimizer.config import load_config
    from optimizer.space import sample

    spec = load_config(config).search
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for seed in range(200):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))
        ranks = []
        for _ in range(2):
            trial = study.ask()
            ranks.append(sample(trial, spec).rank)
            study.tell(trial, state=FAIL)
        if ranks == [HUGE_RANK, 4]:
            return seed
    raise AssertionError("no seed draws the huge rank first")


def test_out_of_memory_trial_fails_with_its_reason_and_the_sweep_goes_on(tmp_path, tiny_model):
    """A real memory cap (RLIMIT_AS, 2 GiB above what the process holds) makes the huge-rank
    trial's allocation fail; the next trial completes on the same, clean base model."""
    config = tiny_config(tmp_path, tiny_model, epochs=[1], rank=[4, HUGE_RANK], pruner="none",
                         known_good_first=False)  # the sampler's own first draw is the huge rank
    seed = _seed_where_first_trial_is_huge(config)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_bytes() + 2 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        run = roitune("sweep", "-c", config, "--trials", "2", "--set", f"search.seed={seed}", "--json")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert run.exit_code == 0 and run.exception is None, (run.stderr, run.exception)
    assert json.loads(run.stdout)["finished"] == 2

    study = load_existing_study(f"sqlite:///{tmp_path / 'study.db'}", "demo")
    first, second = sweep_trials(study)
    assert first.params["rank"] == HUGE_RANK and first.state == FAIL
    failed = read_record(study, first)
    reason = failed.fail_reason
    assert reason.startswith("RuntimeError: ") and "allocate" in reason and "\n" not in reason, reason
    assert f"trial {first.number} failed: RuntimeError" in run.stderr
    assert failed.compute_dollars > 0  # a failed trial's compute still counts
    assert not (tmp_path / "runs" / "demo" / f"trial-{first.number:04d}").exists()

    assert second.params["rank"] == 4 and second.state == COMPLETE
    # Its adapter, reloaded on a freshly loaded base, scores what the sweep measured on the
    # shared base: the failed trial left nothing behind in the base model.
    from evals.data import load_examples
    from optimizer.adapters import AdapterSpec, load_predictor

    done = read_record(study, second)
    adapter = Path(done.adapter_path)
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    predictor = load_predictor(AdapterSpec.from_json(json.loads((adapter / "roitune.json").read_text())), adapter)
    validation = load_examples(tmp_path / "data" / "validation.jsonl")
    predicted = [p.label for p in predictor.predict([e.text for e in validation])]
    accuracy = sum(p == e.label for p, e in zip(predicted, validation)) / len(validation)
    assert done.validation.items is None  # every validation item was scored, as here
    assert accuracy == pytest.approx(done.validation.accuracy, abs=1e-9)


def test_nan_loss_fails_the_trial_with_its_reason_and_writes_no_adapter(tmp_path, tiny_model):
    config = tiny_config(tmp_path, tiny_model, epochs=[1], pruner="none",
                         learning_rate={"low": 1e30, "high": 1e30})
    run = roitune("sweep", "-c", config, "--json")
    assert run.exit_code == 0 and run.exception is None, (run.stderr, run.exception)
    assert json.loads(run.stdout)["finished"] == 1
    study = load_existing_study(f"sqlite:///{tmp_path / 'study.db'}", "demo")
    [trial] = sweep_trials(study)
    assert trial.state == FAIL
    record = read_record(study, trial)
    assert record.fail_reason.startswith(("TrainingDiverged: loss became nan",
                                          "TrainingDiverged: loss became inf")), record
    assert record.adapter_path is None
    assert not list((tmp_path / "runs" / "demo").glob("trial-*"))  # no adapter, no .partial


# -- a full disk at export -------------------------------------------------------------------


def _digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _study_state(files: StudyFiles):
    study = load_existing_study(files.storage, files.study)
    trials = [(t.number, t.state, t.values, t.params, t.user_attrs, t.system_attrs) for t in study.trials]
    return trials, study.user_attrs, _digest_tree(files.runs)


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: a tokenizer alone does not fit."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_export_into_a_full_disk_fails_cleanly_and_touches_nothing(study: StudyFiles, full_disk, tmp_path):
    before = _study_state(study)
    out = full_disk / "bundle"
    run = roitune("export", "-c", study.config, "--out", out)
    assert run.exception is None, repr(run.exception)
    assert run.exit_code == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "No space left on device" in lines[0], lines
    assert "Traceback" not in run.stdout + run.stderr and run.stdout == ""
    assert not out.exists() and list(full_disk.iterdir()) == []  # no bundle, no bundle.partial
    assert _study_state(study) == before  # the study, the trial and its adapter are untouched

    # With room, the same export works: nothing was left in a bad state.
    good = roitune("export", "-c", study.config, "--out", tmp_path / "bundle")
    assert good.exit_code == 0, good.stderr
    assert (tmp_path / "bundle" / "adapter_model.safetensors").is_file()
    assert _study_state(study) == before
