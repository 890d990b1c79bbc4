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


def test_identical_predictions_are_never_different():
    correct = np.random.default_rng(1).random(5000) < 0.9
    delta = stats.paired_delta(correct, correct)
    test = stats.mcnemar_test(correct, correct)
    assert delta == {"delta_pp": 0.0, "low_pp": 0.0, "high_pp": 0.0} and test["p_value"] == 1.0


def test_over_seeds_tested_on_independent_images_the_interval_is_students_t():
    # no shared images (each seed its own test set): SE² = s²/n and n − 1 degrees of freedom, the textbook t
    rng = np.random.default_rng(2)
    seeds = [np.where(rng.random(4000) < 0.05, np.where(rng.random(4000) < 0.4, 1, -1), 0) for _ in range(3)]
    test = stats.seed_interval(seeds, same_images=False)
    means = np.array([100 * s.mean() for s in seeds])
    half = 4.302652729911275 * means.std(ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert test["shared_var_pp2"] == 0.0 and test["delta_pp"] == pytest.approx(means.mean())
    assert (test["low_pp"], test["high_pp"]) == pytest.approx((means.mean() - half, means.mean() + half))


def test_seeds_tested_on_the_same_images_add_their_shared_error():
    # three seeds that miss the same 80 images and differ on 0-2 more: their spread is tiny, but the test set they
    # share has its own error, which a t over the seeds alone would leave out
    rng = np.random.default_rng(4)
    common = np.zeros(10_000, np.int8)
    common[rng.choice(10_000, 80, replace=False)] = -1
    seeds = []
    for extra in (0, 1, 2):
        own = common.copy()
        own[rng.choice(np.flatnonzero(common == 0), extra, replace=False)] = -1
        seeds.append(own)
    shared = stats.seed_interval(seeds)
    alone = stats.seed_interval(seeds, same_images=False)
    assert shared["shared_var_pp2"] == pytest.approx(0.8 * 0.992 / 10_000 * 100, rel=0.05)  # p(1 − p)/N in pp²
    assert shared["high_pp"] - shared["low_pp"] > 3 * (alone["high_pp"] - alone["low_pp"])
    assert shared["low_pp"] < -0.81 < -0.8 < shared["high_pp"]


def test_seeds_to_decide_grows_with_the_spread_and_stops_at_the_shared_error():
    test = {"delta_pp": -0.8, "seeds": 3, "seeds_var_pp2": 0.6, "shared_var_pp2": 0.001}
    needed = stats.seeds_to_decide(test)
    assert needed is not None and needed > 3
    assert stats.seeds_to_decide({**test, "seeds_var_pp2": 2.4}) > needed
    # the test set alone is wider than the room to either side: no number of seeds decides it
    assert stats.seeds_to_decide({**test, "seeds_var_pp2": 0.0, "shared_var_pp2": 0.2}) is None


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
