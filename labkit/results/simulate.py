"""Simulated labs with a known truth: the evidence that the intervals and verdicts claim what they say.

A simulated lab trains a variant and its control again per seed and tests both on one test set shared by every
seed, as the lab does. Each seed's true difference is Δ plus a retraining effect (between-seed spread τ); each test
image's paired outcome (only the variant right: +1, only the control: −1, else 0) is drawn around it. A share
`shared` of the disagreements belongs to the image, not the seed: the same images go the same way in every seed
(hard images a compressed model keeps missing), which is what makes the seeds' test-set errors shared. The truth
is Δ; an interval covers when it holds Δ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labkit.results import stats, verdicts


@dataclass(frozen=True)
class Lab:
    """One simulated setting: true Δ and between-seed spread τ in pp, seeds, test images, the share of disagreements
    an image shares over seeds, and how often the two models disagree on an image (large enough that a seed's Δ,
    up to |Δ| + 3τ, never has to be clipped: 0.3 holds Δ and τ of a few pp at a shared share up to 0.8)."""

    delta_pp: float
    spread_pp: float
    seeds: int
    images: int = 10_000
    shared: float = 0.5
    disagree: float = 0.3


def differences(lab: Lab, rng: np.random.Generator) -> np.ndarray:
    """One simulated lab's paired per-image differences, a row per seed (int8: −1, 0, +1)."""
    own = 1 - lab.shared
    truth = (lab.delta_pp + lab.spread_pp * rng.standard_normal((lab.seeds, 1))) / 100
    lean = np.clip(truth / own, -lab.disagree, lab.disagree)  # the seed's own disagreements carry its Δ
    image = rng.choice(np.array([-1, 0, 1], np.int8), size=lab.images,
                       p=[lab.disagree / 2, 1 - lab.disagree, lab.disagree / 2])
    draw = rng.random((lab.seeds, lab.images))
    seed_own = np.where(draw < (lab.disagree + lean) / 2, 1, np.where(draw > 1 - (lab.disagree - lean) / 2, -1, 0))
    return np.where(rng.random((lab.seeds, lab.images)) < lab.shared, image, seed_own).astype(np.int8)


def run(lab: Lab, labs: int = 2000, margin_pp: float = stats.MARGIN_PP, seed: int = 0,
        interval: Callable[[list[np.ndarray]], dict[str, float]] = stats.seed_interval) -> dict[str, float]:
    """`labs` simulated labs of one setting, each judged as the lab judges its seeds (`interval`, by default
    stats.seed_interval, and verdicts.verdict): how often the interval held the true Δ, how often it read "worse"
    (any of the worse verdicts), and how often it was within the margin."""
    rng = np.random.default_rng(seed)
    covered = worse = within = 0
    for _ in range(labs):
        test = interval(list(differences(lab, rng)))
        covered += test["low_pp"] <= lab.delta_pp <= test["high_pp"]
        worse += test["high_pp"] < 0
        within += verdicts.verdict(test["low_pp"], test["high_pp"], margin_pp) in verdicts.NO_MEASURABLE_COST + (
            verdicts.WORSE_WITHIN,)
    return {"coverage": covered / labs, "worse": worse / labs, "within_margin": within / labs}
