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
app.add_typer(data_app, name="data", rich_help_panel="Start")
out = Console()
err = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="roitune.yaml (default: ./roitune.yaml if present).")
SetOpt = typer.Option(None, "--set", help="Override a config key: --set search.trials=8 (repeatable).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
EscalateOpt = typer.Option(None, "--escalate-to", help="A roitune.yaml: send items below the threshold to its "
                           "baselines.hosted endpoint (key from the environment, cached, within max_dollars).")
ThresholdOpt = typer.Option(None, "--threshold", help="Calibrated confidence at or above which the bundle answers "
                            "itself (default: the exported cascade's).")


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn known user-facing errors into one line each and exit code 2."""
    from evals.data import DataError
    from evals.hosted import HostedError
    from evals.models import ModelError
    from optimizer.config import ConfigError

    from sqlalchemy.exc import SQLAlchemyError

    from evals.storage import redact_url

    try:
        yield
    except (ConfigError, DataError, ModelError, HostedError, UserError, LookupError, ValueError, OSError) as problem:
        for line in str(problem).splitlines() or [type(problem).__name__]:
            sys.stderr.write(f"error: {line}\n")  # plain: rich would wrap a file:line message
        raise typer.Exit(2)
    except SQLAlchemyError as problem:  # the study storage: server down, wrong password, bad URL...
        lines = [line.strip() for line in str(problem).splitlines()
                 if line.strip() and not line.startswith("(Background on this error")]
        sys.stderr.write(f"error: cannot use the study storage: {redact_url(lines[0] if lines else type(problem).__name__)}\n")
        for line in lines[1:3]:
            sys.stderr.write(f"error: {redact_url(line)}\n")
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


def _study_report(cfg):
    from evals.report import study_report
    from evals.storage import load_existing_study

    return study_report(load_existing_study(cfg.storage, cfg.study), cfg.economics)


def _print_candidates(report, title: str, only: set[int] | None = None) -> None:
    """The candidates table and its notes (caps, estimated prices) for an 80-column terminal."""
    from optimizer.tables import candidates_table, notes

    out.print(candidates_table(report, title=title, only=only))
    for line in notes(report, only):
        out.print(line, markup=False, highlight=False)


@app.command(rich_help_panel="Start")
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


@app.command(rich_help_panel="Start")
def label(input_path: Path = typer.Argument(..., metavar="INPUT", help="Texts to label: JSONL (text field or chat) "
                                            "or CSV; a label already there is ignored."),
          out_path: Path = typer.Option(..., "--out", "-o", help="The labelled JSONL training file to write."),
          config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
          teacher: Optional[str] = typer.Option(None, "--teacher", help="Who labels: 'hosted' (default: "
                                                "baselines.hosted), an OpenAI-compatible URL, a roitune.yaml whose "
                                                "baselines.hosted labels, or a bundle folder (served locally for "
                                                "the run)."),
          max_dollars: Optional[float] = typer.Option(None, "--max-dollars", min=0,
                                                      help="Cap on new spend this run (default: the teacher's max_dollars)."),
          text_field: Optional[str] = typer.Option(None, "--text-field", help="Text column / key of INPUT "
                                                   "(default: data.text_field)."),
          json_out: bool = JsonOpt) -> None:
    """Label unlabelled texts with the current model (the teacher): a training file whose rows say who
    labelled them, when and at what cost. Resumable; a rerun pays nothing twice."""
    from optimizer.labeling import label_file, summary_lines

    with user_errors():
        cfg = _config(config, overrides)
        summary = label_file(cfg, input_path, out_path, teacher=teacher, max_dollars=max_dollars,
                             text_field=text_field, console=err)
    for line in summary_lines(summary):
        err.print(line, markup=False, highlight=False)
    if json_out:
        from dataclasses import asdict

        _print_json({**asdict(summary), "complete": summary.complete})


@app.command(rich_help_panel="Measure")
def baseline(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
             only: Optional[str] = typer.Option(None, "--only", help="Comma-separated baselines to run."),
             json_out: bool = JsonOpt) -> None:
    """Run the baseline ladder and record each baseline in the study storage."""
    from optimizer.ladder import run_baselines

    from evals.report import candidate_row

    with user_errors():
        cfg = _config(config, overrides)
        new = {r.number for r in run_baselines(cfg, only=[n.strip() for n in only.split(",")] if only else None,
                                               console=err)}
        report = _study_report(cfg)
    if json_out:
        _print_json([candidate_row(r) for r in report.ranked if r.record.number in new])
    else:
        _print_candidates(report, f"Baselines in study '{cfg.study}', cheapest first")


@app.command(rich_help_panel="Measure")
def sweep(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
          trials: Optional[int] = typer.Option(None, "--trials", help="Finished trials to reach (resumes)."),
          storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (sqlite:///... or postgresql://...)."),
          study: Optional[str] = typer.Option(None, "--study", help="Study name."),
          timeout: Optional[float] = typer.Option(None, "--timeout", help="Start no trial after this many seconds."),
          json_out: bool = JsonOpt) -> None:
    """Search LoRA / QLoRA / DPO settings with Optuna; every trial is scored and priced."""
    from evals.report import candidate_row
    from optimizer.sweep import run_sweep
    from optimizer.sweep_view import SweepView

    flags = list(overrides or [])
    flags += [f"{key}={value}" for key, value in (("search.trials", trials), ("search.timeout_s", timeout))
              if value is not None]
    with user_errors():
        cfg = _config(config, flags)
        cfg.storage, cfg.study = storage or cfg.storage, study or cfg.study  # verbatim, not YAML-parsed
        with SweepView(err, cfg.search.trials) as view:
            summary = run_sweep(cfg, console=err, on_step=view.on_step)
        report = _study_report(cfg)
    err.print(f"sweep stopped: {summary.stop_reason}; compute so far ${summary.compute_dollars:.4f}")
    if json_out:
        _print_json({"stop_reason": summary.stop_reason, "finished": summary.finished,
                     "compute_dollars": summary.compute_dollars,
                     "candidates": [candidate_row(r) for r in report.ranked]})
    else:
        _print_candidates(report, f"Candidates in study '{cfg.study}', cheapest first")


@app.command(rich_help_panel="Measure")
def cascade(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
            json_out: bool = JsonOpt) -> None:
    """Calibrate every local candidate and record the cascades worth it (local when confident, else a fallback)."""
    from evals.report import candidate_row
    from evals.storage import load_existing_study
    from optimizer.cascades import build_cascades

    with user_errors():
        cfg = _config(config, overrides)
        summary = build_cascades(load_existing_study(cfg.storage, cfg.study), cfg.economics,
                                 objective=cfg.search.objective, seed=cfg.seed, console=err)
        report = _study_report(cfg)
    err.print(f"calibrated {len(summary.calibrated)} candidate(s); recorded {len(summary.recorded)} new cascade(s)")
    new = set(summary.recorded)
    if json_out:
        _print_json([candidate_row(r) for r in report.ranked if r.record.kind.value == "cascade"])
    else:
        _print_candidates(report, f"Cascades in study '{cfg.study}', cheapest first",
                          only={r.record.number for r in report.ranked if r.record.kind.value == "cascade"} | new)


@app.command(rich_help_panel="Decide")
def report(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt, json_out: bool = JsonOpt,
           html_path: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML report here.")) -> None:
    """Rank every candidate by monthly dollars against the current solution and say what to do."""
    from evals.html_report import render_html
    from evals.report import curve_lines, report_json

    with user_errors():
        cfg = _config(config, overrides)
        result = _study_report(cfg)
        if html_path is not None:
            html_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = html_path.with_name(html_path.name + ".tmp")
            tmp.write_text(render_html(result), encoding="utf-8")
            tmp.replace(html_path)
            err.print(f"wrote {html_path}")
    if json_out:
        _print_json(report_json(result))
        return
    _print_candidates(result, f"Candidates in study '{cfg.study}', cheapest first")
    out.print()
    out.print(result.recommendation.sentence, markup=False, highlight=False)
    for recorded in result.curves:
        out.print()
        for line in curve_lines(recorded, result.economics):
            out.print(line, markup=False, highlight=False)


@app.command(rich_help_panel="Decide")
def curve(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
          candidate: str = typer.Option("best", "--candidate", help="'best' (the most accurate sweep trial on "
                                        "validation, else the best of classical/embedding), a trial number or a name."),
          fractions: str = typer.Option("0.125,0.25,0.5,1", "--fractions", help="Shares of the training rows to "
                                        "retrain on, each in (0, 1]; all rows (1) are always measured."),
          more: Optional[int] = typer.Option(None, "--more", help="Labelled rows to price (default: as many as today)."),
          json_out: bool = JsonOpt) -> None:
    """What more labelled rows are worth: retrain on growing fractions, fit a learning curve, record it."""
    from evals.report import curve_json, curve_lines
    from optimizer.curves import measure_curve

    with user_errors():
        cfg = _config(config, overrides)
        shares = []
        for part in fractions.split(","):
            try:
                shares.append(float(part))
            except ValueError:
                raise UserError(f"--fractions: {part.strip()!r} is not a number") from None
        found = measure_curve(cfg, candidate=candidate, fractions=shares, more_rows=more, console=err)
    if json_out:
        _print_json(curve_json(found, cfg.economics))
        return
    for line in curve_lines(found, cfg.economics):
        out.print(line, markup=False, highlight=False)
    err.print(f"recorded in study '{cfg.study}'", markup=False, highlight=False)


@app.command(rich_help_panel="Decide")
def dashboard(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
              host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 opens it to the network."),
              port: int = typer.Option(8501, "--port", help="Port to listen on.")) -> None:
    """Open the Streamlit dashboard on the study (it reads the storage and never trains)."""
    import signal
    import subprocess

    import dashboards
    from evals.storage import redact_url

    with user_errors():
        cfg = _config(config, overrides)  # a bad config fails here, before Streamlit starts
    # The app resolves the same config and --set flags itself, so the storage URL (and any
    # password in it) is not added to the process list by us.
    config_path = (config or Path("roitune.yaml")).resolve()
    forwarded = ["--config", str(config_path), *(f"--set={flag}" for flag in overrides or [])]
    command = [sys.executable, "-m", "streamlit", "run", str(Path(dashboards.__file__).with_name("app.py")),
               "--server.address", host, "--server.port", str(port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--", *forwarded]
    err.print(f"dashboard of study '{cfg.study}' in {redact_url(cfg.storage)}: http://{host}:{port}  (Ctrl+C stops it)",
              markup=False, highlight=False)
    with subprocess.Popen(command) as process:
        # `kill <roitune>` must not leave Streamlit serving on the port without us.
        previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
        try:
            code = process.wait()
        except KeyboardInterrupt:  # the terminal interrupted Streamlit too: let it shut down
            code = process.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)


@app.command(rich_help_panel="Ship")
def export(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
           trial: str = typer.Option("best", "--trial", help="Trial number, or 'best' (by the study's objective; "
                                     "pareto: the front member with the lowest monthly cost)."),
           out_dir: Path = typer.Option(..., "--out", "-o", help="Bundle folder to write."),
           merge: bool = typer.Option(False, "--merge", help="Also write merged/: a standalone merged model."),
           force: bool = typer.Option(False, "--force", help="Replace an existing --out folder.")) -> None:
    """Export a trial's adapter as a self-contained bundle (adapter, tokenizer, labels, model card)."""
    from optimizer.export import export_bundle

    with user_errors():
        cfg = _config(config, overrides)
        result = export_bundle(cfg, trial, out_dir, merge=merge, force=force, console=err)
    err.print(f"exported trial {result.trial} to {result.path}", markup=False, highlight=False)
    out.print(result.serve_hint, markup=False, highlight=False, soft_wrap=True)


@app.command(rich_help_panel="Ship")
def meter(bundle: Path = typer.Argument(..., help="A folder written by `roitune export`."),
          config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = SetOpt,
          trial: Optional[int] = typer.Option(None, "--trial", help="The study trial it came from "
                                              "(default: the bundle's source.json)."),
          hardware: Optional[str] = typer.Option(None, "--hardware", help="This machine's row of the price table "
                                                 "(default: detected, e.g. nvidia-l4, cpu-2core)."),
          batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                                   help="Serving batch size (default: search.serving_batch_size)."),
          json_out: bool = JsonOpt) -> None:
    """Time a bundle on this machine and record it: the report then prices it here as measured."""
    from evals.formatting import money
    from optimizer.metering import meter_bundle

    with user_errors():
        cfg = _config(config, overrides)
        done = meter_bundle(cfg, bundle, trial=trial, hardware=hardware, batch_size=batch_size, console=err)
    m = done.measurement
    if json_out:
        from dataclasses import asdict

        _print_json({**asdict(m), "cost_per_item": done.cost_per_item})
        return
    out.print(f"trial {m.number} on {m.hardware}: {m.items_per_second:,.1f} items/s "
              f"({m.meter.timed_items} items timed at batch {m.meter.batch_size}; {m.measured_on}), "
              f"{money(done.cost_per_item)} an item; recorded in study '{cfg.study}'", markup=False, highlight=False)


