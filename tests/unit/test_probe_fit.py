"""optimizer.recipes.probe.fit_probe: the weights it folds into a head's output layer give, on
raw features, the probabilities of a logistic regression on standardised features, with a bias
(BERT's classifier) or without one (Llama's score), for two labels or many, and a label with no
training row is never predicted."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from optimizer.recipes.probe import PROBE_C, fit_probe


def clustered(n_labels: int, seed: int = 0):
    """Features like a model's: offset, unevenly scaled, one noisy cluster per label."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_labels, 12))
    labels = rng.integers(0, n_labels, size=300)
    scales = rng.uniform(0.1, 20.0, size=12)
    return (centres[labels] + rng.normal(scale=0.8, size=(300, 12))) * scales + 5.0, labels


def softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("n_labels", [2, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_the_folded_head_predicts_what_the_fitted_probe_predicts(n_labels, bias):
    x, y = clustered(n_labels)
    weight, offset, accuracy = fit_probe(x, y, n_labels, bias=bias)
    logits = x @ weight.T + (offset if bias else 0.0)
    reference = make_pipeline(StandardScaler(with_mean=bias),
                              LogisticRegression(C=PROBE_C, max_iter=1000, fit_intercept=bias)).fit(x, y)
    assert np.allclose(softmax(logits), reference.predict_proba(x), atol=1e-4)
    assert accuracy == pytest.approx(reference.score(x, y)) and accuracy > 0.8
    assert (offset is None) == (not bias)


def test_a_label_without_training_rows_is_never_predicted():
    x, y = clustered(3)
    weight, offset, _ = fit_probe(x, y, 4, bias=True)  # label 3 has no row
    assert not weight[3].any()
    assert ((x @ weight.T + offset).argmax(1) != 3).all()
