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

from evals.candidates import Candidate
from evals.cost import Economics
from evals.report import Report, build_report
from evals.results import candidates, compute_dollars, storage_for, sweep_trials, trial_attrs

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

REFRESH_S = 5


@dataclass(frozen=True)
class Source:
    """Where the study lives and the user's economics."""

    storage: str
    study: str
    economics: Economics


def parse_source(argv: Sequence[str]) -> Source:
    """``--config FILE`` and ``--set key=value`` as on the CLI; ``--storage``/``--study`` win over both.

    Raises ``optimizer.config.ConfigError`` (a ValueError) listing every config problem.
    """
    parser = argparse.ArgumentParser(prog="dashboards/app.py", add_help=False)
    parser.add_argument("--config")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--storage")
    parser.add_argument("--study")
    args, _ = parser.parse_known_args(list(argv))
    if args.config is None:  # no config: default economics, storage and study from the flags
        return Source(args.storage or "sqlite:///runs/roitune.db", args.study or "roitune", Economics())
    # optimizer.config is the config's schema only (torch-free): reading it here keeps one
    # precedence rule (defaults < YAML < --set) for the CLI and the dashboard.
    from optimizer.config import load_config

    cfg = load_config(args.config, args.overrides)
    return Source(args.storage or cfg.storage, args.study or cfg.study, cfg.economics)


@dataclass(frozen=True)
class Snapshot:
    """The study as read at ``loaded_at``: plain data, so ``st.cache_data`` can keep it."""

    study: str
    directions: list[str]
    candidates: list[Candidate]
    compute_dollars: float
    labels: list[str]
    test_texts: list[str]
    test_gold: list[str]
    trials: list[FrozenTrial]  # sweep trials only (baselines are candidates)
    attrs: dict[int, dict[str, Any]]  # every trial's user attributes, finalists' test results merged in
    loaded_at: datetime
    fingerprint: str  # see _fingerprint


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

    from evals.results import redact_url

    _check_exists(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=_storage(url))
    except KeyError as err:
        raise LookupError(f"no study '{name}' in {redact_url(url)}: run `roitune baseline` or `roitune sweep` first") from err
    trials = study.get_trials(deepcopy=False)
    attrs = {t.number: trial_attrs(study, t) for t in trials}
    user = study.user_attrs
    return Snapshot(
        study=name, directions=[d.name.lower() for d in study.directions], candidates=candidates(study),
        compute_dollars=compute_dollars(study), labels=list(user.get("labels", [])),
        test_texts=list(user.get("test_texts", [])), test_gold=list(user.get("test_gold", [])),
        trials=sweep_trials(study), attrs=attrs, loaded_at=datetime.now(),
        fingerprint=_fingerprint(trials, user),
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
    report = build_report(snap.candidates, snap.test_gold, source.economics,
                          compute_dollars=snap.compute_dollars, study=snap.study)
    return Context(source, snap, report)
