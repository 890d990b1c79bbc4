"""The comparison statistics against textbook values, and verdicts that never call a tie a win."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from labkit.results import stats


def test_wilson_interval_matches_the_closed_form():
    low, high = stats.accuracy_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    p, n, z = 81 / 263, 263, 1.959963984540054
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z / (1 + z * z / n) * math.sqrt(
        p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_exact_mcnemar_is_the_binomial_test_of_the_disagreements():
    a = np.array([True] * 1 + [False] * 9 + [True] * 50)  # a alone right on 1 image, b alone right on 9
    b = np.array([False] * 1 + [True] * 9 + [True] * 50)
    result = stats.mcnemar_test(a, b)
    assert (result["a_only"], result["b_only"]) == (1, 9)
    assert result["p_value"] == pytest.approx(0.021484375)
    assert result["p_value"] == pytest.approx(binomtest(1, 10, 0.5).pvalue)


def test_holm_against_a_hand_computed_example_and_statsmodels():
    from statsmodels.stats.multitest import multipletests

    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([]) == []
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 12):
        p = list(rng.uniform(0, 0.2, size)) + [0.04] * (size > 4)  # ties too
        assert stats.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)


def test_identical_predictions_are_never_different():
    correct = np.random.default_rng(1).random(5000) < 0.9
    delta = stats.paired_delta(correct, correct)
    test = stats.mcnemar_test(correct, correct)
    assert delta == {"delta_pp": 0.0, "low_pp": 0.0, "high_pp": 0.0} and test["p_value"] == 1.0
    assert stats.verdict(delta, test["p_value"]) == "no measurable difference"


def test_a_variant_as_good_as_its_control_is_not_declared_different_over_many_seeds():
    """Same accuracy, different mistakes: with Holm over 5 variants, a false "better"/"worse" must be rare."""
    false_calls = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        control = rng.random(2000) < 0.9
        variants = [rng.random(2000) < 0.9 for _ in range(5)]
        deltas = [stats.paired_delta(v, control, resamples=500, seed=seed) for v in variants]
        adjusted = stats.holm([stats.mcnemar_test(v, control)["p_value"] for v in variants])
        false_calls += any(stats.verdict(d, p) != "no measurable difference" for d, p in zip(deltas, adjusted,
                                                                                              strict=True))
    assert false_calls <= 4  # the family-wise error rate is held at 5 %


def test_clear_differences_are_called_in_the_right_direction():
    rng = np.random.default_rng(0)
    control = rng.random(10_000) < 0.85
    better = control | (rng.random(10_000) < 0.35)  # fixes about a third of the control's mistakes: +5 pp
    worse = control & (rng.random(10_000) < 0.94)
    for variant, expected in ((better, "better"), (worse, "worse")):
        delta = stats.paired_delta(variant, control)
        p = stats.holm([stats.mcnemar_test(variant, control)["p_value"]])[0]
        assert delta["low_pp"] <= delta["delta_pp"] <= delta["high_pp"]
        assert stats.verdict(delta, p) == expected


def test_bootstrap_is_deterministic_for_a_seed_and_rejects_unpaired_input():
    rng = np.random.default_rng(3)
    a, b = rng.random(1000) < 0.8, rng.random(1000) < 0.8
    assert stats.paired_delta(a, b, seed=7) == stats.paired_delta(a, b, seed=7)
    with pytest.raises(ValueError, match="two equal, non-empty vectors"):
        stats.paired_delta(a, b[:10])


def test_median_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(300):
        sample = rng.lognormal(0.0, 0.5, 200)  # true median exp(0) = 1
        median, low, high = stats.median_interval(sample)
        assert low <= median <= high
        hits += low <= 1.0 <= high
    assert hits / 300 >= 0.9


def test_speedup_interval_contains_the_true_ratio():
    rng = np.random.default_rng(0)
    slow, fast = rng.lognormal(np.log(2.0), 0.1, 300), rng.lognormal(0.0, 0.1, 300)
    ratio, low, high = stats.speedup_interval(slow, fast)
    assert low <= 2.0 <= high and low <= ratio <= high


def test_mean_and_spread_over_seeds():
    assert stats.mean_std([0.9]) == (0.9, 0.0)
    mean, std = stats.mean_std([0.89, 0.90, 0.91])
    assert mean == pytest.approx(0.90) and std == pytest.approx(0.01)
