"""The study storage schema: baselines and trials as Optuna trials, read back as candidates.

One Optuna study holds the whole comparison. Baselines are completed trials with no
parameters and ``kind = "baseline"``; sweep trials carry their sampled parameters. Both keep
their measurements in user attributes with the same keys, so ``optuna-dashboard`` can open the
study too and the report reads every candidate the same way:

- ``kind``, ``name``, ``method``;
- ``validation_scores`` / ``test_scores``: accuracy, macro-F1, their 95% intervals, n, per-class
  F1 and the confusion matrix (``evals.metrics.Scores.to_dict``);
- ``test_predictions``: label indices on the test items (-1 = invalid), ``test_items`` the test
  item indices they refer to when only a subset was scored; a sweep trial is scored on test
  only as a finalist, after it finished, so its test results sit in the study's attribute
  ``trial_test:<number>`` (see ``trial_attrs``);
- ``cost_per_item``, ``cost_provenance``, ``cost_source``, ``items_per_second``,
  ``tokens_per_item``; for trials also ``train_seconds``, ``train_dollars``,
  ``peak_memory_mb``, ``adapter_path``, ``fail_reason``.

The study's own user attributes hold the label set and the test split (texts and gold labels),
so the dashboard needs nothing but the storage URL.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from evals.candidates import Candidate
from evals.cost import Economics, monthly_cost

if TYPE_CHECKING:
    import optuna

    from evals.baselines import BaselineResult
    from evals.data import Example
    from evals.metrics import Scores

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
        from pathlib import Path

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


def remember_split(study: optuna.Study, labels: Sequence[str], test: Sequence[Example]) -> None:
    """Store the label set and the test split once; refuse a study made for other data."""
    stored = study.user_attrs.get("labels")
    if stored is not None and list(stored) != list(labels):
        raise ValueError(f"study '{study.study_name}' was made for other labels ({len(stored)}); "
                         "use another --study")
    if stored is None:
        study.set_user_attr("labels", list(labels))
        study.set_user_attr("test_texts", [e.text for e in test])
        study.set_user_attr("test_gold", [e.label for e in test])


def prediction_indices(predictions: Sequence[str | None], labels: Sequence[str]) -> list[int]:
    index = {label: i for i, label in enumerate(labels)}
    return [index.get(p, -1) if p is not None else -1 for p in predictions]


def scores_attrs(scores: Scores) -> dict[str, Any]:
    data = scores.to_dict()
    data["per_class_f1"] = {label: v["f1"] for label, v in data.pop("per_class").items()}
    data.pop("labels")
    return data


def record_baseline(study: optuna.Study, result: BaselineResult, economics: Economics, objective: str,
                    test: Sequence[Example]) -> int:
    """Add a baseline as a completed trial; returns its trial number."""
    import optuna

    labels = study.user_attrs["labels"]
    attrs: dict[str, Any] = {
        "kind": "baseline", "name": f"baseline:{result.name}", "method": f"baseline:{result.name}",
        "cost_per_item": result.cost_per_item.value,
        "cost_provenance": result.cost_per_item.provenance.value,
        "cost_source": result.cost_per_item.source,
        "items_per_second": result.items_per_second,
        "tokens_per_item": result.tokens_per_item,
        "details": result.details,
    }
    state = optuna.trial.TrialState.COMPLETE
    values = None
    if result.scores is not None:
        attrs["test_scores"] = scores_attrs(result.scores)
        attrs["test_predictions"] = prediction_indices(result.predictions, labels)
        if len(result.items) != len(test):
            position = {id(e): i for i, e in enumerate(test)}
            attrs["test_items"] = [position[id(e)] for e in result.items]
        values = objective_values(objective, economics, result.scores.accuracy, result.scores.macro_f1,
                                  result.cost_per_item.value)
    else:  # an estimate without accuracy cannot be ranked by the objective
        state = optuna.trial.TrialState.FAIL
        attrs["fail_reason"] = "estimate only: accuracy unknown"
    study.add_trial(optuna.trial.create_trial(state=state, values=values, user_attrs=attrs))
    return study.trials[-1].number


def record_test_scores(study: optuna.Study, number: int, scores: Scores, predictions: Sequence[str | None]) -> None:
    """Test results of a finished trial (a finalist). Optuna refuses to change a finished
    trial, so they live in the study's user attributes under ``trial_test:<number>``."""
    study.set_user_attr(f"trial_test:{number}", {
        "test_scores": scores_attrs(scores),
        "test_predictions": prediction_indices(predictions, study.user_attrs["labels"]),
    })


def trial_attrs(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial's user attributes with its test results merged in, when it was tested."""
    return {**trial.user_attrs, **study.user_attrs.get(f"trial_test:{trial.number}", {})}


def _scores_of(attrs: dict[str, Any]) -> tuple[str, dict] | tuple[None, None]:
    for split in ("test", "validation"):
        if f"{split}_scores" in attrs:
            return split, attrs[f"{split}_scores"]
    return None, None


def candidates(study: optuna.Study) -> list[Candidate]:
    """Every finished baseline and trial with its quality and cost (test split when scored)."""
    import optuna

    labels = study.user_attrs.get("labels", [])
    found = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial_attrs(study, trial)
        split, scores = _scores_of(attrs)
        if scores is None or "cost_per_item" not in attrs:
            continue
        predictions = None
        if split == "test" and "test_predictions" in attrs and "test_items" not in attrs:
            predictions = [labels[i] if i >= 0 else None for i in attrs["test_predictions"]]
        kind = attrs.get("kind", "trial")
        found.append(Candidate(
            name=attrs.get("name", f"trial {trial.number}"), kind=kind, accuracy=scores["accuracy"],
            cost_per_item=attrs["cost_per_item"], cost_provenance=attrs.get("cost_provenance", ""),
            split=split, trial_number=trial.number, macro_f1=scores["macro_f1"],
            accuracy_ci=tuple(scores["accuracy_ci"]), macro_f1_ci=tuple(scores["macro_f1_ci"]),
            items_per_second=attrs.get("items_per_second"), predictions=predictions,
            params=dict(trial.params),
            extra={"n": scores.get("n"), "cost_source": attrs.get("cost_source", ""),
                   "tokens_per_item": attrs.get("tokens_per_item"), "adapter_path": attrs.get("adapter_path")},
        ))
    return found


def compute_dollars(study: optuna.Study) -> float:
    """Training dollars of every sweep trial so far: completed, pruned and failed alike."""
    return sum(t.user_attrs.get("train_dollars", 0.0) or 0.0 for t in study.get_trials(deepcopy=False))


def sweep_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("kind", "trial") == "trial"]
