"""Loading and validating classification data and preference pairs.

Every file is validated completely before any work starts: a problem is reported as
``file:line: reason`` (all problems of a file together), so a sweep never dies an hour in on
line 9,000. Supported inputs:

- chat JSONL: ``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}``;
  the last user message is the text, the last assistant message is the label;
- plain JSONL: ``{"<text_field>": ..., "<label_field>": ...}``;
- CSV with ``text_field`` and ``label_field`` columns;
- preference pairs JSONL: ``{"prompt": ..., "chosen": ..., "rejected": ...}``.

A row written by ``roitune label`` carries a ``teacher`` (who labelled it); one whose reply
named no label has ``"label": null`` and is skipped, counted, never trained on.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evals.record import Cap

MAX_ERRORS_SHOWN = 10


def _line_order(problem: str) -> tuple[str, int]:
    """Sort key: file, then line number (problems are collected in several passes)."""
    match = re.match(r"(.*?):(\d+): ", problem)
    return (match.group(1), int(match.group(2))) if match else (problem, 0)


class DataError(ValueError):
    """One or more ``file:line: reason`` problems in the input data."""

    def __init__(self, problems: list[str]):
        self.problems = sorted(problems, key=_line_order)
        shown = self.problems[:MAX_ERRORS_SHOWN]  # the message in line order too
        more = len(self.problems) - len(shown)
        super().__init__("\n".join(shown) + (f"\n(and {more} more problems)" if more else ""))


class SplitSpec(BaseModel):
    """How to split when only a training file is given."""

    model_config = ConfigDict(extra="forbid")
    validation: float = Field(0.2, gt=0, lt=0.5, description="Fraction held out for validation.")
    test: float = Field(0.2, gt=0, lt=0.5, description="Fraction held out for test.")
    seed: int = Field(13, description="Seed of the stratified split.")


class DataSpec(BaseModel):
    """Where the data are and how to read them."""

    model_config = ConfigDict(extra="forbid")
    train: str = Field(..., description="Training file (chat JSONL, text/label JSONL or CSV).")
    validation: str | None = Field(None, description="Validation file; split from train if absent.")
    test: str | None = Field(None, description="Test file; split from train if absent.")
    preferences: str | None = Field(
        None, description="Preference pairs JSONL {prompt, chosen, rejected} for DPO."
    )
    text_field: str = Field("text", description="Text column / key (JSONL and CSV).")
    label_field: str = Field("label", description="Label column / key (JSONL and CSV).")
    split: SplitSpec = Field(default_factory=SplitSpec, description="Split used when only train is given.")
    max_train_rows: int | None = Field(
        None, gt=0, description="Use at most this many training rows (stratified sample)."
    )
    gold: str | None = Field(
        None, description="Human-checked rows: the validation split, where accuracy is measured; "
        "their texts are removed from training."
    )

    @field_validator("train", "validation", "test", "preferences", "gold")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        if value is not None and not is_path_text(value):
            raise ValueError("not a file name: a NUL character or a lone surrogate (\\ud800-\\udfff)")
        return value

    @model_validator(mode="after")
    def _gold_is_the_validation_split(self) -> DataSpec:
        if self.gold is not None and self.validation is not None:
            raise ValueError("data.gold and data.validation are both set: the gold rows are the validation "
                             "split; move data.validation into data.gold (if human-checked) or data.train")
        return self


def is_path_text(value: str) -> bool:
    """Can the operating system take ``value`` as a file name (no NUL, encodable as UTF-8)?"""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    line: int = 0  # 1-based line in its file (0 when made in memory)
    teacher: str | None = None  # the model that labelled it (``roitune label``); None: labelled by people


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    line: int = 0


@dataclass
class Splits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    labels: list[str]
    warnings: list[str] = field(default_factory=list)
    train_available: int = 0  # training rows before data.max_train_rows (0: no cap applied)
    gold_removed: int = 0  # training rows dropped because their text is a gold row's

    def caps(self) -> list[str]:
        """Every limit that left data unused, in words (printed on every run)."""
        if self.train_available > len(self.train):
            return [f"data.max_train_rows: training on {len(self.train):,} of {self.train_available:,} rows"]
        return []


def _decoded_lines(path: Path) -> tuple[list[tuple[int, str]], list[str]]:
    """The file's non-blank lines with 1-based numbers, and encoding problems."""
    if not path.is_file():
        raise DataError([f"{path}: no such file"])
    lines, problems = [], []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as err:
            problems.append(f"{path}:{number}: not UTF-8 (byte {err.start})")
            continue
        if text.strip():
            lines.append((number, text))
    return lines, problems


