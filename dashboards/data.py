"""What the dashboard reads: the study storage and the config's economics, nothing else.

Both come from the app's command line (``roitune dashboard`` forwards its ``--config`` and
``--set`` flags), never from a query parameter or a widget, so nobody with the URL can make
the app open another file. The study is read through a short cache (5 s), so the pages stay
fast and still follow a sweep that is writing to the same storage.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import streamlit as st
from pydantic import BaseModel, ConfigDict, Field

from evals.configfile import read_config
from evals.cost import Economics
from evals.record import (CandidateRecord, LearningCurve, Measurement, StudyData, compute_dollars, learning_curves,
                          measurements, records, study_data, sweep_trials)
from evals.report import Report, build_report
from evals.storage import DEFAULT_STORAGE, DEFAULT_STUDY, redact_url, storage_for

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

REFRESH_S = 5


def heading(title: str, caption: str) -> None:
    """A page's title and the one-paragraph caption that says what it shows."""
    st.title(title)
    st.caption(caption)


class Source(BaseModel):
    """The parts of ``roitune.yaml`` the dashboard reads: where the study lives and the user's
    economics (the rest of the file is the CLI's, validated there before the app starts)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    storage: str = Field(DEFAULT_STORAGE, description="Optuna storage URL.")
    study: str = Field(DEFAULT_STUDY, description="Study name inside the storage.")
    economics: Economics = Field(default_factory=Economics, description="Volumes and prices.")


def parse_source(argv: Sequence[str]) -> Source:
    """``--config FILE`` and ``--set key=value`` as on the CLI; ``--storage``/``--study`` win over both.

    Raises ``evals.configfile.ConfigError`` (a ValueError) listing every config problem.
    """
    parser = argparse.ArgumentParser(prog="dashboards/app.py", add_help=False)
    parser.add_argument("--config")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--storage")
    parser.add_argument("--study")
    args, _ = parser.parse_known_args(list(argv))
    # One precedence rule (defaults < YAML < --set) for the CLI and the dashboard.
    source = read_config(args.config, args.overrides, Source)
    return source.model_copy(update={"storage": args.storage or source.storage, "study": args.study or source.study})


@dataclass(frozen=True)
class Snapshot:
    """The study as read at ``loaded_at``: plain data, so ``st.cache_data`` can keep it."""

    study: str
    directions: list[str]
    records: list[CandidateRecord]  # every candidate, any state, finalists' test results merged in
    measured: dict[tuple[int, str], Measurement]  # throughputs measured on the serving hardware
    compute_dollars: float
    data: StudyData
    trials: list[FrozenTrial]  # sweep trials only, as Optuna keeps them (params, intermediate values)
    loaded_at: datetime
    fingerprint: str  # see _fingerprint
    curves: tuple[LearningCurve, ...] = ()  # recorded by `roitune curve`, newest first

    def record(self, number: int) -> CandidateRecord:
        return next(r for r in self.records if r.number == number)


@st.cache_resource(show_spinner=False)
def _storage(url: str):
    # One engine (connection pool) per storage for the app's lifetime, not one per reload.
    return storage_for(url)


def _check_exists(url: str) -> None:
    # Opening a missing SQLite file would create an empty database: the viewer must not write.
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise LookupError(f"no study database at {url.removeprefix('sqlite:///')}: "
                          "run `roitune baseline` or `roitune sweep` first")


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def load_snapshot(url: str, name: str) -> Snapshot:
    """The study, re-read at most every few seconds. Raises LookupError when it does not exist."""
    import optuna

    _check_exists(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=_storage(url))
    except KeyError as err:
        raise LookupError(f"no study '{name}' in {redact_url(url)}: run `roitune baseline` or `roitune sweep` first") from err
    trials = study.get_trials(deepcopy=False)
    return Snapshot(
        study=name, directions=[d.name.lower() for d in study.directions], records=records(study),
        measured=measurements(study), compute_dollars=compute_dollars(study), data=study_data(study),
        trials=sweep_trials(study), loaded_at=datetime.now(), fingerprint=_fingerprint(trials, study.user_attrs),
        curves=tuple(learning_curves(study)),
    )


def _fingerprint(trials: Sequence[FrozenTrial], study_attrs: dict[str, Any]) -> str:
    """Changes whenever a trial starts, reports, finishes or is tested; equal fingerprints mean
    equal trial results, so derived figures (importances) can be cached by it."""
    state = [(t.number, t.state.name, t.values, sorted(t.params.items()), len(t.intermediate_values))
             for t in trials]
    return hashlib.sha1(repr((state, sorted(study_attrs))).encode()).hexdigest()


@dataclass(frozen=True)
class Context:
    """What every page gets: where the data came from, the study, and the report on it."""

    source: Source
    snapshot: Snapshot
    report: Report


def make_context(source: Source) -> Context:
    snap = load_snapshot(source.storage, source.study)
    report = build_report(snap.records, snap.data, source.economics, compute_dollars=snap.compute_dollars,
                          study=snap.study, measured=snap.measured, curves=snap.curves)
    return Context(source, snap, report)
