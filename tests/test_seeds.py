"""Runs over several seeds combine into one record per variant, with verdicts only where every seed agrees."""

import json

import numpy as np
import pytest

from labkit import LabkitError
from labkit.records import KERAS, Context
from labkit.results import report, seeds, stats


def record(name, accuracy, delta=None, p=1.0, half=0.2):
    r = {"name": name, "method": "clustering" if name != "control" else "none", "params": {},
         "metrics": {"accuracy": accuracy, "top_5": 0.99}, "accuracy_interval": [accuracy - 0.005, accuracy + 0.005],
         "accuracy_change_pp": 0.0, "size": {"zipped_bytes": 100, "times_smaller": 9.0}, "test_samples": 10_000,
         "latency": {"median_ms": 1.0, "iqr_ms": 0.0}, "files": []}
    if delta is not None:
        r["vs_control"] = {"control": "control", "delta_pp": delta, "low_pp": delta - half, "high_pp": delta + half,
                           "p_value": p, "a_only": 1, "b_only": 1}
    return r


def runs(deltas, p=1e-6, half=0.2):
    return {seed: [record("control", 0.90), record("clustered-2", 0.90 + d / 100, d, p, half)]
            for seed, d in enumerate(deltas, 1)}


def test_mean_interval_is_students_t():
    mean, low, high = stats.mean_interval([1.0, 2.0, 3.0])  # sd 1, t(0.975, 2) = 4.3027
    assert mean == 2.0 and high - mean == pytest.approx(4.3027 / 3 ** 0.5, abs=1e-4) and mean - low == high - mean
    assert stats.mean_interval([0.5]) == (0.5, 0.5, 0.5)


def test_one_seed_is_returned_as_it_is():
    one = {7: [record("control", 0.9)]}
    assert seeds.combine(one) == one[7] and seeds.count(one[7][0]) == 1


def test_combined_record_holds_means_spread_and_every_seed():
    combined = {r["name"]: r for r in seeds.combine(runs([-1.0, -1.2, -0.8]))}
    r = combined["clustered-2"]
    assert r["metrics"]["accuracy"] == pytest.approx(0.89) and r["metrics"]["top_5"] == pytest.approx(0.99)
    assert r["by_seed"]["seeds"] == [1, 2, 3] and r["by_seed"]["accuracy_std"] == pytest.approx(0.002)
    assert r["accuracy_interval"] == (pytest.approx(0.883), pytest.approx(0.897))  # envelope of the seeds'
    assert r["vs_control"]["delta_pp"] == pytest.approx(-1.0) and r["vs_control"]["delta_std_pp"] == pytest.approx(0.2)
    assert r["vs_control"]["verdict"] == "worse" and r["by_seed"]["verdicts"] == ["worse"] * 3
    # t = -1 / (0.2 / √3) = -8.66 on 2 degrees of freedom: p = 0.0131 (scipy), one comparison so Holm keeps it
    assert r["vs_control"]["p_holm"] == pytest.approx(0.01307, abs=1e-4)
    assert r["vs_control"]["test"] == "t-test over seeds"
    assert report.tested(list(combined.values()))["clustered-2"]["verdict"] == "worse"  # not re-corrected
    assert seeds.count(r) == 3


@pytest.mark.parametrize("deltas, p, half", [
    ([-1.0, -1.2, 0.1], 1e-6, 0.2),   # one seed disagrees
    ([-3.0, -0.1, -0.1], 1e-6, 0.05),  # every seed alone says worse, but the spread over seeds reaches zero
])
def test_a_direction_needs_the_seeds_to_agree(deltas, p, half):
    combined = {r["name"]: r for r in seeds.combine(runs(deltas, p, half))}
    # no direction, and not "no measurable difference" either: the seeds' interval reaches past the 1 pp margin
    assert combined["clustered-2"]["vs_control"]["verdict"] == stats.TOO_FEW_SEEDS


def test_the_verdict_over_seeds_is_made_at_the_summarys_margin():
    # mean 0, sd 0.3 pp: the t-interval ±0.75 pp stays within a 1 pp margin but reaches past a 0.5 pp one
    deltas = [-0.3, 0.0, 0.3]
    at = {m: {r["name"]: r for r in seeds.combine(runs(deltas, p=1.0, half=0.1), m)}["clustered-2"]["vs_control"]
          for m in (1.0, 0.5)}
    assert at[1.0]["verdict"] == "no measurable difference" and at[0.5]["verdict"] == stats.TOO_FEW_SEEDS
    assert -1.0 < at[1.0]["low_pp"] < -0.5


