"""The ``roitune`` command line: one typer app, one function per command.

User errors (bad config, bad data, missing model) print one line per problem and exit with
code 2, never a traceback. Heavy libraries are imported inside the commands, so ``--help`` is
instant.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Measure whether fine-tuning a small model beats prompting and hosted APIs, in dollars.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect and validate data files.")
app.add_typer(data_app, name="data")
out = Console()
err = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="roitune.yaml (default: ./roitune.yaml if present).")
SetOpt = typer.Option(None, "--set", help="Override a config key: --set search.trials=8 (repeatable).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn known user-facing errors into one line each and exit code 2."""
    from evals.data import DataError
    from evals.hosted import HostedError
    from evals.models import ModelError
    from optimizer.config import ConfigError

    try:
        yield
    except (ConfigError, DataError, ModelError, HostedError, UserError, LookupError, ValueError, OSError) as problem:
        for line in str(problem).splitlines() or [type(problem).__name__]:
            sys.stderr.write(f"error: {line}\n")  # plain: rich would wrap a file:line message
        raise typer.Exit(2)


def _config(path: Optional[Path], overrides: Optional[list[str]]):
    from optimizer.config import load_config

    if path is None and Path("roitune.yaml").is_file():
        path = Path("roitune.yaml")
    if path is None:
        raise UserError("no config: pass --config FILE or write one with `roitune init`")
    return load_config(path, overrides or [])


def _print_json(value) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@app.command()
def init(out_path: Path = typer.Option(Path("roitune.yaml"), "--out", "-o", help="Where to write the config."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented config for the bundled demo data."""
    from optimizer.config import demo_config_text

    with user_errors():
        if out_path.exists() and not force:
            raise UserError(f"{out_path} exists (use --force to overwrite)")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".tmp")
        tmp.write_text(demo_config_text(), encoding="utf-8")
        tmp.replace(out_path)
    err.print(f"wrote {out_path}")


@data_app.command("check")
def data_check(
    path: Path = typer.Argument(..., help="A chat JSONL, text/label JSONL, CSV or preference-pairs file."),
    text_field: str = typer.Option("text", help="Text column / key."),
    label_field: str = typer.Option("label", help="Label column / key."),
    model: str = typer.Option("smollm2-135m-instruct", help="Tokenizer for the length percentiles."),
    json_out: bool = JsonOpt,
) -> None:
    """Validate a data file and print rows, labels, token lengths and duplicates."""
    from evals.datacheck import check_file

    with user_errors():
        report = check_file(path, text_field=text_field, label_field=label_field, model=model)
    if json_out:
        _print_json(report.as_dict())
    else:
        report.print(out)


@app.command()
def baseline(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
             only: Optional[str] = typer.Option(None, "--only", help="Comma-separated baselines to run."),
             json_out: bool = JsonOpt) -> None:
    """Run the baseline ladder and record each baseline in the study storage."""
    from optimizer.ladder import run_baselines

    with user_errors():
        cfg = _config(config, overrides)
        rows = run_baselines(cfg, only=[n.strip() for n in only.split(",")] if only else None, console=err)
    if json_out:
        _print_json(rows)
    else:
        from optimizer.tables import candidates_table

        out.print(candidates_table(rows, title="Baselines (test split)"))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
