"""One row of the comparison: a baseline, a search trial, or the current solution."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

CandidateKind = Literal["baseline", "trial", "current"]


@dataclass
class Candidate:
    """Quality and cost of one way to do the task, measured on one split.

    ``predictions`` are aligned with that split's gold labels (None = invalid answer) and
    let paired tests (McNemar, paired bootstrap) compare candidates item by item.
    """

    name: str
    kind: CandidateKind
    accuracy: float | None
    cost_per_item: float
    cost_provenance: str
    split: str = "test"
    trial_number: int | None = None
    macro_f1: float | None = None
    accuracy_ci: tuple[float, float] | None = None
    macro_f1_ci: tuple[float, float] | None = None
    items_per_second: float | None = None
    predictions: list[str | None] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