def test_seeds_whose_own_tests_miss_a_small_loss_call_it_together():
    # five seeds each losing 0.5 pp, none of whose own tests rejects (±0.6 pp intervals, p about 0.1): together
    # they show the loss. Their own error (0.31 pp) stands in for the spread the identical differences lack:
    # t = -0.5 / (0.306 / √5) = -3.65 on 4 degrees of freedom, p = 0.022
    r = {r["name"]: r for r in seeds.combine(runs([-0.5] * 5, p=0.1, half=0.6))}["clustered-2"]
    assert r["by_seed"]["verdicts"] == ["no measurable difference"] * 5
    assert r["vs_control"]["verdict"] == "worse" and r["vs_control"]["high_pp"] < 0
    assert r["vs_control"]["p_holm"] == pytest.approx(0.0218, abs=5e-4)
    # three of the same seeds are not yet enough: more seeds can only sharpen the answer
    three = {r["name"]: r for r in seeds.combine(runs([-0.5] * 3, p=0.1, half=0.6))}["clustered-2"]
    assert three["vs_control"]["verdict"] == stats.TOO_FEW_SEEDS and three["vs_control"]["low_pp"] < -1
    assert three["vs_control"]["high_pp"] - three["vs_control"]["low_pp"] > r["vs_control"]["high_pp"] - r[
        "vs_control"]["low_pp"]


def test_two_seeds_landing_on_the_same_difference_are_not_certain():
    # on 1,000 test images differences come in steps of 0.1 pp: two seeds at -0.20 pp have no spread at all
    r = {r["name"]: r for r in seeds.combine(runs([-0.2, -0.2], p=1.0, half=1.1))}["clustered-2"]
    assert r["vs_control"]["verdict"] == stats.TOO_FEW_SEEDS and r["vs_control"]["low_pp"] < -1


def test_families_of_variants_as_good_as_their_control_are_rarely_called_different():
    # 2,000 runs of three seeds and five variants whose seed-to-seed differences are pure noise (0.3 pp)
    rng = np.random.default_rng(7)
    def seed(delta):  # each seed's own paired test: ±0.1 pp on its test set, small beside the seeds' spread
        return {"delta_pp": delta, "low_pp": delta - 0.1, "high_pp": delta + 0.1}

    families = [stats.seed_family({f"v{k}": [seed(x) for x in d] for k, d in enumerate(rng.normal(0, 0.3, (5, 3)))})
                for _ in range(2000)]
    false = sum(any(t["verdict"] in ("better", "worse") for t in family.values()) for family in families)
    assert false / 2000 <= 0.05  # family-wise, thanks to Holm over the five t-tests
    uncorrected = sum(any(t["p_value"] < 0.05 for t in family.values()) for family in families)
    assert uncorrected / 2000 > 0.15  # without it, one variant in five would be called in about 23 % of runs


def test_three_seeds_that_each_lose_several_points_are_not_called_the_same():
    # the committed three-seed run: clustered-4 lost 7.46 / 5.53 / 8.12 pp (each seed's McNemar p < 1e-68) among 13
    # comparisons; the t-test over seeds (two degrees of freedom), Holm-corrected, names no direction (p 0.16), and
    # its interval (-10.4 ... -3.7 pp) says why: the seeds are too few, not the loss too small. clustered-16's
    # -0.44 / -0.08 / +0.00 pp stays within the margin: there no measurable difference is what was measured.
    def seed(delta):
        return {"delta_pp": delta, "low_pp": delta - 0.4, "high_pp": delta + 0.4}

    family = {"clustered-4": [-7.46, -5.53, -8.12], "clustered-16": [-0.44, -0.08, 0.0],
              **{f"v{k}": [-0.1, 0.0, 0.1] for k in range(11)}}
    tests = stats.seed_family({name: [seed(d) for d in deltas] for name, deltas in family.items()})
    assert tests["clustered-4"]["verdict"] == stats.TOO_FEW_SEEDS and tests["clustered-4"]["high_pp"] < 0
    assert tests["clustered-4"]["p_holm"] > 0.05
    assert tests["clustered-16"]["verdict"] == "no measurable difference"