@app.command(rich_help_panel="Ship")
def predict(bundle: Path = typer.Argument(..., help="A folder written by `roitune export`."),
            input_path: Path = typer.Argument(..., metavar="INPUT", help="Chat JSONL, text JSONL or CSV; labels optional."),
            out_path: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the JSON lines here (default: stdout)."),
            batch_size: int = typer.Option(16, "--batch-size", min=1, help="Items per forward pass."),
            text_field: str = typer.Option("text", help="Text column / key."),
            label_field: str = typer.Option("label", help="Label column / key (optional in the file)."),
            escalate_to: Optional[Path] = EscalateOpt, threshold: Optional[float] = ThresholdOpt) -> None:
    """Classify a file with an exported bundle: one {"id", "label", "probability"} line per row
    (with --escalate-to, also who answered and why)."""
    from optimizer.predict import open_bundle, predict_file

    with user_errors():
        found = open_bundle(bundle)
        escalate = _escalation(found, escalate_to, threshold)
        rows, accuracy = predict_file(found, input_path, out_path, batch_size=batch_size, console=err,
                                      text_field=text_field, label_field=label_field, escalate=escalate)
    if out_path is not None:
        err.print(f"wrote {rows} predictions to {out_path}", markup=False, highlight=False)
    if accuracy is not None:
        err.print(f"accuracy {100 * accuracy.value:.1f}% ({accuracy.correct} of {accuracy.labelled} labelled rows)")


