"""``roitune predict`` and ``roitune serve``: run an exported bundle.

A bundle folder is an adapter folder (``roitune.json`` + the PEFT adapter), so its predictor
is rebuilt by ``optimizer.adapters.load_predictor`` exactly as the sweep rebuilt it for test
scoring: the same spec gives the same answers.

Input files are the training formats (chat JSONL, text/label JSONL, CSV) with the label
optional, since the point of predicting is usually that there is none. Every row is validated
before the model loads, and problems are reported as ``file:line: reason``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

# The training data's row readers: a file that trains also predicts, with the same line numbers.
from evals.classify import Prediction, PromptTemplate
from evals.data import DataError, message_text, parse_row, read_rows
from evals.record import Calibration
from optimizer.adapters import AdapterSpec
from optimizer.serve import Answer

if TYPE_CHECKING:
    from rich.console import Console

    from optimizer.escalation import Escalation, Routed

CALIBRATION_FILE = "calibration.json"
CASCADE_FILE = "cascade.json"


@dataclass(frozen=True)
class Item:
    id: Any  # the row's "id" field, else its line number
    text: str
    label: str | None
    line: int


@dataclass(frozen=True)
class Bundle:
    path: Path
    spec: AdapterSpec
    trial: int | None = None  # the study trial it was exported from (source.json)
    calibration: Calibration | None = None  # calibration.json: how its confidence was calibrated
    threshold: float | None = None  # cascade.json: answer locally at this calibrated confidence or above


def open_bundle(path: Path) -> Bundle:
    spec_file = path / "roitune.json"
    if not spec_file.is_file():
        raise FileNotFoundError(f"{path} is not a roitune bundle (no roitune.json): make one with `roitune export`")
    source = path / "source.json"
    trial = json.loads(source.read_text()).get("trial") if source.is_file() else None
    calibration = path / CALIBRATION_FILE
    cascade = path / CASCADE_FILE
    return Bundle(path.resolve(), AdapterSpec.from_json(json.loads(spec_file.read_text())), trial,
                  Calibration.from_dict(json.loads(calibration.read_text())) if calibration.is_file() else None,
                  json.loads(cascade.read_text())["threshold"] if cascade.is_file() else None)


def load_bundle_predictor(bundle: Bundle):
    """The bundle's LabelScorer or HeadClassifier."""
    from optimizer.adapters import load_predictor

    return load_predictor(bundle.spec, bundle.path)


# -- input ---------------------------------------------------------------------------------


def read_items(path: Path, labels: Sequence[str] | None, *, text_field: str = "text",
               label_field: str = "label") -> list[Item]:
    """Every row of a JSONL or CSV file, label optional; raise DataError listing every bad line.
    A label must be one of ``labels`` (``None``: labels are not checked, as when they get replaced)."""
    rows, problems = read_rows(path)
    known = set(labels or ())
    items = []
    for line, row in rows:
        text, label, problem = parse_row(row, text_field, label_field, label_required=False)
        if problem is None and label is not None and labels is not None and label not in known:
            problem = f"label {label!r} is not one of the bundle's {len(known)} labels"
        if problem:
            problems.append(f"{path}:{line}: {problem}")
            continue
        items.append(Item(id=row.get("id", line), text=text, label=label, line=line))
    if not items and not problems:
        problems.append(f"{path}: no rows")
    if problems:
        raise DataError(problems)
    return items


# -- predicting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accuracy:
    correct: int
    labelled: int

    @property
    def value(self) -> float:
        return self.correct / self.labelled


