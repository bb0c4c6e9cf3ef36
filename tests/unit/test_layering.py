"""The import contract in pyproject.toml (`lint-imports`, run by `make test`): the layering holds,
and a wrong arrow breaks the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's packages, not the installed ones
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in ("optimizer", "evals", "dashboards"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_layering_holds(tree: Path):
    done = lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize("module, line, contract", [
    ("evals/wrong_arrow.py", "from optimizer.sweep import run_sweep\n", "evals imports neither"),
    ("dashboards/wrong_arrow.py", "import optimizer.config\n", "the dashboard never imports"),
    ("dashboards/wrong_arrow.py", "import torch\n", "the dashboard never imports"),
    ("optimizer/wrong_arrow.py", "from optimizer.cli import app\n", "only the entry point imports the CLI"),
])
def test_a_wrong_arrow_breaks_the_contract(tree: Path, module: str, line: str, contract: str):
    (tree / module).write_text(line, encoding="utf-8")

    done = lint(tree)

    assert done.returncode != 0
    assert f"{contract}" in done.stdout and "BROKEN" in done.stdout
