"""Helpers shared by the reliability tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep_fixtures import TINY_LABELS

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


PLANTED_KEY = "sk-test-PLANTED-KEY-4242"
KEY_ENV = "ROITUNE_RELIABILITY_HOSTED_KEY"


class KeywordClassifier:
    """A trivial classifier for the tiny task: the label whose keyword the ticket contains."""

    model_id = "keyword-classifier"

    def __init__(self) -> None:
        self.labels = sorted(TINY_LABELS)

    def classify(self, messages: list[dict[str, Any]]):
        from optimizer.serve import Answer

        users = [m for m in messages if m.get("role") == "user"]
        text = str(users[-1]["content"]).lower() if users else ""
        label = next((label for label, words in sorted(TINY_LABELS.items()) if any(w in text for w in words)),
                     self.labels[0])
        return Answer(label, 0.9, len(text.split()) + 1, 1)


@dataclass
class CliRun:
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def roitune(*args: str) -> CliRun:
    """Run a roitune command in-process (typer's CliRunner), stdout and stderr kept apart."""
    from typer.testing import CliRunner

    from optimizer.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    exception = None if isinstance(result.exception, SystemExit) else result.exception
    return CliRun([str(a) for a in args], result.exit_code, result.stdout, result.stderr, exception)


@dataclass
class StudyFiles:
    """The shared study: where it lives and everything its commands printed."""

    folder: Path
    config: Path
    storage: str
    db: Path
    study: str
    runs: Path
    outputs: list[CliRun] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)  # what the fake endpoint received


def hosted_overrides(base_url: str) -> list[str]:
    return [f"--set=baselines.hosted.base_url={base_url}", "--set=baselines.hosted.model=keyword-classifier",
            f"--set=baselines.hosted.api_key_env={KEY_ENV}", "--set=baselines.hosted.input_price_per_mtok=3",
            "--set=baselines.hosted.output_price_per_mtok=15", "--set=baselines.hosted.max_dollars=0.5",
            "--set=baselines.hosted.concurrency=2"]
