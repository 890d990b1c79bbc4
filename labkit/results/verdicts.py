"""Verdicts: what a comparison says in words, read from the one interval printed beside it.

The 95 % interval of Δ (variant − control, in pp) is placed against 0 and against −margin, as in the
non-inferiority map of CONSORT's extension for non-inferiority trials (Piaggio et al., JAMA 2012, Figure 1). No
other statistic decides a verdict, so a table can never print an interval that excludes a value beside a verdict
that does not. Each interval is a per-comparison 95 % one (the family is named where the comparisons are listed):
at Δ = 0 a comparison reads "worse" in at most 2.5 % of labs (labkit.results.simulate measures it).
"""

from __future__ import annotations

import math
from typing import Any

from labkit.results import stats

BETTER = "better"  # the whole interval above 0
WITHIN = "within the margin"  # holds 0, rules out a loss larger than the margin
WORSE_WITHIN = "worse but within the margin"  # below 0, above −margin
UNDECIDED = "undecided"  # holds both 0 and −margin: the data cannot tell yet
WORSE = "worse"  # below 0, may or may not lose more than the margin
WORSE_BEYOND = "worse by more than the margin"  # the whole interval below −margin
ORDER = [BETTER, WITHIN, WORSE_WITHIN, UNDECIDED, WORSE, WORSE_BEYOND]
NO_MEASURABLE_COST = (BETTER, WITHIN)

Test = dict[str, Any]
READING = ("How to read a verdict: each is where the 95 % interval of the variant's accuracy change against its "
           "control lies, against 0 and against the −{margin} pp margin: *better* (above 0), *within the margin* "
           "(holds 0, rules out a loss beyond the margin), *worse but within the margin*, *undecided* (holds both 0 "
           "and −{margin} pp: the data cannot tell yet), *worse*, *worse by more than the margin*. Each interval is "
           "a per-comparison 95 % one: were every method harmless, about one comparison in 40 would still read "
           "worse, so among fifteen a lone worse one may be chance.")


def verdict(low_pp: float, high_pp: float, margin_pp: float = stats.MARGIN_PP) -> str:
    """Where the interval [low, high] of Δ lies against 0 and −margin, in the lab's six words."""
    if low_pp > 0:
        return BETTER
    if low_pp > -margin_pp:
        return WITHIN if high_pp >= 0 else WORSE_WITHIN
    if high_pp >= 0:
        return UNDECIDED
    return WORSE if high_pp > -margin_pp else WORSE_BEYOND


def judge(test: Test, margin_pp: float = stats.MARGIN_PP, still_recovering: bool = False) -> Test:
    """A comparison with its verdict at the margin, whether it is within the margin, what its seeds showed one by
    one (`evidence`), how many seeds would likely decide it when undecided (`seeds_needed`), and `said`: the verdict
    as tables print it. A variant stopped at its fine-tuning maximum while still gaining would only have come
    closer to its control: its Δ is a lower bound, and `said` says so."""
    found = verdict(test["low_pp"], test["high_pp"], margin_pp)
    needed = stats.seeds_to_decide(test, margin_pp) if found == UNDECIDED and "seeds_var_pp2" in test else None
    said = found + (f"; still recovering: at least {test['delta_pp']:+.2f} pp" if still_recovering else "")
    if found == UNDECIDED and "seeds_var_pp2" in test:
        said += f"; about {needed} seeds would decide it" if needed else "; more seeds alone would not decide it"
    return {**test, "verdict": found, "said": said, "margin_pp": margin_pp, "still_recovering": still_recovering,
            "within_margin": stats.within_margin(test["low_pp"], margin_pp), "seeds_needed": needed,
            "evidence": evidence(test)}


def evidence(test: Test) -> str:
    """What each seed's own comparison showed (its paired interval, its McNemar p): "worse in 3 of 3 seeds (each
    McNemar p < 1e-68)"; for one seed its own interval and p."""
    per_seed = test.get("per_seed") or [test]
    if len(per_seed) == 1:
        return f"one seed, McNemar p = {per_seed[0]['p_value']:.2g}" if "p_value" in per_seed[0] else "one seed"
    ways = [_way(t) for t in per_seed]
    parts = []
    for way in ("worse", "better"):
        if found := [t for t, w in zip(per_seed, ways, strict=True) if w == way]:
            parts.append(f"{way} in {len(found)} of {len(per_seed)} seeds ({_each_p(found)})")
    return "; ".join(parts) or f"no seed differs by its own interval ({len(per_seed)} seeds)"


def _way(test: Test) -> str:
    return "better" if test["low_pp"] > 0 else "worse" if test["high_pp"] < 0 else ""


def _each_p(tests: list[Test]) -> str:
    """The largest McNemar p of the seeds that agree, as a bound: "each McNemar p < 1e-68", "McNemar p = 0.003"."""
    if not all("p_value" in t for t in tests):
        return "by their intervals"
    largest = max(t["p_value"] for t in tests)
    head = "each McNemar p" if len(tests) > 1 else "McNemar p"
    if largest < 1e-3:  # below 1e-300 a p-value underflows to 0
        return f"{head} < 1e-{-math.ceil(math.log10(max(largest, 1e-300)))}"
    return f"{head} {'≤' if len(tests) > 1 else '='} {largest:.2g}"


def tally(verdicts: list[str]) -> str:
    """How many comparisons got each verdict, in the vocabulary's order: "2 within the margin, 1 worse"."""
    return ", ".join(f"{verdicts.count(v)} {v}" for v in ORDER if v in verdicts)
