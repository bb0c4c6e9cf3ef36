import math
import time

import numpy as np
import pytest
from evals.metrics import (
    INVALID,
    accuracy_metric,
    bootstrap_ci,
    encode,
    macro_f1_metric,
    mcnemar,
    paired_difference,
    score,
    unpaired_difference,
    wilson_interval,
)

LABELS = ["a", "b", "c"]
GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]


def test_score_matches_hand_computed_values():
    s = score(GOLD, PRED, LABELS)

    assert s.n == 6
    assert s.accuracy == pytest.approx(4 / 6)
    # Per class (tp / predicted, tp / support, 2tp / (support + predicted)):
    # a: 2/2, 2/3, 4/5   b: 1/2, 1/2, 2/4   c: 1/2, 1/1, 2/3
    assert s.per_class["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert s.per_class["b"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert s.per_class["c"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    assert s.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert s.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert s.confusion_columns == LABELS
    assert s.accuracy_ci[0] <= s.accuracy <= s.accuracy_ci[1]


def test_invalid_answers_are_wrong_and_get_their_own_column():
    s = score(["a", "b", "c"], ["a", None, "not-a-label"], LABELS)

    assert s.accuracy == pytest.approx(1 / 3)
    assert s.confusion == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    assert s.confusion_columns == [*LABELS, INVALID]
    # b and c were never predicted: F1 0 (zero_division=0); a is perfect.
    assert s.macro_f1 == pytest.approx(1 / 3)
    assert s.to_dict()["confusion"][1] == [0, 0, 0, 1]


def test_macro_f1_agrees_with_sklearn_on_random_data():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    labels = [f"l{i}" for i in range(7)]
    gold = [labels[i] for i in rng.integers(0, 7, 500)]
    pred = [labels[i] if i < 7 else None for i in rng.integers(0, 8, 500)]

    ours = score(gold, pred, labels, n_boot=10).macro_f1
    theirs = f1_score(
        gold, [p or INVALID for p in pred], labels=labels, average="macro", zero_division=0
    )
    assert ours == pytest.approx(theirs)


def test_vectorised_macro_f1_equals_row_by_row():
    rng = np.random.default_rng(2)
    g = rng.integers(0, 5, size=(20, 50))
    p = rng.integers(0, 6, size=(20, 50))  # 5 = invalid

    rows = macro_f1_metric(g, p, 5)
    assert rows == pytest.approx([macro_f1_metric(g[i], p[i], 5) for i in range(20)])


def test_to_dict_is_json_friendly():
    import json

    d = score(GOLD, PRED, LABELS, n_boot=50).to_dict()
    assert json.loads(json.dumps(d))["accuracy_ci"] == list(d["accuracy_ci"])


def test_length_mismatch_and_unknown_gold_are_errors():
    with pytest.raises(ValueError, match="6 items"):
        encode(GOLD, PRED[:-1], LABELS)
    with pytest.raises(ValueError, match="not in the label set"):
        encode(["z"], ["a"], LABELS)


def _items(n: int, accuracy: float) -> tuple[list[str], list[str]]:
    wrong = int(round(n * (1 - accuracy)))
    gold = [LABELS[i % 3] for i in range(n)]
    pred = [LABELS[(i + 1) % 3] if i < wrong else g for i, g in enumerate(gold)]
    return gold, pred


def test_bootstrap_contains_estimate_narrows_with_n_and_is_deterministic():
    small = bootstrap_ci(*_items(100, 0.8), accuracy_metric, n_boot=1000, seed=0)
    large = bootstrap_ci(*_items(2000, 0.8), accuracy_metric, n_boot=1000, seed=0)

    assert small[0] < 0.8 < small[1]
    assert large[0] < 0.8 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 3  # width ~ 1/sqrt(n)
    assert bootstrap_ci(*_items(100, 0.8), accuracy_metric, n_boot=1000, seed=0) == small
    assert bootstrap_ci(*_items(100, 0.8), accuracy_metric, n_boot=1000, seed=1) != small


def test_bootstrap_is_fast():
    rng = np.random.default_rng(0)
    labels = [f"l{i}" for i in range(40)]
    gold = [labels[i] for i in rng.integers(0, 40, 2000)]
    pred = [labels[i] for i in rng.integers(0, 40, 2000)]

    # CPU time, not wall time: other processes on a busy CI machine must not fail this.
    start = time.process_time()
    bootstrap_ci(gold, pred, accuracy_metric, labels=labels, n_boot=1000)
    bootstrap_ci(gold, pred, macro_f1_metric, labels=labels, n_boot=1000)
    assert time.process_time() - start < 1.0


def _pairs(both_right: int, only_a: int, only_b: int, both_wrong: int):
    """Gold and two prediction lists with the given 2x2 table of right/wrong."""
    gold, a, b = [], [], []
    for n, a_ok, b_ok in [
        (both_right, True, True),
        (only_a, True, False),
        (only_b, False, True),
        (both_wrong, False, False),
    ]:
        gold += ["a"] * n
        a += ["a" if a_ok else "b"] * n
        b += ["a" if b_ok else None] * n
    return gold, a, b


def test_mcnemar_exact_branch():
    t = mcnemar(*_pairs(3, 5, 1, 1))

    assert (t.b, t.c, t.method) == (5, 1, "exact")
    # Two-sided binomial, n=6: 2 x P(X <= 1) = 2 x (1 + 6) / 64.
    assert t.p_value == pytest.approx(14 / 64)


def test_mcnemar_chi_square_branch():
    t = mcnemar(*_pairs(50, 30, 10, 5))

    assert (t.b, t.c, t.method) == (30, 10, "chi2")
    # Continuity-corrected: (|30 - 10| - 1)^2 / 40 = 9.025; chi2(1) tail = erfc(sqrt(x / 2)).
    assert t.statistic == pytest.approx(9.025)
    assert t.p_value == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))


