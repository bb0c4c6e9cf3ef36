"""Serving a cascade: the bundle answers what it is confident about, the hosted endpoint the rest.

``roitune serve BUNDLE --escalate-to CONFIG`` and ``roitune predict ... --escalate-to CONFIG``
send every item whose calibrated confidence is below the threshold to ``baselines.hosted`` of
CONFIG through the hosted client (``evals.hosted.HostedClient``: the key from the environment, the
on-disk reply cache shared with the hosted baseline, the dollar cap for the whole process,
retries). The answer always says who gave it. When the fallback fails (after its retries), the cap
is reached, or its reply names no label, the local answer is returned with a flag saying so: an
escalation never turns into an error.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evals.calibration import confidences
from evals.classify import Prediction, PromptTemplate
from evals.hosted import HostedClient, HostedError, HostedSpec, match_label
from evals.record import TOP_K, Calibration


class EscalationError(ValueError):
    """A cascade that cannot be served as asked (one line: threshold, calibration, endpoint)."""


def check_threshold(threshold: float) -> float:
    if not 0.0 <= threshold <= 1.0:
        raise EscalationError(f"threshold {threshold:g} is outside [0, 1]: it is a calibrated probability")
    return threshold


def confidence(calibration: Calibration, prediction: Prediction) -> float:
    """The calibrated confidence of a prediction, computed from its top labels exactly as in the study."""
    top = sorted(prediction.distribution.values(), reverse=True)[:TOP_K] or [prediction.probability]
    return float(confidences(calibration, np.asarray([top]))[0])


@dataclass(frozen=True)
class Routed:
    """One answer of a cascade and who gave it."""

    label: str
    confidence: float  # the local model's calibrated confidence
    answered_by: str  # "local" or "fallback"
    escalated: bool  # below the threshold
    flag: str | None = None  # why an escalated item was answered locally after all
    fallback_dollars: float = 0.0  # new money this answer cost (0 for a cached reply)

    def as_dict(self, threshold: float, fallback_model: str) -> dict[str, Any]:
        return {"answered_by": self.answered_by, "confidence": round(self.confidence, 6), "threshold": threshold,
                "escalated": self.escalated, "fallback_model": fallback_model, "flag": self.flag,
                "fallback_dollars": self.fallback_dollars}


class Escalation:
    """Where low-confidence items go: the hosted endpoint of a config, within its dollar cap."""

    def __init__(self, spec: HostedSpec, *, labels: Sequence[str], threshold: float, calibration: Calibration | None,
                 cache_dir: Path):
        if calibration is None:
            raise EscalationError("the bundle has no calibration.json, so its confidence is not calibrated: "
                                  "run `roitune cascade` on its study, then export it again")
        if spec.mode != "live":
            raise EscalationError("escalation needs a live endpoint: baselines.hosted.mode is 'estimate'")
        self.spec, self.labels = spec, list(labels)
        self.threshold, self.calibration = check_threshold(threshold), calibration
        self.client = HostedClient(spec, cache_dir=cache_dir)
        self.cap_reached = threading.Event()

    def route(self, prediction: Prediction, messages: list[dict[str, Any]]) -> Routed:
        """The local answer when confident, else the fallback's; the local one, flagged, if that fails."""
        sure = confidence(self.calibration, prediction)
        if sure >= self.threshold:
            return Routed(prediction.label, sure, "local", escalated=False)
        local = Routed(prediction.label, sure, "local", escalated=True)
        try:
            reply = self.client.cached(messages)
            paid = 0.0
            if reply is None:
                reply = self.client.call(messages)
                paid = 0.0 if reply is None else self.client.dollars(reply)
        except HostedError as problem:
            return _flagged(local, f"fallback failed: {problem}")
        if reply is None:
            self.cap_reached.set()
            return _flagged(local, f"dollar cap reached (baselines.hosted.max_dollars = ${self.spec.max_dollars:g})")
        label = match_label(reply.text, self.labels)
        if label is None:
            return _flagged(local, f"fallback reply named no label: {reply.text[:80]!r}", paid)
        return Routed(label, sure, "fallback", escalated=True, fallback_dollars=paid)

    def route_all(self, predictions: Sequence[Prediction], conversations: Sequence[list[dict[str, Any]]]) -> list[Routed]:
        """Every item routed, the escalated ones ``spec.concurrency`` at a time, in item order."""
        with ThreadPoolExecutor(max_workers=self.spec.concurrency, thread_name_prefix="escalate") as pool:
            return list(pool.map(self.route, predictions, conversations))

    def close(self) -> None:
        self.client.close()


def _flagged(local: Routed, flag: str, paid: float = 0.0) -> Routed:
    return Routed(local.label, local.confidence, "local", escalated=True, flag=flag, fallback_dollars=paid)


def escalation_for(config: Path, overrides: Sequence[str], *, labels: Sequence[str], threshold: float | None,
                   bundle_threshold: float | None, calibration: Calibration | None) -> tuple[Escalation, PromptTemplate]:
    """The escalation a ``--escalate-to CONFIG`` asks for, and the prompt its hosted baseline sends."""
    from optimizer.config import load_config

    cfg = load_config(config, list(overrides))
    spec = cfg.baselines.hosted
    if spec is None:
        raise EscalationError(f"{config}: baselines.hosted is not set: it is the endpoint to escalate to")
    chosen = threshold if threshold is not None else bundle_threshold
    if chosen is None:
        raise EscalationError("no threshold: export a cascade (`roitune export --trial <cascade number>`) "
                              "or pass --threshold")
    escalation = Escalation(spec, labels=labels, threshold=chosen, calibration=calibration,
                            cache_dir=Path(cfg.runs_dir) / "hosted-cache")
    # The hosted baseline's own prompt: a reply it cached for an item is reused, never paid twice.
    return escalation, PromptTemplate(cfg.task.instruction, tuple(labels), list_labels=True)
