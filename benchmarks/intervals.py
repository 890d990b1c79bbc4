"""Do the intervals over seeds claim what they say? Simulated labs with a known truth (labkit.results.simulate).

For each setting (seeds, between-seed spread, share of the test set's error the seeds share), 2,000 simulated labs
of 10,000 test images: how often the lab's 95 % interval over seeds holds the true Δ, how often a harmless
variant (Δ = 0) reads "worse", how often it is shown within the 1 pp margin, and how often a 2 pp loss reads
worse; beside them the coverage of a Student t over the seeds' differences alone, which leaves out the error the
seeds share. `python benchmarks/intervals.py` prints the table (about two minutes on 2 cores).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from labkit.results import simulate


def t_over_seeds(differences: list[np.ndarray]) -> dict[str, float]:
    """The t-interval of the seeds' mean differences alone (what a reader might compute from the seeds' table)."""
    from scipy.stats import t

    means = np.array([100 * d.mean() for d in differences])
    half = float(t.ppf(0.975, means.size - 1) * means.std(ddof=1) / np.sqrt(means.size))
    return {"low_pp": means.mean() - half, "high_pp": means.mean() + half}


def coverage_table(labs: int = 2000) -> pd.DataFrame:
    """One row per setting: the lab's interval's coverage, false "worse" rate and power, and a t's coverage."""
    rows = []
    for seeds, spread, shared in itertools.product((3, 5), (0.0, 0.3, 1.0), (0.0, 0.5, 0.8)):
        harmless, loss = simulate.Lab(0.0, spread, seeds, shared=shared), simulate.Lab(-2.0, spread, seeds,
                                                                                       shared=shared)
        at_zero, at_loss = simulate.run(harmless, labs, seed=1), simulate.run(loss, labs, seed=2)
        rows.append({"seeds": seeds, "spread τ (pp)": spread, "shared": shared,
                     "coverage (Δ = 0)": at_zero["coverage"], "coverage (Δ = −2)": at_loss["coverage"],
                     "reads worse at Δ = 0": at_zero["worse"], "within margin at Δ = 0": at_zero["within_margin"],
                     "worse at Δ = −2": at_loss["worse"],
                     "t over seeds: coverage (Δ = 0)": simulate.run(harmless, labs, seed=1,
                                                                    interval=t_over_seeds)["coverage"]})
    return pd.DataFrame(rows).set_index(["seeds", "spread τ (pp)", "shared"])


if __name__ == "__main__":
    print(coverage_table().to_string(float_format="{:.3f}".format))
