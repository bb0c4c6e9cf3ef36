"""Learning curves: how accuracy grows with labelled rows, and what more rows would add.

The curve is the inverse power law ``accuracy(n) = a - b * n ** -c`` (b >= 0, c > 0, a <= 1),
the usual model of classifier learning curves (Figueroa et al. 2012; Hestness et al. 2017):
``a`` is the accuracy with unlimited rows, ``c`` how fast the gap closes.

The fit is deterministic and needs no starting guess: for a fixed ``c`` the model is linear in
(a, b), so least squares solves it exactly (with the bounds as active constraints); ``c`` is
searched on a log grid and then refined by bounded Brent search around the best grid point.
Unweighted: at these sizes the spread between retrainings on different rows, not the binomial
noise of one score, dominates, and it is largest at the small fractions, so weighting by the
binomial variance would trust the smallest fraction most.

Intervals come from a bootstrap over the scored items: every retraining was scored on the same
items, so resampling the items (jointly for all points) and refitting keeps the correlation
between the points. They are intervals of the curve through this training sample's points, not
of a retraining on other rows; the ``check`` (fitted without the largest point, predicting it)
shows how well that holds on the user's own data.

Torch-free; numpy and scipy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from evals.metrics import wilson_interval
from evals.record import CurveCheck, CurveFit, CurvePoint, Estimate, LearningCurve

C_BOUNDS = (0.01, 3.0)  # exponents seen in practice lie well inside (0.05..1.5 in the papers above)
_GRID = np.geomspace(*C_BOUNDS, 400)
BOOTSTRAP_REPLICATES = 1000
BAND_POINTS = 40
MIN_POINTS = 3  # three parameters


@dataclass(frozen=True)
class Measured:
    """One retraining: its training rows, and for each scored item whether it was right."""

    fraction: float
    train_rows: int
    correct: Sequence[bool]
    compute_dollars: float = 0.0


def _solve(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares (a, b) of y = a - b * x for each row of ``x`` (shape (..., P)), with b >= 0
    and a <= 1; returns (a, b, sse), each of shape (...)."""
    xm, ym = x.mean(-1, keepdims=True), y.mean(-1, keepdims=True)
    sxx = ((x - xm) ** 2).sum(-1)
    sxy = ((x - xm) * (y - ym)).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(sxx > 0, -sxy / sxx, 0.0)
    b = np.maximum(b, 0.0)  # accuracy may not fall with more rows: flat is the nearest allowed curve
    a = ym[..., 0] + b * xm[..., 0]
    over = a > 1.0
    if np.any(over):  # accuracy cannot pass 100%: a = 1, and b by least squares with a fixed
        sx2 = (x ** 2).sum(-1)
        b_fixed = np.maximum(((1.0 - y) * x).sum(-1) / np.where(sx2 > 0, sx2, 1.0), 0.0)
        a, b = np.where(over, 1.0, a), np.where(over, b_fixed, b)
    sse = ((y - (a[..., None] - b[..., None] * x)) ** 2).sum(-1)
    return a, b, sse