@app.command(rich_help_panel="Ship")
def serve(bundle: Path = typer.Argument(..., help="A folder written by `roitune export`."),
          host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 0.0.0.0 opens it to the network."),
          port: int = typer.Option(8000, "--port", help="Port to listen on."),
          read_timeout: float = typer.Option(30.0, "--read-timeout", min=0.1,
                                             help="Seconds a client may take to send a request; "
                                                  "idle kept-alive connections close after it."),
          escalate_to: Optional[Path] = EscalateOpt, threshold: Optional[float] = ThresholdOpt) -> None:
    """Serve a bundle as an OpenAI-compatible chat-completions endpoint (the reply is the label;
    with --escalate-to, its "roitune" field says who answered)."""
    from optimizer.predict import BundleClassifier, CascadeClassifier, load_bundle_predictor, open_bundle
    from optimizer.serve import serve_forever

    with user_errors():
        found = open_bundle(bundle)
        escalate = _escalation(found, escalate_to, threshold)
        classifier = BundleClassifier(found, load_bundle_predictor(found))
        if escalate is not None:
            classifier = CascadeClassifier(classifier, escalate[0])
            e = escalate[0]
            err.print(f"escalating below confidence {e.threshold:g} to {e.spec.model} at {e.spec.base_url} "
                      f"(at most ${e.spec.max_dollars:g})", markup=False, highlight=False)
        serve_forever(classifier, host, port, read_timeout_s=read_timeout, on_ready=lambda server: err.print(
            f"serving {classifier.model_id} at {server.base_url}  (Ctrl+C stops it)", markup=False, highlight=False))


def _escalation(bundle, config: Optional[Path], threshold: Optional[float]):
    """The escalation ``--escalate-to`` asks for (None without it); a bad threshold, a bundle without
    calibration or a config without an endpoint is a one-line error before any model loads."""
    from optimizer.escalation import check_threshold, escalation_for

    if threshold is not None:
        check_threshold(threshold)
    if config is None:
        if threshold is not None:
            raise UserError("--threshold needs --escalate-to (the endpoint that answers below it)")
        return None
    return escalation_for(config, [], labels=bundle.spec.labels, threshold=threshold,
                          bundle_threshold=bundle.threshold, calibration=bundle.calibration)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
