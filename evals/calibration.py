"""Calibrated confidence: fitted on validation, checked by the expected calibration error (ECE).

A candidate's confidence is the probability of its top label. A cascade trusts it ("answer
locally when at least 0.8"), so it must mean what it says: of the items answered at 0.8, about 80%
should be right.

Every local candidate is calibrated by **temperature scaling** (Guo et al. 2017): one parameter
T, fitted by the negative log-likelihood of the gold label on validation. A study keeps only each
item's ``TOP_K`` most probable labels, so the distribution is rebuilt from them: the mass outside
the top k is spread evenly over the other labels, then every probability is raised to 1 / T and
renormalised. T > 1 softens an overconfident model, T < 1 sharpens an underconfident one; the
ranking of an item's labels never changes.

That suits the neural candidates (adapters with a generative or classifier head, encoders, LLM
prompts) and the scikit-learn ones alike: a multinomial logistic regression is a softmax over
linear scores, and its L2 penalty shrinks them all, which one temperature undoes. Isotonic
regression of correctness on the top probability, the usual non-parametric alternative, fits the
validation split perfectly but measured a higher test ECE than temperature scaling on Banking77
(``bench/cascade_banking77.py`` compares both on the classical and embedding baselines).

The ECE is the top-label one: items binned by confidence into ``ECE_BINS`` equal-width bins, the
gap between each bin's accuracy and its mean confidence, weighted by the bin's share of items.

numpy only (no torch), so the report and the dashboard compute confidences from the study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from evals.record import Calibration, SplitResult

ECE_BINS = 15
_LOG_T_RANGE = (np.log(0.02), np.log(50.0))  # temperatures searched (golden section on log T)
_FLOOR = 1e-12  # log of an item whose gold label kept no probability at all


def top_probabilities(result: SplitResult) -> np.ndarray:
    """(items, k) top probabilities of a result, most probable first, padded with zeros."""
    rows = result.top_probs or []
    k = max((len(r) for r in rows), default=1)
    out = np.zeros((len(rows), k))
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def rest_share(probs: np.ndarray, n_labels: int) -> np.ndarray:
    """Probability of each label outside the kept top k: the missing mass spread evenly."""
    others = n_labels - probs.shape[1]
    if others <= 0:
        return np.zeros(len(probs))
    return np.clip(1.0 - probs.sum(axis=1), 0.0, None) / others


def scaled(probs: np.ndarray, n_labels: int, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Top-k probabilities and the per-label rest after temperature scaling, renormalised."""
    power = 1.0 / temperature
    with np.errstate(divide="ignore"):  # 0 ** power = 0 is what a zero probability should stay
        top = np.where(probs > 0, np.power(np.clip(probs, _FLOOR, None), power), 0.0)
        rest = rest_share(probs, n_labels)
        rest = np.where(rest > 0, np.power(np.clip(rest, _FLOOR, None), power), 0.0)
    total = top.sum(axis=1) + rest * max(n_labels - probs.shape[1], 0)
    total = np.where(total > 0, total, 1.0)
    return top / total[:, None], rest / total


def gold_positions(result: SplitResult, labels: Sequence[str], gold: Sequence[str]) -> np.ndarray:
    """For each scored item, where its gold label sits among the kept top labels (-1: outside)."""
    index = {label: i for i, label in enumerate(labels)}
    rows = result.top_labels or []
    positions = []
    for item, top in zip(result.item_indices(), rows):
        want = index[gold[item]]
        positions.append(top.index(want) if want in top else -1)
    return np.asarray(positions, dtype=int)


def correct(result: SplitResult, labels: Sequence[str], gold: Sequence[str]) -> np.ndarray:
    """True where the candidate's prediction is the gold label (an invalid answer is wrong)."""
    return np.asarray([p >= 0 and labels[p] == gold[item] for item, p in zip(result.item_indices(), result.predictions)],
                      dtype=bool)


def negative_log_likelihood(probs: np.ndarray, positions: np.ndarray, n_labels: int, temperature: float) -> float:
    """Mean -log p(gold) after temperature scaling; a gold label outside the top k gets the rest share."""
    top, rest = scaled(probs, n_labels, temperature)
    inside = positions >= 0
    p = np.where(inside, top[np.arange(len(top)), np.clip(positions, 0, None)], rest)
    return float(-np.log(np.clip(p, _FLOOR, None)).mean())


def fit_temperature(probs: np.ndarray, positions: np.ndarray, n_labels: int) -> float:
    """The temperature that minimises the validation NLL (golden-section search on log T).

    The NLL of a temperature-scaled softmax is convex in 1 / T, so it is unimodal in log T and
    the search finds its minimum within the searched range."""
    lo, hi = _LOG_T_RANGE
    ratio = (np.sqrt(5.0) - 1) / 2

    def loss(log_t: float) -> float:
        return negative_log_likelihood(probs, positions, n_labels, float(np.exp(log_t)))

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):  # the bracket shrinks to 0.618**60 of log(2500): far below any useful digit
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(np.exp((lo + hi) / 2))


def confidences(calibration: Calibration | None, probs: np.ndarray) -> np.ndarray:
    """Each item's calibrated top-label confidence (the raw top probability without calibration)."""
    if len(probs) == 0:
        return np.zeros(0)
    if calibration is None:
        return probs[:, 0]
    top, _ = scaled(probs, calibration.n_labels, calibration.temperature)
    return top[:, 0]


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: sum over equal-width confidence bins of (share of items) x |accuracy - confidence|.

    Bin b holds confidences in ((b - 1) / bins, b / bins]; a confidence of 0 falls in the first."""
    n = len(confidence)
    if n == 0:
        return float("nan")
    which = np.clip(np.ceil(np.asarray(confidence) * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.sum() / n * abs(right[members].mean() - confidence[members].mean())
    return float(total)


def calibrate(validation: SplitResult, labels: Sequence[str], validation_gold: Sequence[str],
              test: SplitResult | None = None, test_gold: Sequence[str] = ()) -> Calibration:
    """Fit the temperature on the validation result; the ECE before and after, on validation and test."""
    if not validation.top_probs:
        raise ValueError("no label probabilities were kept for this candidate: nothing to calibrate")
    n_labels = len(labels)
    probs = top_probabilities(validation)
    temperature = fit_temperature(probs, gold_positions(validation, labels, validation_gold), n_labels)
    fitted = Calibration("temperature", n_labels, len(probs), (0.0, 0.0), temperature=temperature)

    def ece_pair(result: SplitResult, gold: Sequence[str]) -> tuple[float, float]:
        p, ok = top_probabilities(result), correct(result, labels, gold)
        return (expected_calibration_error(p[:, 0], ok), expected_calibration_error(confidences(fitted, p), ok))

    tested = test is not None and bool(test.top_probs) and bool(test_gold)
    return replace(fitted, ece_validation=ece_pair(validation, validation_gold),
                   ece_test=ece_pair(test, test_gold) if tested else None)
