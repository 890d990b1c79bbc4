"""The statistics of a fair comparison: intervals, paired tests and their correction, verdicts, seeds, margins.

Every comparison of the lab is paired: two variants classified the same test images, so the same images are
resampled for both (bootstrap) and only the images they disagree on count (McNemar). Over several seeds the seed is
the unit that repeats the experiment: the per-seed differences get a one-sample t-test and interval, so more seeds
can only sharpen the answer. A difference is called real only when the multiple-comparison-corrected test and the
interval agree. A variant is *within the margin* (non-inferior) when its interval rules out a loss larger than it.
"""

from __future__ import annotations

import numpy as np


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of an accuracy of `correct` out of `n` (sound near 0 and 1, unlike the normal one)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(correct, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def paired_delta(correct_a: np.ndarray, correct_b: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> dict[str, float]:
    """Accuracy of a minus accuracy of b in percentage points, with a paired bootstrap percentile interval.

    Both vectors say, per test image, whether the model got it right; each resample draws the same images for both.
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise ValueError(f"paired comparison needs two equal, non-empty vectors, got {a.shape} and {b.shape}")
    diff = a.astype(np.int8) - b.astype(np.int8)
    rng = np.random.default_rng(seed)
    means = np.concatenate([diff[rng.integers(0, diff.size, (chunk, diff.size))].mean(axis=1)
                            for chunk in _chunks(resamples, max(1, 4_000_000 // diff.size))])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"delta_pp": 100 * float(diff.mean()), "low_pp": 100 * float(low), "high_pp": 100 * float(high)}


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test on the images only one of the two models got right; p = 1 when they never disagree."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = 1.0 if a_only + b_only == 0 else float(mcnemar([[0, a_only], [b_only, 0]], exact=True).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the given order: the family of comparisons of one run.

    The k-th smallest of m p-values is multiplied by m − k + 1, made non-decreasing, and capped at 1: the values
    of statsmodels' multipletests(method="holm") (the tests check they agree), which calls gc.collect() on every
    Holm correction and so costs about 90 ms in a process holding TensorFlow.
    """
    p = np.asarray(p_values, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(p[order] * np.arange(p.size, 0, -1)), 1.0)
    return [float(x) for x in adjusted]


def verdict(delta: dict[str, float], p_adjusted: float, alpha: float = 0.05) -> str:
    """"better", "worse" or "no measurable difference": a direction only when the corrected test rejects and the
    paired interval lies on one side of zero."""
    if p_adjusted < alpha and delta["low_pp"] > 0:
        return "better"
    if p_adjusted < alpha and delta["high_pp"] < 0:
        return "worse"
    return "no measurable difference"


def median_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Median of repeated timings with a distribution-free interval from order statistics (binomial)."""
    from scipy.stats import binom

    x = np.sort(np.asarray(samples, float))
    rank = max(int(binom.ppf((1 - confidence) / 2, x.size, 0.5)), 1)  # 1-based rank of the lower bound
    return float(np.median(x)), float(x[rank - 1]), float(x[x.size - rank])


def speedup_interval(times_a: np.ndarray, times_b: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """How many times faster b is than a (median a / median b), with a bootstrap percentile interval."""
    a, b = np.asarray(times_a, float), np.asarray(times_b, float)
    rng = np.random.default_rng(seed)
    ratios = (np.median(a[rng.integers(0, a.size, (resamples, a.size))], axis=1)
              / np.median(b[rng.integers(0, b.size, (resamples, b.size))], axis=1))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(np.median(a) / np.median(b)), float(low), float(high)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (0 for a single seed)."""
    x = np.asarray(values, float)
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def mean_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds with a Student-t interval: what another seed's run would average to (a point for one seed)."""
    from scipy.stats import t

    x = np.asarray(values, float)
    mean = float(x.mean())
    if x.size < 2:
        return mean, mean, mean
    half = float(t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


MARGIN_PP = 1.0  # the default non-inferiority margin, in percentage points of accuracy


def seed_test(deltas_pp: list[float], within_pp: list[float], confidence: float = 0.95) -> dict[str, float]:
    """A difference repeated over seeds (two or more): its mean with a Student-t interval and the two-sided p-value
    of a one-sample t-test against zero.

    `within_pp` is each seed's own standard error (from the test set alone). The spread of the seeds' differences
    is taken no smaller than their typical own error: with few seeds on a test set of a thousand images, two seeds
    can land on the same difference (-0.20 and -0.20 pp), and a t-test on no spread would call that certain.
    """
    from scipy.stats import t

    x = np.asarray(deltas_pp, float)
    spread = max(float(x.std(ddof=1)), float(np.sqrt(np.mean(np.square(within_pp)))))
    mean, error = float(x.mean()), spread / np.sqrt(x.size)
    if error == 0:  # every seed identical and certain: two identical models
        return {"delta_pp": mean, "low_pp": mean, "high_pp": mean, "p_value": 1.0 if mean == 0 else 0.0}
    half = float(t.ppf((1 + confidence) / 2, x.size - 1)) * error
    p = 2 * float(t.sf(abs(mean) / error, x.size - 1))
    return {"delta_pp": mean, "low_pp": mean - half, "high_pp": mean + half, "p_value": p}


def standard_error(test: dict[str, float], confidence: float = 0.95) -> float:
    """The standard error of one paired comparison, read back from its interval (pp)."""
    from scipy.stats import norm

    return (test["high_pp"] - test["low_pp"]) / (2 * float(norm.ppf((1 + confidence) / 2)))


TOO_FEW_SEEDS = "too few seeds to tell"


def seed_verdict(delta: dict[str, float], p_adjusted: float, margin_pp: float = MARGIN_PP) -> str:
    """The verdict over seeds: a direction as `verdict` gives it; else "no measurable difference" only when the
    seeds' interval stays within ±`margin_pp`, and "too few seeds to tell" when it reaches past it.

    A test that finds nothing is evidence of no difference only when its interval is narrow. With three seeds the
    t-interval has two degrees of freedom and the test is corrected over the whole family, so a loss of 7 pp in
    every seed can go uncalled: that is the seeds' number speaking, not the method.
    """
    found = verdict(delta, p_adjusted)
    if found == "no measurable difference" and (delta["low_pp"] <= -margin_pp or delta["high_pp"] >= margin_pp):
        return TOO_FEW_SEEDS
    return found


def seed_family(per_seed: dict[str, list[dict[str, float]]],
                margin_pp: float = MARGIN_PP) -> dict[str, dict[str, float | str]]:
    """The comparisons of one run repeated over seeds (each seed's paired test, by variant): each variant's
    seed_test, its p-value Holm-corrected over the family, and its verdict (seed_verdict) at the summary's margin."""
    tests = {name: seed_test([t["delta_pp"] for t in seeds], [standard_error(t) for t in seeds])
             for name, seeds in per_seed.items()}
    for test, p in zip(tests.values(), holm([t["p_value"] for t in tests.values()]), strict=True):
        test.update(p_holm=p, verdict=seed_verdict(test, p, margin_pp))
    return tests


def within_margin(low_pp: float, margin_pp: float = MARGIN_PP) -> bool:
    """Non-inferior: the lower end of the difference's interval lies above −margin (a larger loss is ruled out)."""
    return low_pp > -margin_pp
