"""The statistics of a fair comparison: intervals of accuracies, of paired differences (one seed, and over seeds),
of speed-ups, and the seeds a comparison would need.

Every comparison of the lab is paired: two variants classified the same test images, so the same images are
resampled for both (bootstrap), and an exact McNemar test on the images they disagree on is kept as each seed's
evidence. Over several seeds the seed is the unit that repeats the experiment, and the test set is shared by every
seed: the interval over seeds (`seed_interval`) holds both. What the intervals mean in words is
labkit.results.verdicts.
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


MARGIN_PP = 1.0  # the default non-inferiority margin, in percentage points of accuracy


def seed_interval(differences: list[np.ndarray], same_images: bool = True,
                  confidence: float = 0.95) -> dict[str, float]:
    """A paired difference repeated over seeds (two or more), with an interval that holds both sources of chance.

    `differences` holds, per seed, each test image's paired difference (1: only the variant right, -1: only the
    other, 0: both or neither). The mean over seeds varies by retraining and by the test set. The seeds' own spread
    (s²) holds retraining and the test-set noise each seed draws alone; what the seeds share, because they were
    tested on the same images, never shows in that spread, so the mean covariance of the seeds' test-set errors
    (C, read image by image) is added: SE² = s²/n + C (see `_half_width` for the t-quantile). Simulated labs
    (labkit.results.simulate) show it covers at the level claimed where a t over the seeds alone covered 41–65 %
    when the seeds' test-set errors were shared. `same_images` false (seeds tested on different subsets) drops C.
    """
    x = [100 * np.asarray(d, float) for d in differences]
    means = np.array([d.mean() for d in x])
    n = means.size
    if n < 2:
        raise ValueError("an interval over seeds needs two seeds or more")
    spread = float(means.var(ddof=1))
    shared = _shared_covariance(np.stack(x)) if same_images and len({d.size for d in x}) == 1 else 0.0
    half, mean = _half_width(spread, shared, n, confidence), float(means.mean())
    return {"delta_pp": mean, "low_pp": mean - half, "high_pp": mean + half, "seeds": n, "seeds_var_pp2": spread,
            "shared_var_pp2": shared}


def _half_width(spread: float, shared: float, n: int, confidence: float = 0.95) -> float:
    """Half the width of the interval over n seeds: the t-quantile times √(s²/n + C).

    C comes from ten thousand images and is nearly exact; s² from n seeds is not. The degrees of freedom are
    Satterthwaite's, with s² taken at its 75 % upper confidence bound: plugging the observed s² in, which with
    two degrees of freedom is often far too small, made the quantile too small exactly when the interval was
    already too narrow (90.8 % coverage in the simulated labs); with the bound every simulated setting covered
    94–97 %. With C = 0 this is Student's t on n − 1 degrees of freedom.
    """
    from scipy.stats import chi2, t

    between = spread / n
    if between + shared == 0:
        return 0.0
    upper = between * (n - 1) / float(chi2.ppf(0.25, n - 1))
    df = float("inf") if upper == 0 else (upper + shared) ** 2 / (upper ** 2 / (n - 1))
    return float(t.ppf((1 + confidence) / 2, df)) * float(np.sqrt(between + shared))


def _shared_covariance(x: np.ndarray) -> float:
    """The mean covariance, over pairs of seeds (rows), of their mean differences' test-set errors (images are the
    columns): what testing every seed on the same images adds to the variance of their mean. At least 0."""
    n, images = x.shape
    centred = x - x.mean(axis=1, keepdims=True)
    covariance = centred @ centred.T / (images - 1) / images
    return max(0.0, float((covariance.sum() - np.trace(covariance)) / (n * (n - 1))))


def seeds_to_decide(test: dict[str, float], margin_pp: float = MARGIN_PP, confidence: float = 0.95,
                    most: int = 100) -> int | None:
    """How many seeds would likely put the interval clear of 0 or of −margin (whichever is further from the
    difference), were the difference and both variances what these seeds showed; None when no number of seeds up
    to `most` would (the shared test-set error alone is too wide: a larger test set would)."""
    room = max(abs(test["delta_pp"]), abs(test["delta_pp"] + margin_pp))
    return next((n for n in range(test["seeds"] + 1, most + 1)
                 if _half_width(test["seeds_var_pp2"], test["shared_var_pp2"], n, confidence) < room), None)


def within_margin(low_pp: float, margin_pp: float = MARGIN_PP) -> bool:
    """Non-inferior: the lower end of the difference's interval lies above −margin (a larger loss is ruled out)."""
    return low_pp > -margin_pp
