"""A real study for the report and dashboard tests, made once per test session.

The demo config, the classical and embedding baselines (``roitune baseline``) and a two-trial
sweep of the bundled SmolLM2 (``roitune sweep``), all through the CLI, so the tests read what a
user's study holds. To keep it to minutes on two CPU cores, the sweep trains on 80 rows and
everything is tested on a quarter of the demo test split (stratified). One FAIL trial is added
by hand (a sweep on the demo data does not fail), so the dashboard's failure list has something
to show. The study lives under pytest's session folder (shared by the workers of `pytest -n`);
the second test module to ask for it finds it there, waiting if another worker is building it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FAIL_REASON = "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


@dataclass(frozen=True)
class StudyFiles:
    """The config and the flags that point it at the test study."""

    config: Path
    test: Path
    db: Path
    runs: Path
    study: str = "t"

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def overrides(self) -> list[str]:
        return [f"storage={self.storage}", f"study={self.study}", f"runs_dir={self.runs}", f"data.test={self.test}"]

    def cli_flags(self) -> list[str]:
        """``-c CONFIG --set ...`` for ``roitune`` commands."""
        return ["-c", str(self.config), *(arg for flag in self.overrides for arg in ("--set", flag))]


def study_root(tmp_path_factory) -> Path:
    """Where the session's study lives: under ``pytest -n`` the workers' common folder, so the
    worker that comes second finds the first one's study instead of training it again."""
    import os

    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "report-study"


def build_study(root: Path) -> StudyFiles:
    from filelock import FileLock

    files = StudyFiles(config=root / "roitune.yaml", test=root / "test.jsonl", db=root / "s.db", runs=root / "runs")
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / "build.lock"):  # another worker may be building it right now
        if not (root / "done").is_file():
            _build(files)
            (root / "done").write_text("")
    return files


# Short generative LoRA trials on the real SmolLM2: what these tests read is the report, not how
# good fine-tuning gets (test_sweep.py covers every method and head).
LORA_ONLY = [arg for flag in ("search.base_models=[smollm2-135m-instruct]", "search.methods=[lora]",
                              "search.heads=[generative]", "search.epochs=[1]", "search.trial_timeout_s=null")
             for arg in ("--set", flag)]


def _build(files: StudyFiles) -> None:
    from optimizer.config import demo_config_text, demo_data_dir

    files.config.write_text(demo_config_text(), encoding="utf-8")
    _write_quarter(demo_data_dir() / "test.jsonl", files.test)
    _run(["baseline", *files.cli_flags(), "--only", "classical,embedding"])
    # One validation check per trial draws the intermediate curves; the median pruner may stop
    # the second trial, and the tests accept either outcome.
    _run(["sweep", *files.cli_flags(), "--trials", "2", "--set", "search.max_eval_items=40",
          "--set", "data.max_train_rows=80", "--set", "search.evals_per_epoch=1", "--set", "search.pruner=median",
          *LORA_ONLY])
    _add_failed_trial(files)


def _write_quarter(source: Path, target: Path) -> None:
    """A stratified quarter of a labelled file, as {"text", "label"} JSONL."""
    import json

    from evals.data import load_examples, stratified_split

    quarter = stratified_split(load_examples(source), [0.25], seed=0)[1]
    target.write_text("".join(json.dumps({"text": e.text, "label": e.label}) + "\n" for e in quarter),
                      encoding="utf-8")


def _run(args: list[str]) -> None:
    from typer.testing import CliRunner

    from optimizer.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"roitune {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"


def _add_failed_trial(files: StudyFiles) -> None:
    from evals.record import CandidateRecord, Kind, add_record
    from evals.storage import load_existing_study

    study = load_existing_study(files.storage, files.study)
    add_record(study, CandidateRecord(kind=Kind.trial, name="trial (hand-made): qlora r64", method="qlora",
                                      fail_reason=FAIL_REASON, compute_dollars=0.001), values=None)
