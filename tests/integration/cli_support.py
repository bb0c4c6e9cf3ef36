"""Running ``roitune`` in-process in tests, and what a user error must look like."""

from __future__ import annotations

from typer.testing import CliRunner

from optimizer.cli import app


def roitune(*args: str):
    return CliRunner().invoke(app, list(args))


def ok(*args: str):
    """The result of a command that must succeed (its output shown when it does not)."""
    result = roitune(*args)
    assert result.exit_code == 0, f"roitune {' '.join(args)}:\n{result.output}\n{result.exception!r}"
    return result


def assert_one_line_error(result, *needles: str) -> None:
    """Exit code 2, no traceback, and one ``error: ...`` line on stderr holding every needle."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line, line
