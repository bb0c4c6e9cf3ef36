"""The study record: one frozen, typed record per candidate, and the only code that reads or
writes it in an Optuna study.

Every candidate (a baseline, a sweep trial, a cascade) is one Optuna trial. Its user
attributes are the fields of ``CandidateRecord``, one attribute per field (so
``optuna-dashboard`` shows them as they are), plus ``schema`` = ``SCHEMA_VERSION``. What a
candidate *is* lives in fields (``kind``, ``method``, ``hosted``), never in its name.

A sweep trial is scored on test only after it was chosen, when Optuna no longer lets its
attributes change; that result is kept in the study's attribute ``trial_test:<number>`` and
merged back by ``records``. A candidate's calibration, fitted after it finished, is kept the same
way in ``calibration:<number>``. The study's own attributes hold the label set and the gold labels
(and texts) of the validation and test splits, so paired comparisons and the dashboard need
nothing but the storage.

Studies written before the record existed (schema 1: ``validation_scores``, ``test_scores``,
``test_predictions`` ... as loose keys) are read through ``_from_schema_1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    import optuna

    from evals.data import Example
    from evals.metrics import Scores

SCHEMA_VERSION = 2
TEST_KEY = "trial_test:{number}"
CALIBRATION_KEY = "calibration:{number}"
TOP_K = 8  # label probabilities kept per item: enough to calibrate, small enough to store


class Kind(str, Enum):
    """What a candidate is."""

    baseline = "baseline"  # a model or prompt that needs no search: classical, zero-shot, hosted...
    trial = "trial"  # one trained adapter (or model) of the sweep
    cascade = "cascade"  # a local candidate that escalates what it is unsure of to a fallback


@dataclass(frozen=True)
class SplitResult:
    """Quality on one split: the scores and the prediction of every scored item.

    ``predictions`` are label indices (-1: an invalid answer). ``items`` are the indices of the
    scored items within the split when only a subset was scored (a capped LLM baseline, a
    validation check on ``max_eval_items``); ``None`` means every item, in order.

    A candidate that gives label probabilities (every local one; not a hosted API) keeps the
    ``TOP_K`` most probable labels of each item (``top_labels``) with their probabilities
    (``top_probs``): what calibration and cascades need, at a size a study can hold.
    """

    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    confusion_columns: list[str]
    predictions: list[int]
    items: list[int] | None = None
    top_labels: list[list[int]] | None = None
    top_probs: list[list[float]] | None = None

    @classmethod
    def of(cls, scores: Scores, predictions: Sequence[str | None], labels: Sequence[str],
           items: Sequence[int] | None = None,
           distributions: Sequence[Mapping[str, float]] | None = None) -> SplitResult:
        index = {label: i for i, label in enumerate(labels)}
        top = [sorted(d.items(), key=lambda kv: -kv[1])[:TOP_K] for d in distributions or ()]
        return cls(
            n=scores.n, accuracy=scores.accuracy, accuracy_ci=tuple(scores.accuracy_ci),
            macro_f1=scores.macro_f1, macro_f1_ci=tuple(scores.macro_f1_ci),
            per_class_f1={label: v["f1"] for label, v in scores.per_class.items()},
            confusion=scores.confusion, confusion_columns=scores.confusion_columns,
            predictions=[index.get(p, -1) if p is not None else -1 for p in predictions],
            items=None if items is None else list(items),
            top_labels=[[index[label] for label, _ in row] for row in top] if distributions is not None else None,
            top_probs=[[round(p, 6) for _, p in row] for row in top] if distributions is not None else None,
        )

    def item_indices(self) -> Sequence[int]:
        return range(len(self.predictions)) if self.items is None else self.items

    def predicted_labels(self, labels: Sequence[str]) -> dict[int, str | None]:
        """Item index -> predicted label (None: invalid answer)."""
        return {item: labels[p] if p >= 0 else None for item, p in zip(self.item_indices(), self.predictions)}

    @property
    def correct(self) -> int:
        return round(self.accuracy * self.n)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitResult:
        return cls(**{**_known(cls, data), "accuracy_ci": tuple(data["accuracy_ci"]),
                      "macro_f1_ci": tuple(data["macro_f1_ci"])})


@dataclass(frozen=True)
class Cap:
    """A limit that made a candidate use less than all of something (train rows, scored items)."""

    what: str  # "train rows", "validation items", "test items"
    used: int
    available: int

    def text(self) -> str:
        return f"{self.what} {self.used:,} of {self.available:,}"


@dataclass(frozen=True)
class MeterStats:
    """How a throughput was measured: enough timed work for a stable figure, and its spread."""

    timed_items: int
    timed_batches: int
    seconds: float
    batch_size: int
    slowest: float  # items/s of the slowest and fastest timed batch
    fastest: float


@dataclass(frozen=True)
class TrainingSummary:
    """What training did, for the trial explorer and the model card."""

    steps: int
    tokens: int
    seconds: float
    tokens_per_second: float
    loss_first: float
    loss_last: float
    train_rows: int
    precision: str = "float32"  # bfloat16 when trained under autocast (CUDA, or a CPU with bf16 units)
    checks: tuple[float, ...] = ()  # validation accuracy at each check
    best_check: int | None = None  # the check whose weights were kept (1-based)
    stop_reason: str = ""  # epochs done, early stop, time or step budget
    planned_steps: int = 0  # the steps the learning-rate schedule spanned (fitted to a time budget)


@dataclass(frozen=True)
class Calibration:
    """How a candidate's confidence (its top label's probability) is made to mean what it says.

    Fitted on the validation split (``fitted_on`` items): the kept top probabilities are scaled by
    ``temperature`` (p ** (1 / T), renormalised over ``n_labels``; see ``evals.calibration``).
    ``ece_validation`` and ``ece_test`` are the expected calibration error (before, after); test
    is None when the candidate was not scored there.
    """

    method: str  # "temperature"
    n_labels: int
    fitted_on: int
    ece_validation: tuple[float, float]
    ece_test: tuple[float, float] | None = None
    temperature: float = 1.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(**{**_known(cls, data), "ece_validation": tuple(data["ece_validation"]),
                      "ece_test": tuple(data["ece_test"]) if data.get("ece_test") else None})


@dataclass(frozen=True)
class CascadeParts:
    """What a cascade is made of: a local candidate answers when its calibrated confidence is at
    least ``threshold``, the fallback answers the rest.

    ``fallback_number`` is None when the fallback is the current solution without a live
    measurement: its accuracy on escalated items is then ``assumed_fallback_accuracy`` (the
    entered error rate), an assumption every output names. ``coverage`` is the share of items
    answered locally (validation, where the threshold was chosen; test, reported).
    """

    local: str
    local_number: int
    fallback: str
    fallback_number: int | None
    threshold: float
    coverage: float
    test_coverage: float | None = None
    assumed_fallback_accuracy: float | None = None

    @property
    def assumed(self) -> bool:
        return self.fallback_number is None


@dataclass(frozen=True)
class CandidateRecord:
    """Everything the study knows about one candidate.

    ``cost_per_item`` is priced from ``items_per_second`` measured on ``measured_on``
    (``measured_hardware`` is that machine's key in the price table); a hosted API is priced
    from its usage instead (``hosted``). ``compute_dollars`` is what producing the candidate
    cost (a trial's whole wall time, failed and pruned ones included).

    ``number`` and ``state`` come from the storage when a record is read; they are not
    written as attributes.
    """

    kind: Kind
    name: str
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    validation: SplitResult | None = None
    test: SplitResult | None = None
    cost_per_item: float | None = None
    cost_provenance: str = ""
    cost_source: str = ""
    items_per_second: float | None = None
    tokens_per_item: float | None = None
    measured_on: str = ""
    measured_hardware: str | None = None
    meter: MeterStats | None = None
    hosted: bool = False
    training: TrainingSummary | None = None
    compute_seconds: float = 0.0
    compute_dollars: float = 0.0
    caps: tuple[Cap, ...] = ()
    adapter_path: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    fail_reason: str | None = None
    calibration: Calibration | None = None
    cascade: CascadeParts | None = None
    number: int | None = None
    state: str = "COMPLETE"

    def result(self, split: str) -> SplitResult | None:
        return self.validation if split == "validation" else self.test

    @property
    def label(self) -> str:
        """How people see it: the name, with the trial number where the name lacks it."""
        if self.kind == Kind.trial and self.number is not None and f"trial {self.number}" not in self.name:
            return f"{self.name} (trial {self.number})"
        return self.name

    def to_attrs(self) -> dict[str, Any]:
        """The Optuna user attributes of this record (JSON values, one per field)."""
        attrs: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for f in fields(self):
            if f.name in _NOT_STORED:
                continue
            value = getattr(self, f.name)
            attrs[f.name] = value.value if isinstance(value, Kind) else _jsonable(value)
        return attrs

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], *, number: int | None = None, state: str = "COMPLETE") -> CandidateRecord:
        if attrs.get("schema") is None:
            return _from_schema_1(attrs, number=number, state=state)
        if attrs["schema"] > SCHEMA_VERSION:
            raise ValueError(f"trial {number} was written by a newer roitune (record schema {attrs['schema']}, "
                             f"this one reads up to {SCHEMA_VERSION}): upgrade roitune")
        data = _known(cls, attrs)
        return cls(**{
            **data,
            "kind": Kind(data["kind"]),
            "validation": _split(data.get("validation")),
            "test": _split(data.get("test")),
            "meter": MeterStats(**data["meter"]) if data.get("meter") else None,
            "training": TrainingSummary(**_known(TrainingSummary, data["training"])) if data.get("training") else None,
            "caps": tuple(Cap(**c) for c in data.get("caps") or ()),
            "calibration": Calibration.from_dict(data["calibration"]) if data.get("calibration") else None,
            "cascade": CascadeParts(**data["cascade"]) if data.get("cascade") else None,
            "number": number,
            "state": state,
        })


_NOT_STORED = {"number", "state"}


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _split(data: dict[str, Any] | None) -> SplitResult | None:
    return None if data is None else SplitResult.from_dict(data)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _from_schema_1(attrs: dict[str, Any], *, number: int | None, state: str) -> CandidateRecord:
    """A trial written before the record existed: loose keys, kind told by a name prefix."""
    name = attrs.get("name", f"trial {number}")

    def split(prefix: str) -> SplitResult | None:
        scores = attrs.get(f"{prefix}_scores")
        if scores is None:
            return None
        return SplitResult(
            n=scores["n"], accuracy=scores["accuracy"], accuracy_ci=tuple(scores["accuracy_ci"]),
            macro_f1=scores["macro_f1"], macro_f1_ci=tuple(scores["macro_f1_ci"]),
            per_class_f1=scores.get("per_class_f1", {}), confusion=scores.get("confusion", []),
            confusion_columns=scores.get("confusion_columns", []),
            predictions=attrs.get(f"{prefix}_predictions", []), items=attrs.get(f"{prefix}_items"))

    kind = Kind.baseline if attrs.get("kind") == "baseline" else Kind.trial
    method = attrs.get("method", "")
    return CandidateRecord(
        kind=kind, name=name, method=method.removeprefix("baseline:"), settings=attrs.get("settings", {}),
        validation=split("validation"), test=split("test"), cost_per_item=attrs.get("cost_per_item"),
        cost_provenance=attrs.get("cost_provenance", ""), cost_source=attrs.get("cost_source", ""),
        items_per_second=attrs.get("items_per_second"), tokens_per_item=attrs.get("tokens_per_item"),
        hosted=name.startswith("baseline:hosted"), compute_seconds=attrs.get("train_seconds", 0.0),
        compute_dollars=attrs.get("train_dollars", 0.0), adapter_path=attrs.get("adapter_path"),
        details=attrs.get("details", {}), fail_reason=attrs.get("fail_reason"), number=number, state=state)


# --- the study ----------------------------------------------------------------------------


def write_trial_record(trial: optuna.Trial, record: CandidateRecord) -> None:
    """Set a running trial's attributes to ``record`` (may be called again as it progresses).

    Each attribute is its own storage write, and readers (report, dashboard) read running trials:
    ``schema`` goes last, so a trial whose first record is half-written reads as a schema-1 trial
    (every field optional) rather than as a broken record.
    """
    attrs = record.to_attrs()
    schema = attrs.pop("schema")
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("schema", schema)


def add_record(study: optuna.Study, record: CandidateRecord, values: Sequence[float] | None) -> int:
    """Add a finished candidate (a baseline, a cascade) as a trial; returns its number.

    Without ``values`` (no quality to rank it by) it is stored as FAIL with its reason."""
    import optuna

    state = optuna.trial.TrialState.COMPLETE if values is not None else optuna.trial.TrialState.FAIL
    study.add_trial(optuna.trial.create_trial(state=state, values=values, user_attrs=record.to_attrs()))
    return study.trials[-1].number


def add_test_result(study: optuna.Study, number: int, result: SplitResult) -> None:
    """The test result of a finished trial, scored once after it was chosen."""
    study.set_user_attr(TEST_KEY.format(number=number), _jsonable(result))


def add_calibration(study: optuna.Study, number: int, calibration: Calibration) -> None:
    """The calibration of a finished candidate, fitted on its validation result."""
    study.set_user_attr(CALIBRATION_KEY.format(number=number), _jsonable(calibration))


def read_record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> CandidateRecord:
    record = CandidateRecord.from_attrs(trial.user_attrs, number=trial.number, state=trial.state.name)
    calibrated = study.user_attrs.get(CALIBRATION_KEY.format(number=trial.number))
    if calibrated is not None:
        record = replace(record, calibration=Calibration.from_dict(calibrated))
    tested = study.user_attrs.get(TEST_KEY.format(number=trial.number))
    if tested is None:
        return record
    if "test_scores" in tested:  # schema 1 kept scores and predictions apart
        tested = {**tested["test_scores"], "predictions": tested.get("test_predictions", [])}
    return replace(record, test=SplitResult.from_dict(tested))


def records(study: optuna.Study, *, states: Sequence[str] | None = None) -> list[CandidateRecord]:
    """Every candidate of the study (or those in ``states``: COMPLETE, FAIL...), in trial order."""
    return [read_record(study, t) for t in study.get_trials(deepcopy=False)
            if states is None or t.state.name in states]


def sweep_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The sweep's trials in any state (a trial that has not written its record yet counts)."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("kind", Kind.trial.value) == Kind.trial.value]


def compute_dollars(study: optuna.Study) -> float:
    """What every candidate cost to produce so far: completed, pruned and failed alike."""
    return sum(t.user_attrs.get("compute_dollars", t.user_attrs.get("train_dollars", 0.0)) or 0.0
               for t in study.get_trials(deepcopy=False))


# --- the data the study was made for ----------------------------------------------------------


@dataclass(frozen=True)
class StudyData:
    """The label set and the held-out splits' gold labels and texts, as the study stores them."""

    labels: list[str]
    validation_gold: list[str]
    validation_texts: list[str]
    test_gold: list[str]
    test_texts: list[str]
    # split -> who labelled its rows, when a model did (``roitune label``): its accuracy there is
    # agreement with that model, not accuracy. Absent: labelled by people.
    teachers: dict[str, str] = field(default_factory=dict)

    def teacher(self, split: str) -> str | None:
        return self.teachers.get(split)

    def gold(self, split: str) -> list[str]:
        return self.validation_gold if split == "validation" else self.test_gold

    def texts(self, split: str) -> list[str]:
        return self.validation_texts if split == "validation" else self.test_texts


def remember_data(study: optuna.Study, labels: Sequence[str], validation: Sequence[Example],
                  test: Sequence[Example]) -> None:
    """Store the label set and the held-out splits once; refuse a study made for other data."""
    stored = study.user_attrs.get("labels")
    if stored is not None and list(stored) != list(labels):
        raise ValueError(f"study '{study.study_name}' was made for other labels ({len(stored)}); "
                         "use another --study")
    if stored is None:
        study.set_user_attr("labels", list(labels))
        study.set_user_attr("test_texts", [e.text for e in test])
        study.set_user_attr("test_gold", [e.label for e in test])
    if "validation_gold" not in study.user_attrs:
        study.set_user_attr("validation_texts", [e.text for e in validation])
        study.set_user_attr("validation_gold", [e.label for e in validation])
    if TEACHERS_KEY not in study.user_attrs:
        found = {split: who for split, rows in (("validation", validation), ("test", test))
                 if (who := split_teacher(rows)) is not None}
        study.set_user_attr(TEACHERS_KEY, found)


TEACHERS_KEY = "label_teachers"


def split_teacher(rows: Sequence[Example]) -> str | None:
    """Who labelled a split's rows when a model did: its name(s), and how many rows when not all."""
    names = sorted({e.teacher for e in rows if e.teacher is not None})
    if not names:
        return None
    taught = sum(e.teacher is not None for e in rows)
    return ", ".join(names) + ("" if taught == len(rows) else f" ({taught:,} of {len(rows):,} rows)")


def study_data(study: optuna.Study) -> StudyData:
    attrs = study.user_attrs
    return StudyData(labels=list(attrs.get("labels", [])),
                     validation_gold=list(attrs.get("validation_gold", [])),
                     validation_texts=list(attrs.get("validation_texts", [])),
                     test_gold=list(attrs.get("test_gold", [])), test_texts=list(attrs.get("test_texts", [])),
                     teachers=dict(attrs.get(TEACHERS_KEY, {})))


# --- throughputs measured on other machines (`roitune meter`) ----------------------------------

MEASUREMENT_KEY = "meter:{number}:{hardware}"


@dataclass(frozen=True)
class Measurement:
    """A candidate's throughput measured on the serving hardware after the sweep."""

    number: int
    hardware: str
    items_per_second: float
    measured_on: str
    meter: MeterStats
    measured_at: str


def add_measurement(study: optuna.Study, measurement: Measurement) -> None:
    study.set_user_attr(MEASUREMENT_KEY.format(number=measurement.number, hardware=measurement.hardware),
                        _jsonable(measurement))


def measurements(study: optuna.Study) -> dict[tuple[int, str], Measurement]:
    """(trial number, hardware) -> the latest throughput measured there."""
    found = {}
    for key, value in study.user_attrs.items():
        if key.startswith("meter:"):
            m = Measurement(**{**value, "meter": MeterStats(**value["meter"])})
            found[(m.number, m.hardware)] = m
    return found


# --- the value of more labels (`roitune curve`) ------------------------------------------------

CURVE_KEY = "curve:{candidate}"


@dataclass(frozen=True)
class CurvePoint:
    """One retraining on a stratified fraction of the training rows, scored on the decision split."""

    fraction: float
    train_rows: int
    accuracy: float
    accuracy_ci: tuple[float, float]  # Wilson, 95%
    n: int  # items scored
    compute_dollars: float


@dataclass(frozen=True)
class Estimate:
    """A number from the fitted curve with its 95% bootstrap interval."""

    value: float
    lo: float
    hi: float

    def covers(self, x: float) -> bool:
        return self.lo <= x <= self.hi


@dataclass(frozen=True)
class CurveFit:
    """accuracy(n) = a - b * n ** -c, fitted by least squares on ``fitted_points`` points."""

    a: float
    b: float
    c: float
    fitted_points: int
    rmse: float

    def at(self, n: float) -> float:
        return self.a - self.b * n ** -self.c


@dataclass(frozen=True)
class CurveCheck:
    """The fit's own test: fitted on every point but the largest, its prediction there against
    what was measured (the measurement should lie in the interval)."""

    train_rows: int
    predicted: Estimate
    measured: float

    @property
    def within(self) -> bool:
        return self.predicted.covers(self.measured)


@dataclass(frozen=True)
class LearningCurve:
    """What more labelled rows are worth to one candidate's settings.

    ``points`` are the measured retrainings; ``fit`` the curve through them (None with fewer
    than 3 points); ``gain`` what ``more_rows`` more rows would add to the accuracy at all of
    today's rows (``at_more``: the accuracy then), with intervals from a bootstrap over the
    scored items; ``band`` is the fitted line with its interval for plotting, as
    (rows, value, lo, hi). ``measures`` says what the split's labels make the accuracy: accuracy
    (human labels) or agreement with a teacher model.
    """

    candidate: str
    number: int | None
    method: str
    split: str
    measures: str
    points: tuple[CurvePoint, ...]
    fit: CurveFit | None
    more_rows: int
    gain: Estimate | None
    at_more: Estimate | None
    band: tuple[tuple[float, float, float, float], ...]
    check: CurveCheck | None
    created: str
    seed: int = 0

    @property
    def train_rows(self) -> int:
        return max(p.train_rows for p in self.points)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearningCurve:
        def estimate(value: dict | None) -> Estimate | None:
            return None if value is None else Estimate(**value)

        check = data.get("check")
        return cls(**{
            **_known(cls, data),
            "points": tuple(CurvePoint(**{**p, "accuracy_ci": tuple(p["accuracy_ci"])}) for p in data["points"]),
            "fit": CurveFit(**data["fit"]) if data.get("fit") else None,
            "gain": estimate(data.get("gain")), "at_more": estimate(data.get("at_more")),
            "band": tuple(tuple(row) for row in data.get("band", ())),
            "check": None if check is None else CurveCheck(check["train_rows"], Estimate(**check["predicted"]),
                                                           check["measured"]),
        })


def add_curve(study: optuna.Study, curve: LearningCurve) -> None:
    """Record a learning curve; a newer one for the same candidate replaces it."""
    study.set_user_attr(CURVE_KEY.format(candidate=curve.number if curve.number is not None else curve.candidate),
                        _jsonable(curve))


def learning_curves(study: optuna.Study) -> list[LearningCurve]:
    """Every recorded learning curve, newest first."""
    found = [LearningCurve.from_dict(v) for k, v in study.user_attrs.items() if k.startswith("curve:")]
    return sorted(found, key=lambda c: c.created, reverse=True)
