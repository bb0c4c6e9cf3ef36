"""evals.calibration: the ECE and temperature scaling by hand, and a fit that recovers a known temperature."""

from __future__ import annotations

import numpy as np
import pytest

from evals.calibration import (calibrate, confidences, expected_calibration_error, fit_temperature, gold_positions,
                               negative_log_likelihood, scaled)
from evals.metrics import score
from evals.record import Calibration, SplitResult


def test_ece_by_hand():
    confidence = np.array([0.95, 0.90, 0.62, 0.61, 0.30])
    right = np.array([True, False, True, False, False])

    # 15 bins of width 1/15: 0.95, 0.90 and 0.30 sit alone, 0.62 and 0.61 share (9/15, 10/15].
    # Each bin adds its share of items x |accuracy - mean confidence|.
    by_hand = 0.2 * 0.05 + 0.2 * 0.90 + 0.4 * abs(0.5 - 0.615) + 0.2 * 0.30
    assert expected_calibration_error(confidence, right) == pytest.approx(by_hand) == pytest.approx(0.296)
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([False, True])) == 0.0


def test_temperature_scaling_spreads_the_missing_mass_by_hand():
    # Two kept labels of four: 0.2 is missing, 0.1 for each other label. T = 0.5 squares them all:
    # 0.25, 0.09, 0.01, 0.01 -> sum 0.36.
    top, rest = scaled(np.array([[0.5, 0.3]]), n_labels=4, temperature=0.5)
    assert top[0] == pytest.approx([0.25 / 0.36, 0.09 / 0.36])
    assert rest[0] == pytest.approx(0.01 / 0.36)
    assert top.sum() + 2 * rest[0] == pytest.approx(1.0)
    same, _ = scaled(np.array([[0.5, 0.3]]), n_labels=4, temperature=1.0)
    assert same[0] == pytest.approx([0.5, 0.3])
    # The gold label outside the kept ones gets the rest share: -log(0.01 / 0.36).
    nll = negative_log_likelihood(np.array([[0.5, 0.3]]), np.array([-1]), 4, 0.5)
    assert nll == pytest.approx(-np.log(0.01 / 0.36))


def _overconfident(n: int, n_labels: int, sharpen: float, seed: int):
    """Labels drawn from softmax(z); the model reports softmax(sharpen * z): temperature `sharpen` undoes it."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, n_labels))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    gold = np.array([rng.choice(n_labels, p=row) for row in truth])
    reported = np.exp(sharpen * z) / np.exp(sharpen * z).sum(axis=1, keepdims=True)
    return reported, gold


def _result(reported: np.ndarray, gold: np.ndarray, labels: list[str]) -> tuple[SplitResult, list[str]]:
    gold_labels = [labels[g] for g in gold]
    predictions = [labels[i] for i in reported.argmax(axis=1)]
    distributions = [dict(zip(labels, row)) for row in reported]
    return SplitResult.of(score(gold_labels, predictions, labels), predictions, labels,
                          distributions=distributions), gold_labels


def test_the_fit_recovers_a_known_temperature_and_halves_the_ece():
    labels = [f"l{i}" for i in range(12)]  # more labels than the 8 kept: the rest share matters
    validation, val_gold = _result(*_overconfident(3000, 12, 3.0, seed=1), labels)
    test, test_gold = _result(*_overconfident(3000, 12, 3.0, seed=2), labels)

    calibration = calibrate(validation, labels, val_gold, test, test_gold)

    assert calibration.temperature == pytest.approx(3.0, rel=0.15)
    before, after = calibration.ece_test
    assert after <= before / 2
    assert calibration.ece_validation[1] <= calibration.ece_validation[0] / 2
    assert calibration.fitted_on == 3000 and calibration.n_labels == 12


def test_temperature_is_the_nll_minimum():
    labels = [f"l{i}" for i in range(5)]
    validation, gold = _result(*_overconfident(800, 5, 0.5, seed=3), labels)  # underconfident: T < 1
    probs = np.array(validation.top_probs)
    positions = gold_positions(validation, labels, gold)
    fitted = fit_temperature(probs, positions, 5)
    assert fitted < 1.0
    best = negative_log_likelihood(probs, positions, 5, fitted)
    for other in (fitted * 0.9, fitted * 1.1):
        assert negative_log_likelihood(probs, positions, 5, other) > best


def test_confidences_without_calibration_are_the_top_probabilities():
    probs = np.array([[0.7, 0.2], [0.4, 0.4]])
    assert list(confidences(None, probs)) == [0.7, 0.4]
    warm = Calibration("temperature", 3, 2, (0.0, 0.0), temperature=2.0)
    # 0.7, 0.2, 0.1 -> square roots 0.837, 0.447, 0.316
    assert confidences(warm, probs)[0] == pytest.approx(0.7 ** 0.5 / (0.7 ** 0.5 + 0.2 ** 0.5 + 0.1 ** 0.5))