def test_mcnemar_without_disagreement():
    t = mcnemar(*_pairs(4, 0, 0, 2))
    assert (t.b, t.c, t.p_value) == (0, 0, 1.0)


def test_wilson_interval_by_hand_and_never_of_zero_width():
    # 81 of 263: centre (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).
    z, n, p = 1.959963984540054, 263, 81 / 263
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson_interval(81, n) == pytest.approx((centre - half, centre + half))
    # 0 of 24 and 24 of 24: the percentile bootstrap says [0, 0] and [1, 1]; Wilson does not.
    lo, hi = wilson_interval(0, 24)
    assert lo == pytest.approx(0.0) and hi == pytest.approx(0.1380, abs=1e-4)
    lo, hi = wilson_interval(24, 24)
    assert lo == pytest.approx(0.8620, abs=1e-4) and hi == pytest.approx(1.0)
    assert score(["a"] * 24, ["b"] * 24, LABELS).accuracy_ci[1] > 0.1  # the scores use it


def test_unpaired_difference_matches_newcombes_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10 (hybrid score).
    d = unpaired_difference(56, 70, 48, 80)
    assert (d.delta, d.lo, d.hi) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)
    d = unpaired_difference(9, 10, 3, 10)
    assert (d.lo, d.hi) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    assert not d.paired


def test_paired_difference_by_hand():
    # 2x2 table of (A right, B right): both 59, only A 6, only B 16, neither 80 (n = 161).
    a = [True] * 59 + [True] * 6 + [False] * 16 + [False] * 80
    b = [True] * 59 + [False] * 6 + [True] * 16 + [False] * 80
    n, p1, p2 = 161, 65 / 161, 75 / 161
    l1, u1 = wilson_interval(65, n)
    l2, u2 = wilson_interval(75, n)
    cross = 59 * 80 - 6 * 16 - n / 2  # above n/2: continuity-corrected
    phi = cross / math.sqrt(65 * 96 * 75 * 86)
    lo = (p1 - p2) - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    hi = (p1 - p2) + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)

    d = paired_difference(a, b)

    assert (d.delta, d.lo, d.hi) == pytest.approx((p1 - p2, lo, hi))
    assert d.paired and d.n == 161 and (d.test.b, d.test.c) == (6, 16)
    # Pairing narrows the interval: the same accuracies on different items are less certain.
    unpaired = unpaired_difference(65, n, 75, n)
    assert d.hi - d.lo < unpaired.hi - unpaired.lo


def test_macro_f1_averages_over_labels_that_occur_like_sklearn():
    # "c" is in the label set but neither in gold nor predicted: it must not count as F1 = 0,
    # or every bootstrap resample that misses a class would drag the interval below the estimate.
    from sklearn.metrics import f1_score

    from evals.metrics import score

    gold = ["a", "a", "b", "b", "a"]
    pred = ["a", "b", "b", "b", "a"]
    scores = score(gold, pred, ["a", "b", "c"], n_boot=200)
    assert scores.macro_f1 == pytest.approx(f1_score(gold, pred, average="macro"))
    assert scores.macro_f1_ci[0] <= scores.macro_f1 <= scores.macro_f1_ci[1]
