"""The study storage: Optuna's RDB storage opened the same way by every command, and the
study's objective.

SQLite by default (readers wait on the writer's lock instead of failing); a PostgreSQL URL lets
several workers on several machines share one study, with heartbeats so a killed worker's trial
is failed and retried. What a trial's attributes hold is ``evals.record``'s business.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.cost import Economics, monthly_cost

if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///runs/roitune.db"
DEFAULT_STUDY = "roitune"
SQLITE_TIMEOUT_S = 60  # readers (dashboard, report) and the sweep share one file


def storage_for(url: str, *, heartbeat_interval: int | None = None):
    """An Optuna RDB storage; SQLite waits on locks instead of failing while another writes.

    With ``heartbeat_interval``, a trial whose worker stops beating (killed) is marked FAIL by
    the next worker and re-queued by the retry callback.
    """
    import optuna

    if url.startswith("postgresql://"):  # the driver we ship is psycopg 3, not SQLAlchemy's default
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    kwargs: dict[str, Any] = {"engine_kwargs": engine}
    if heartbeat_interval:
        with warnings.catch_warnings():  # heartbeats are marked experimental, and are what we need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            kwargs.update(
                heartbeat_interval=heartbeat_interval,
                grace_period=heartbeat_interval * 3,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
            )
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except sqlalchemy.exc.DBAPIError:
            # Workers started together race to create Optuna's tables (PostgreSQL enum types);
            # the loser finds them made on its next try.
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)


def directions(objective: str) -> list[str]:
    return ["minimize"] if objective == "roi" else ["maximize", "minimize"]


def open_study(url: str, name: str, objective: str, *, heartbeat_interval: int | None = None,
               sampler=None, pruner=None) -> optuna.Study:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=storage_for(url, heartbeat_interval=heartbeat_interval),
                               study_name=name, directions=directions(objective),
                               load_if_exists=True, sampler=sampler, pruner=pruner)


def load_existing_study(url: str, name: str) -> optuna.Study:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("sqlite:///"):  # a reader must not create a database (or its folders)
        if not Path(url.removeprefix("sqlite:///")).is_file():
            raise LookupError(f"no study database at {url.removeprefix('sqlite:///')}: "
                              "run `roitune baseline` or `roitune sweep` first")
    try:
        return optuna.load_study(study_name=name, storage=storage_for(url))
    except KeyError as err:
        raise LookupError(f"no study '{name}' in {redact_url(url)}: run `roitune baseline` or `roitune sweep` first") from err


def redact_url(url: str) -> str:
    """A storage URL without its password (postgresql://user:secret@host -> user:***@host; a
    libpq ``?password=`` query parameter too)."""
    import re

    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def objective_values(objective: str, economics: Economics, accuracy: float, macro_f1: float,
                     cost_per_item: float) -> list[float]:
    """roi: expected monthly dollars (serving + errors); pareto: (macro-F1, $/item)."""
    if objective == "roi":
        return [monthly_cost(economics.tickets_per_month, cost_per_item, 1 - accuracy, economics.cost_per_error)]
    return [macro_f1, cost_per_item]