def text_value(value: object) -> str | None:
    """The stripped string, or None when missing, empty or not a string."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def message_text(content: object) -> str:
    """A chat message's text: a string, or the text parts of OpenAI's list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and part.get("type", "text") == "text")
    return ""


def parse_row(row: dict, text_field: str = "text", label_field: str = "label", *,
              label_required: bool = True) -> tuple[str | None, str | None, str | None]:
    """(text, label, problem) of one row of any training format; the one parser of rows.

    Chat rows: the last user message is the text, the last assistant message the label. Other
    rows: ``text_field`` and ``label_field``. With ``label_required=False`` (predicting, labelling)
    a missing or empty label is no label, not a problem.
    """
    if "messages" in row:
        return _parse_chat(row["messages"], label_required)
    text, label = text_value(row.get(text_field)), text_value(row.get(label_field))
    if text_field not in row:
        return None, None, f"missing field '{text_field}' (or 'messages')"
    if text is None:
        return None, None, f"field '{text_field}': empty or not a string"
    raw_label = row.get(label_field)
    if label is None and (label_required or (raw_label is not None and not isinstance(raw_label, str))):
        missing = label_field not in row and label_required
        return None, None, f"missing field '{label_field}'" if missing else f"field '{label_field}': empty or not a string"
    return text, label, None


def _parse_chat(messages: object, label_required: bool) -> tuple[str | None, str | None, str | None]:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return None, None, "field 'messages': must be a list of {role, content} objects"
    for index, message in enumerate(messages):
        if message.get("role") not in ("system", "user", "assistant"):
            return None, None, f"field 'messages[{index}].role': must be system, user or assistant"
        if not isinstance(message.get("content"), str):
            return None, None, f"field 'messages[{index}].content': must be a string"
    users = [m["content"] for m in messages if m["role"] == "user"]
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    if not users or not text_value(users[-1]):
        return None, None, "field 'messages': no non-empty user message (the text)"
    label = text_value(answers[-1]) if answers else None
    if label is None and label_required:
        return None, None, "field 'messages': no non-empty assistant message (the label)"
    return users[-1].strip(), label, None