def predict_items(predictor, items: Sequence[Item], *, batch_size: int,
                  on_batch: Callable[[int], None] | None = None) -> list:
    """Predictions in item order, computed in batches of similar length (less padding)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].text))
    results: list = [None] * len(items)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        predictions = predictor.predict([items[i].text for i in chunk], batch_size=batch_size)
        for i, prediction in zip(chunk, predictions):
            results[i] = prediction
        if on_batch is not None:
            on_batch(len(chunk))
    return results


def accuracy(items: Sequence[Item], predictions: Sequence) -> Accuracy | None:
    """Accuracy over the labelled items; None when none has a label."""
    pairs = [(item.label, p.label) for item, p in zip(items, predictions) if item.label is not None]
    if not pairs:
        return None
    return Accuracy(sum(gold == label for gold, label in pairs), len(pairs))


def predict_file(bundle: Bundle, path: Path, out: Path | None, *, batch_size: int, console: Console,
                 text_field: str = "text", label_field: str = "label",
                 escalate: tuple[Escalation, PromptTemplate] | None = None) -> tuple[int, Accuracy | None]:
    """Classify every row of ``path``; one JSON line per row to ``out`` (or stdout).
    With ``escalate``, the rows below its threshold go to its endpoint (``optimizer.escalation``).
    Returns the number of rows and the accuracy over the labelled ones."""
    from optimizer.progress import progress_bars

    items = read_items(path, bundle.spec.labels, text_field=text_field, label_field=label_field)
    predictor = load_bundle_predictor(bundle)
    with progress_bars(console) as start:
        predictions = predict_items(predictor, items, batch_size=batch_size, on_batch=start("predicting", len(items)))
    if escalate is None:
        write_lines(prediction_lines(items, predictions), out, sys.stdout)
        return len(items), accuracy(items, predictions)
    escalation, template = escalate
    try:
        routed = escalation.route_all(predictions, [template.messages(item.text) for item in items])
    finally:
        escalation.close()
    write_lines(routed_lines(items, predictions, routed, escalation), out, sys.stdout)
    for line in escalation_summary(routed):
        console.print(line, markup=False, highlight=False)
    return len(items), accuracy(items, routed)


def routed_lines(items: Sequence[Item], predictions: Sequence, routed: Sequence[Routed],
                 escalation: Escalation) -> Iterator[str]:
    for item, p, r in zip(items, predictions, routed):
        yield json.dumps({"id": item.id, "label": r.label, "probability": p.probability,
                          **r.as_dict(escalation.threshold, escalation.spec.model)}, ensure_ascii=False) + "\n"


def escalation_summary(routed: Sequence[Routed]) -> list[str]:
    """What the fallback did: how many rows it was asked, answered, and which stayed local and why."""
    escalated = [r for r in routed if r.escalated]
    flagged = [r for r in escalated if r.flag]
    lines = [f"escalated {len(escalated)} of {len(routed)} rows; the fallback answered "
             f"{len(escalated) - len(flagged)} (${sum(r.fallback_dollars for r in routed):.4f} new spend)"]
    reasons: dict[str, int] = {}
    for r in flagged:
        reasons[r.flag] = reasons.get(r.flag, 0) + 1
    lines += [f"warning: {count} escalated row(s) answered locally: {reason}" for reason, count in reasons.items()]
    return lines


def prediction_lines(items: Sequence[Item], predictions: Sequence) -> Iterator[str]:
    for item, p in zip(items, predictions):
        yield json.dumps({"id": item.id, "label": p.label, "probability": p.probability}, ensure_ascii=False) + "\n"


def write_lines(lines: Iterator[str], out: Path | None, stdout: TextIO) -> None:
    """To ``out`` atomically (a temp file renamed into place), or to ``stdout``."""
    if out is None:
        stdout.writelines(lines)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.writelines(lines)
        os.replace(temp, out)
    except BaseException:
        os.unlink(temp)
        raise


# -- serving -------------------------------------------------------------------------------


class BundleClassifier:
    """A bundle behind ``optimizer.serve``: the last user message is the ticket text."""

    def __init__(self, bundle: Bundle, predictor):
        self.model_id = bundle.path.name
        self.labels = list(bundle.spec.labels)
        self.predictor = predictor
        self.tokenizer = predictor.tokenizer

    def classify(self, messages: list[dict[str, Any]]) -> Answer:
        return self.answer(messages)[0]

    def answer(self, messages: list[dict[str, Any]]) -> tuple[Answer, Prediction]:
        """The reply and the prediction behind it (its label distribution)."""
        users = [m for m in messages if m["role"] == "user"]
        if not users:
            raise ValueError("no user message: the last user message is the ticket to classify")
        text = message_text(users[-1]["content"])
        prediction = self.predictor.predict([text])[0]
        label_tokens = self.tokenizer(prediction.label, add_special_tokens=False)["input_ids"]
        return Answer(prediction.label, prediction.probability, self._prompt_tokens(text), len(label_tokens)), prediction

    def _prompt_tokens(self, text: str) -> int:
        """Tokens the model reads: the chat prompt, or the raw text for a classifier head."""
        from evals.classify import LabelScorer

        if isinstance(self.predictor, LabelScorer):
            return len(self.predictor.prompt_ids(text))
        ids = self.tokenizer(text, truncation=True, max_length=self.predictor.max_tokens)["input_ids"]
        return len(ids)


class CascadeClassifier:
    """A bundle that escalates what it is unsure of (``roitune serve --escalate-to``).

    The local model is guarded by its own lock; the fallback is called outside it, so one slow
    escalation does not hold up the confident requests behind it."""

    locks_itself = True

    def __init__(self, local: BundleClassifier, escalation: Escalation):
        self.local, self.escalation = local, escalation
        self.model_id, self.labels = local.model_id, local.labels
        self._lock = threading.Lock()

    def classify(self, messages: list[dict[str, Any]]) -> Answer:
        with self._lock:
            answer, prediction = self.local.answer(messages)
        routed = self.escalation.route(prediction, messages)
        e = self.escalation
        return replace(answer, label=routed.label, route=routed.as_dict(e.threshold, e.spec.model))
