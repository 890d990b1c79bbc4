"""Verdicts are read from the interval printed beside them, in one vocabulary, and the intervals over seeds cover
the truth at the level they claim in simulated labs with a known truth."""

from __future__ import annotations

import pytest

from labkit.results import simulate, verdicts


@pytest.mark.parametrize("low, high, expected", [
    (0.1, 0.9, verdicts.BETTER),
    (-0.5, 0.4, verdicts.WITHIN),
    (0.0, 0.0, verdicts.WITHIN),  # two identical models
    (-0.9, -0.2, verdicts.WORSE_WITHIN),
    (-1.5, 0.4, verdicts.UNDECIDED),
    (-1.20, -0.29, verdicts.WORSE),  # clustered-8 in the three-seed run of 2f734a0
    (-10.38, -3.69, verdicts.WORSE_BEYOND),  # clustered-4 there, which read "too few seeds to tell"
])
def test_the_verdict_is_where_the_interval_lies_against_zero_and_the_margin(low, high, expected):
    assert verdicts.verdict(low, high, 1.0) == expected


def test_the_margin_moves_the_verdict_and_within_margin_agrees_with_it():
    test = {"delta_pp": -0.4, "low_pp": -0.75, "high_pp": -0.05}
    assert verdicts.judge(test, 1.0)["verdict"] == verdicts.WORSE_WITHIN and verdicts.judge(test, 1.0)["within_margin"]
    assert verdicts.judge(test, 0.5)["verdict"] == verdicts.WORSE and not verdicts.judge(test, 0.5)["within_margin"]


def test_a_variant_still_recovering_is_shown_as_a_bound():
    said = verdicts.judge({"delta_pp": -0.67, "low_pp": -1.09, "high_pp": -0.25}, 1.0, still_recovering=True)["said"]
    assert said == "worse; still recovering: at least -0.67 pp"


def test_the_evidence_says_what_every_seed_showed_with_its_own_test():
    seeds = [{"delta_pp": d, "low_pp": d - 0.5, "high_pp": d + 0.5, "p_value": p}
             for d, p in ((-7.46, 3e-80), (-5.53, 2e-69), (-8.12, 1e-90))]
    test = {"delta_pp": -7.04, "low_pp": -10.38, "high_pp": -3.69, "per_seed": seeds}
    assert verdicts.judge(test)["evidence"] == "worse in 3 of 3 seeds (each McNemar p < 1e-68)"
    mixed = [*seeds[:2], {"delta_pp": 0.1, "low_pp": -0.3, "high_pp": 0.5, "p_value": 0.6}]
    assert verdicts.evidence({"per_seed": mixed}) == "worse in 2 of 3 seeds (each McNemar p < 1e-68)"
    assert verdicts.evidence(seeds[2]) == "one seed, McNemar p = 1e-90"
    underflow = [{**t, "p_value": 0.0} for t in seeds]  # clustered-2's 38 pp loss: p below the smallest float
    assert verdicts.evidence({"per_seed": underflow}) == "worse in 3 of 3 seeds (each McNemar p < 1e-300)"


def test_an_undecided_comparison_over_seeds_says_how_many_seeds_would_decide_it():
    test = {"delta_pp": -0.5, "low_pp": -1.6, "high_pp": 0.6, "seeds": 3, "seeds_var_pp2": 0.2,
            "shared_var_pp2": 0.001}
    judged = verdicts.judge(test)
    assert judged["verdict"] == verdicts.UNDECIDED and judged["seeds_needed"] > 3
    assert judged["said"] == f"undecided; about {judged['seeds_needed']} seeds would decide it"
    assert verdicts.tally([verdicts.WORSE, verdicts.WITHIN, verdicts.WORSE]) == "1 within the margin, 2 worse"


SETTINGS = [  # (true Δ pp, between-seed spread pp, share of disagreements the seeds' test set shares)
    (0.0, 0.3, 0.5), (0.0, 0.0, 0.8), (-1.0, 1.0, 0.5), (-1.0, 0.3, 0.0),
]


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize("delta, spread, shared", SETTINGS)
def test_intervals_over_seeds_cover_the_truth_at_their_level(seeds, delta, spread, shared):
    """2,000 simulated labs of 10,000 test images: a per-comparison 95 % interval holds the true Δ in 93–97 % of
    them, and at Δ = 0 no more than 5 % read "worse"."""
    found = simulate.run(simulate.Lab(delta, spread, seeds, shared=shared), labs=2000, seed=seeds)
    assert 0.93 <= found["coverage"] <= 0.97
    if delta == 0:
        assert found["worse"] <= 0.05
