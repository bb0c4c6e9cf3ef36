"""``roitune data check``: validate one file and describe it (rows, labels, lengths, duplicates)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evals.data import duplicates, label_counts, load_examples, load_preferences


@dataclass
class DataReport:
    path: str
    kind: str  # "labelled" or "preferences"
    rows: int
    label_counts: dict[str, int]
    token_percentiles: dict[str, int]
    duplicate_groups: list[list[int]] = field(default_factory=list)  # line numbers
    teachers: dict[str, int] = field(default_factory=dict)  # rows per model that labelled them (`roitune label`)
    unlabelled_by_teacher: list[int] = field(default_factory=list)  # lines with label null: skipped in training

    def as_dict(self) -> dict:
        return asdict(self)

    def print(self, console) -> None:
        from rich.table import Table

        console.print(f"[bold]{self.path}[/]: {self.rows} rows ({self.kind}), {len(self.label_counts)} labels")
        lengths = ", ".join(f"{k} {v}" for k, v in self.token_percentiles.items())
        console.print(f"tokens per text: {lengths}")
        table = Table("label", "rows", box=None)
        for label, count in sorted(self.label_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(label, str(count))
        console.print(table)
        if self.duplicate_groups:
            shown = "; ".join("lines " + ", ".join(map(str, g)) for g in self.duplicate_groups[:5])
            console.print(f"[yellow]{len(self.duplicate_groups)} groups of duplicate texts[/]: {shown}")
        else:
            console.print("no duplicate texts")
        for teacher, rows in self.teachers.items():
            console.print(f"labelled by {teacher}: {rows} rows", markup=False, highlight=False)
        if self.unlabelled_by_teacher:
            console.print(f"[yellow]{len(self.unlabelled_by_teacher)} rows the teacher left unlabelled[/] (label null, "
                          f"skipped in training): lines {', '.join(map(str, self.unlabelled_by_teacher[:10]))}")


def _is_preferences(path: Path) -> bool:
    """A JSONL whose first object has prompt/chosen/rejected keys."""
    if path.suffix.lower() == ".csv" or not path.is_file():
        return False
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                try:
                    first = json.loads(raw)
                except (ValueError, RecursionError):  # not JSON: load_examples says why
                    return False
                return isinstance(first, dict) and {"prompt", "chosen", "rejected"} <= set(first)
    return False


def _percentiles(lengths: list[int]) -> dict[str, int]:
    import numpy as np

    if not lengths:
        return {}
    values = np.percentile(lengths, [50, 90, 99, 100])
    return {name: int(v) for name, v in zip(("p50", "p90", "p99", "max"), values)}


def check_file(path: Path, *, text_field: str = "text", label_field: str = "label",
               model: str | None = None) -> DataReport:
    """Validate ``path`` (raises DataError with file:line reasons) and describe it."""
    path = Path(path)
    teachers: dict[str, int] = {}
    skipped: list[int] = []
    if _is_preferences(path):
        pairs = load_preferences(path)
        texts = [p.prompt for p in pairs]
        counts = dict(Counter(p.chosen for p in pairs))
        kind, groups = "preferences", []
    else:
        examples = load_examples(path, text_field=text_field, label_field=label_field, skipped=skipped)
        texts = [e.text for e in examples]
        counts = dict(label_counts(examples))
        kind = "labelled"
        groups = [[e.line for e in group] for group in duplicates(examples)]
        teachers = dict(Counter(e.teacher for e in examples if e.teacher is not None))
    lengths = _token_lengths(texts, model)
    return DataReport(str(path), kind, len(texts), counts, _percentiles(lengths), groups, teachers, skipped)


def _token_lengths(texts: list[str], model: str | None) -> list[int]:
    if not model:
        return [len(t.split()) for t in texts]
    from evals.models import load_tokenizer

    tokenizer = load_tokenizer(model)
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