def read_rows(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line number, row) pairs of a JSONL or CSV file, and its problems as file:line: reason."""
    return (csv_rows if path.suffix.lower() == ".csv" else jsonl_rows)(path)


def _lone_surrogate(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def jsonl_rows(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    lines, problems = _decoded_lines(path)
    rows = []
    for number, text in lines:
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            problems.append(f"{path}:{number}: invalid JSON ({err.msg} at column {err.colno})")
            continue
        except RecursionError:
            problems.append(f"{path}:{number}: invalid JSON (nested too deeply)")
            continue
        except ValueError as err:  # e.g. an integer longer than Python's 4300-digit limit
            problems.append(f"{path}:{number}: invalid JSON ({str(err).split(':')[0]})")
            continue
        if _lone_surrogate(row):
            # "\ud800" escapes decode to strings no file, tokenizer or terminal can take.
            problems.append(f"{path}:{number}: invalid JSON (a \\u escape is a lone surrogate, not a character)")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            continue
        rows.append((number, row))
    return rows, problems


def csv_rows(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    lines, problems = _decoded_lines(path)
    if problems:
        return [], problems
    text = "\n".join(line for _, line in lines)
    reader = csv.DictReader(io.StringIO(text))
    numbers = [number for number, _ in lines]
    rows = []
    try:
        for row in reader:
            # line_num counts physical lines read so far, so multi-line quoted cells still map back.
            rows.append((numbers[min(reader.line_num, len(numbers)) - 1], row))
    except csv.Error as err:
        problems.append(f"{path}:{numbers[min(reader.line_num, len(numbers)) - 1]}: bad CSV ({err})")
    return rows, problems


def teacher_name(value: object) -> tuple[str | None, str | None]:
    """(name, problem) of a row's ``teacher`` field: ``{"model", "base_url"}`` as ``roitune label``
    writes it, or a plain string."""
    if isinstance(value, str) and value.strip():
        return value.strip(), None
    if isinstance(value, dict) and text_value(value.get("model")):
        base_url = text_value(value.get("base_url"))
        return value["model"].strip() + (f" at {base_url}" if base_url else ""), None
    return None, "field 'teacher': must be a non-empty string or an object with a 'model'"


def unlabelled_by_teacher(row: dict, label_field: str = "label") -> bool:
    """A row ``roitune label`` wrote for a reply that named no label (``"label": null``)."""
    return "teacher" in row and label_field in row and row[label_field] is None


def load_examples(
    path: str | Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    labels: list[str] | None = None,
    skipped: list[int] | None = None,
) -> list[Example]:
    """Read a labelled file; raise DataError listing every bad line.

    ``labels``, when given, is the closed label set: any other label is an error. A row the
    teacher left unlabelled (``unlabelled_by_teacher``) is not an error but no example either: its
    line number goes to ``skipped``, so the caller can say how many there were.
    """
    path = Path(path)
    rows, problems = read_rows(path)
    allowed = set(labels) if labels else None
    examples, unlabelled = [], []
    for number, row in rows:
        if unlabelled_by_teacher(row, label_field):
            unlabelled.append(number)
            continue
        text, label, problem = parse_row(row, text_field, label_field)
        teacher = None
        if problem is None and allowed is not None and label not in allowed:
            problem = f"label {label!r} is not in the label set ({len(allowed)} labels)"
        if problem is None and "teacher" in row:
            teacher, problem = teacher_name(row["teacher"])
        if problem:
            problems.append(f"{path}:{number}: {problem}")
            continue
        examples.append(Example(text=text, label=label, line=number, teacher=teacher))
    if not examples and not problems:
        why = f" with a label ({len(unlabelled)} left unlabelled by the teacher)" if unlabelled else ""
        problems.append(f"{path}: no rows{why}")
    if problems:
        raise DataError(problems)
    if skipped is not None:
        skipped.extend(unlabelled)
    return examples


def load_preferences(path: str | Path, *, labels: list[str] | None = None) -> list[PreferencePair]:
    """Read preference pairs ``{prompt, chosen, rejected}``; raise DataError on any bad line."""
    path = Path(path)
    rows, problems = jsonl_rows(path)
    allowed = set(labels) if labels else None
    pairs = []
    for number, row in rows:
        values = {key: text_value(row.get(key)) for key in ("prompt", "chosen", "rejected")}
        missing = [key for key, value in values.items() if value is None]
        if missing:
            problems.append(f"{path}:{number}: field '{missing[0]}': missing, empty or not a string")
            continue
        if values["chosen"] == values["rejected"]:
            problems.append(f"{path}:{number}: field 'rejected': same as 'chosen'")
            continue
        unknown = [k for k in ("chosen", "rejected") if allowed is not None and values[k] not in allowed]
        if unknown:
            problems.append(f"{path}:{number}: field '{unknown[0]}': label {values[unknown[0]]!r} not in the label set")
            continue
        pairs.append(PreferencePair(line=number, **values))
    if not pairs and not problems:
        problems.append(f"{path}: no rows")
    if problems:
        raise DataError(problems)
    return pairs


def normalise_text(text: str) -> str:
    """Case-, spacing- and punctuation-insensitive form used to find duplicates and leakage."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def duplicates(examples: list[Example]) -> list[list[Example]]:
    """Groups of examples whose normalised texts are equal (within one list)."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[normalise_text(example.text)].append(example)
    return [group for group in groups.values() if len(group) > 1]


def leakage(train: list[Example], test: list[Example]) -> list[Example]:
    """Test examples whose text also occurs in train (exactly or after normalising)."""
    seen = {normalise_text(example.text) for example in train}
    return [example for example in test if normalise_text(example.text) in seen]


def stratified_split(
    examples: list[Example], fractions: list[float], seed: int
) -> list[list[Example]]:
    """Split into len(fractions)+1 parts (the rest first), per label, seeded.

    Each label with at least len(fractions)+1 examples gets at least one in every part, so a
    rare class is never missing from validation or test.
    """
    by_label: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example)
    rng = random.Random(seed)
    parts: list[list[Example]] = [[] for _ in range(len(fractions) + 1)]
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        start = 0
        for index, fraction in enumerate(fractions, start=1):
            take = round(len(group) * fraction)
            if len(group) > len(fractions):  # one for each later part and the rest stays too
                take = min(max(take, 1), len(group) - start - (len(fractions) - index + 1))
            parts[index].extend(group[start : start + take])
            start += take
        parts[0].extend(group[start:])
    for part in parts:
        rng.shuffle(part)
    return parts


def load_splits(spec: DataSpec, labels: list[str] | None = None) -> Splits:
    """Load, validate and split the data; labels default to those seen in train.

    With ``data.gold``, the gold rows are the validation split (accuracy is measured there) and
    every training row whose normalised text is a gold row's is dropped before anything is split,
    so no gold text is trained on or lands in a split-off test set.
    """
    read = dict(text_field=spec.text_field, label_field=spec.label_field)
    paths = {"train": spec.train, "validation": spec.gold or spec.validation, "test": spec.test}
    problems: list[str] = []
    loaded: dict[str, list[Example]] = {}
    skipped: dict[str, list[int]] = {}
    for name, path in paths.items():
        if path is None:
            continue
        skipped[name] = []
        try:
            loaded[name] = load_examples(path, labels=labels, skipped=skipped[name], **read)
        except DataError as err:
            problems.extend(err.problems)
    if problems:
        raise DataError(problems)
    train = loaded["train"]
    label_set = list(labels) if labels else sorted({example.label for example in train})
    for name in ("validation", "test"):
        unseen = [e for e in loaded.get(name, []) if e.label not in label_set]
        problems += [f"{paths[name]}:{e.line}: label {e.label!r} never occurs in train" for e in unseen]
    if problems:
        raise DataError(problems)

    warnings = [f"{paths[name]}: skipped {len(lines):,} rows the teacher left unlabelled (label null, e.g. line "
                f"{lines[0]})" for name, lines in skipped.items() if lines]
    gold_removed = 0
    if spec.gold is not None:
        # Human-checked, whatever labelled them first: gold labels are the truth, not a teacher's.
        loaded["validation"] = [replace(e, teacher=None) for e in loaded["validation"]]
        gold_texts = {normalise_text(e.text) for e in loaded["validation"]}
        kept = [e for e in train if normalise_text(e.text) not in gold_texts]
        gold_removed = len(train) - len(kept)
        if not kept:
            raise DataError([f"{spec.train}: every training text is also a gold row's ({spec.gold})"])
        train = kept
        if gold_removed:
            warnings.append(f"data.gold: removed {gold_removed:,} training rows whose text is a gold row's "
                            "(gold rows are never trained on)")
        in_gold = leakage(loaded["validation"], loaded.get("test", []))
        if in_gold:
            warnings.append(f"leakage: {len(in_gold)} test texts are also gold rows")
    if "validation" not in loaded or "test" not in loaded:
        wanted = [spec.split.validation if "validation" not in loaded else None,
                  spec.split.test if "test" not in loaded else None]
        fractions = [f for f in wanted if f is not None]
        train, *held = stratified_split(train, fractions, spec.split.seed)
        held_iter = iter(held)
        for name, fraction in zip(("validation", "test"), wanted):
            if fraction is not None:
                loaded[name] = next(held_iter)
        warnings.append(f"split {spec.train} stratified (seed {spec.split.seed}) into "
                        f"{len(train)} train / {len(loaded['validation'])} validation / {len(loaded['test'])} test")
    train_available = len(train)
    if spec.max_train_rows and len(train) > spec.max_train_rows:
        sample = stratified_split(train, [spec.max_train_rows / len(train)], spec.split.seed)[1]
        train = sample[: spec.max_train_rows]  # one per label (or rounding) may overshoot the cap
    for name in ("validation", "test"):
        leaked = leakage(train, loaded[name])
        if leaked:
            sample = "; ".join(repr(e.text[:40]) for e in leaked[:3])
            warnings.append(f"leakage: {len(leaked)} {name} texts also occur in train (e.g. {sample})")
    return Splits(train=train, validation=loaded["validation"], test=loaded["test"],
                  labels=label_set, warnings=warnings, train_available=train_available, gold_removed=gold_removed)


def label_counts(examples: list[Example]) -> Counter:
    return Counter(example.label for example in examples)


@dataclass(frozen=True)
class HeldOut:
    """The items of a held-out split a candidate is scored on: all of them, or a stratified
    subset (``index``: the items' positions in the split; None = every item, in order)."""

    split: str
    items: list[Example]
    index: list[int] | None
    available: int

    def cap(self) -> Cap | None:
        return Cap(f"{self.split} items", len(self.items), self.available) if len(self.items) < self.available else None

    def sorted_by(self, key: Callable[[Example], int]) -> HeldOut:
        """The same items in ``key`` order (shorter prompts together: less padding per batch)."""
        positions = self.index if self.index is not None else list(range(len(self.items)))
        order = sorted(range(len(self.items)), key=lambda i: key(self.items[i]))
        return HeldOut(self.split, [self.items[i] for i in order], [positions[i] for i in order], self.available)


def held_out(splits: Splits, cap: int | None, seed: int) -> list[HeldOut]:
    """Validation (the decision split, first) and test, each capped at ``cap`` items."""
    return [capped(name, getattr(splits, name), cap, seed) for name in ("validation", "test")]


def capped(split: str, items: list[Example], cap: int | None, seed: int) -> HeldOut:
    if cap is None or len(items) <= cap:
        return HeldOut(split, items, None, len(items))
    chosen = {id(e) for e in stratified_split(items, [cap / len(items)], seed)[1]}
    index = [i for i, e in enumerate(items) if id(e) in chosen]
    return HeldOut(split, [items[i] for i in index], index, len(items))