def test_identical_variants_over_seeds_are_never_different():
    combined = {r["name"]: r for r in seeds.combine(runs([0.0, 0.0, 0.0], p=1.0))}
    assert combined["clustered-2"]["vs_control"]["verdict"] == "no measurable difference"


def test_a_variant_missing_in_one_seed_is_left_out():
    runs_ = runs([-1.0, -1.0, -1.0])
    runs_[2] = runs_[2][:1]
    assert [r["name"] for r in seeds.combine(runs_)] == ["control"]


def keyed(records, seed, train_samples=600):
    """The records as one run with `train_samples` made them: the control's key, the variant's naming its control."""
    context = Context({"name": "fashion-mnist", "sha256": "f" * 64}, {"train_samples": train_samples}, seed, KERAS,
                      {"source": "trained here", "file": f"base-s{seed}.keras", "sha256": f"{seed}" * 64})
    control, variant = records
    control["key"] = context.key({"epochs": 1})
    variant["key"] = context.key({"clusters": 2}, control)
    return records


def write(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / f"{r['name']}.json").write_text(json.dumps(r))


def test_seed_folders_are_found_and_loaded(tmp_path):
    for seed, records in runs([-1.0, -1.1, -0.9]).items():
        write(seeds.folder(tmp_path, seed), keyed(records, seed))
    (tmp_path / "seed-x").mkdir()
    (tmp_path / "notebooks").mkdir()
    assert seeds.seeds_in(tmp_path) == [1, 2, 3]
    table = seeds.table(seeds.load(tmp_path))
    assert list(table.index) == ["control", "clustered-2"]
    assert table.loc["clustered-2", "Δ vs control, seed 2 (pp)"] == "-1.10 (worse, p 1e-06)"
    assert table.loc["clustered-2", "within 1 pp"] == "no"  # its interval reaches −1.25 pp
    assert table.loc["clustered-2", "Δ mean ± std (pp)"] == "-1.00 ± 0.10"


def test_only_the_seeds_asked_for_are_summarised(tmp_path):
    for seed, records in runs([-1.0, -1.1, -0.9]).items():
        write(seeds.folder(tmp_path, seed), keyed(records, seed, train_samples=600 if seed < 3 else 3000))
    assert seeds.load(tmp_path, [1, 2])[1]["by_seed"]["seeds"] == [1, 2]
    with pytest.raises(LabkitError, match="seeds 1 and 3 .*selection.train_samples 600 → 3000"):
        seeds.load(tmp_path)


def test_records_of_two_runs_in_one_folder_are_not_combined(tmp_path):
    control, _ = keyed(runs([-1.0, -1.0, -1.0])[1], 1, train_samples=600)
    _, variant = keyed(runs([-1.0, -1.0, -1.0])[1], 1, train_samples=3000)
    write(seeds.folder(tmp_path, 1), [control, variant])
    with pytest.raises(LabkitError, match=r"seed-1 mixes runs: clustered-2 made from other data or another base "
                                          r"than control \(selection.train_samples 600 → 3000\)") as err:
        seeds.load(tmp_path)
    assert "\n" not in str(err.value) and "--results-path" in str(err.value)


def test_a_record_without_a_key_or_compared_with_another_control_is_refused(tmp_path):
    records = keyed(runs([-1.0, -1.0, -1.0])[1], 1)
    del records[1]["key"]
    write(seeds.folder(tmp_path, 1), records)
    with pytest.raises(LabkitError, match="clustered-2 were made by an older labkit, without a key"):
        seeds.load(tmp_path)
    records = keyed(runs([-1.0, -1.0, -1.0])[1], 1)
    records[0]["key"]["variant"]["epochs"] = 2  # the control was made again, with another budget
    write(seeds.folder(tmp_path, 1), records)
    with pytest.raises(LabkitError, match="clustered-2 was compared with another control than the one in the folder"):
        seeds.load(tmp_path)


def test_no_records_is_one_line(tmp_path):
    with pytest.raises(LabkitError, match="no variant records under .*seed-\\*: run `python -m labkit run"):
        seeds.load(tmp_path)