def fit_curve(rows: Sequence[float], accuracy: Sequence[float]) -> CurveFit:
    """The inverse power law through (rows, accuracy) points; needs at least 3 distinct sizes."""
    from scipy.optimize import minimize_scalar

    n = np.asarray(rows, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if len(set(n.tolist())) < MIN_POINTS:
        raise ValueError(f"a learning curve needs at least {MIN_POINTS} different training sizes, got {len(set(n))}")
    if np.any(n <= 0):
        raise ValueError("training sizes must be positive")

    def sse(c: float) -> float:
        return float(_solve(n ** -c, y)[2])

    grid = np.array([sse(c) for c in _GRID])
    best = int(grid.argmin())
    lo, hi = _GRID[max(best - 1, 0)], _GRID[min(best + 1, len(_GRID) - 1)]
    refined = minimize_scalar(sse, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    c = float(refined.x) if refined.fun <= grid[best] else float(_GRID[best])
    a, b, total = (float(v) for v in _solve(n ** -c, y))
    return CurveFit(a=a, b=b, c=c, fitted_points=len(n), rmse=math.sqrt(total / len(n)))


def _grid_fits(n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, c) of the best grid fit for each row of ``y`` (shape (R, P)): the bootstrap's fits."""
    x = n[None, :] ** -_GRID[:, None]  # (C, P)
    a, b, sse = _solve(np.broadcast_to(x, (len(y), *x.shape)), y[:, None, :])  # (R, C)
    best = sse.argmin(1)
    rows = np.arange(len(y))
    return a[rows, best], b[rows, best], _GRID[best]


def _bootstrap(points: Sequence[Measured], seed: int, replicates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refits on item resamples: every point's accuracy recomputed on the same resampled items."""
    correct = np.asarray([list(p.correct) for p in points], dtype=float)  # (P, items)
    rng = np.random.default_rng(seed)
    items = correct.shape[1]
    counts = rng.multinomial(items, np.full(items, 1.0 / items), size=replicates)  # (R, items)
    accuracy = counts @ correct.T / items  # (R, P)
    return _grid_fits(np.asarray([p.train_rows for p in points], dtype=float), accuracy)


def _estimate(value: float, samples: np.ndarray) -> Estimate:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    # The point estimate is the exact fit; a percentile interval of the grid fits may miss it by
    # the grid's resolution, so it is widened to contain it.
    return Estimate(value, min(float(lo), value), max(float(hi), value))


def _check_shared_items(points: Sequence[Measured]) -> None:
    sizes = {len(p.correct) for p in points}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError("every point of a learning curve must be scored on the same (non-empty) items")


def predict(points: Sequence[Measured], at_rows: float, *, seed: int = 0,
            replicates: int = BOOTSTRAP_REPLICATES) -> tuple[CurveFit, Estimate]:
    """The curve through ``points`` and its accuracy at ``at_rows`` training rows, with interval."""
    _check_shared_items(points)
    fit = fit_curve([p.train_rows for p in points], [_accuracy(p) for p in points])
    a, b, c = _bootstrap(points, seed, replicates)
    return fit, _estimate(fit.at(at_rows), a - b * at_rows ** -c)


def _accuracy(point: Measured) -> float:
    return sum(point.correct) / len(point.correct)


def learning_curve(points: Sequence[Measured], *, candidate: str, number: int | None, method: str, split: str,
                   measures: str, more_rows: int, seed: int = 0,
                   replicates: int = BOOTSTRAP_REPLICATES) -> LearningCurve:
    """The measured points, the curve through them, what ``more_rows`` more rows would add, the
    band to draw, and the check on the largest point (with 4 points or more)."""
    _check_shared_items(points)
    points = sorted(points, key=lambda p: p.train_rows)
    measured = tuple(CurvePoint(p.fraction, p.train_rows, _accuracy(p),
                                wilson_interval(sum(p.correct), len(p.correct)), len(p.correct),
                                round(p.compute_dollars, 8)) for p in points)
    fit = gain = at_more = check = None
    band: tuple[tuple[float, float, float, float], ...] = ()
    if len({p.train_rows for p in points}) >= MIN_POINTS:
        now = points[-1].train_rows
        fit = fit_curve([p.train_rows for p in points], [_accuracy(p) for p in points])
        a, b, c = _bootstrap(points, seed, replicates)
        later = now + more_rows
        at_more = _estimate(fit.at(later), a - b * later ** -c)
        gain = _estimate(fit.at(later) - fit.at(now), (a - b * later ** -c) - (a - b * now ** -c))
        sizes = np.geomspace(points[0].train_rows, max(later, 2 * now), BAND_POINTS)
        band = tuple((float(s), fit.at(s), *(float(q) for q in np.percentile(a - b * s ** -c, [2.5, 97.5])))
                     for s in sizes)
        smaller = [p for p in points if p.train_rows < now]
        if len({p.train_rows for p in smaller}) >= MIN_POINTS:
            _, predicted = predict(smaller, now, seed=seed, replicates=replicates)
            check = CurveCheck(now, predicted, _accuracy(points[-1]))
    return LearningCurve(candidate=candidate, number=number, method=method, split=split, measures=measures,
                         points=measured, fit=fit, more_rows=more_rows, gain=gain, at_more=at_more, band=band,
                         check=check, created=datetime.now(timezone.utc).isoformat(timespec="seconds"), seed=seed)


def check_fractions(fractions: Sequence[float]) -> list[float]:
    """Distinct fractions in (0, 1], ascending; 1 (all rows) is always measured."""
    bad = [f for f in fractions if not (0 < f <= 1) or math.isnan(f)]
    if bad:
        raise ValueError(f"--fractions: {bad[0]:g} is outside (0, 1]: each is a share of the training rows")
    return sorted(set(fractions) | {1.0})
