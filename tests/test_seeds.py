"""Runs over several seeds combine into one record per variant: means over the seeds, and the comparison with the
control repeated per seed, with an interval over the seeds read from every seed's predictions."""

import json

import numpy as np
import pytest

from labkit import LabkitError
from labkit.records import KERAS, Context
from labkit.results import evaluate, report, seeds, verdicts

IMAGES = 10_000


def record(name, accuracy, vs_control=None):
    r = {"name": name, "method": "clustering" if name != "control" else "none", "params": {},
         "metrics": {"accuracy": accuracy, "top_5": 0.99}, "accuracy_interval": [accuracy - 0.005, accuracy + 0.005],
         "accuracy_change_pp": 0.0, "size": {"zipped_bytes": 100, "times_smaller": 9.0}, "test_samples": IMAGES,
         "latency": {"median_ms": 1.0, "iqr_ms": 0.0}, "files": []}
    if vs_control is not None:
        r["vs_control"] = vs_control
    return r


def runs(results, deltas, shared=False):
    """One seed folder per Δ (pp) under `results`: the control right on 90 % of the same test images in every seed,
    the variant losing Δ of them (on images chosen per seed, or the same ones in every seed when `shared`), each
    seed's predictions written and its own paired test in its record."""
    labels = np.arange(IMAGES) % 10
    rng = np.random.default_rng(0)
    right = rng.random(IMAGES) < 0.9
    common = rng.permutation(np.flatnonzero(right))
    found = {}
    for seed, delta in enumerate(deltas, 1):
        folder = seeds.folder(results, seed)
        folder.mkdir(parents=True, exist_ok=True)
        lost = (common if shared else rng.permutation(np.flatnonzero(right)))[:round(-delta * IMAGES / 100)]
        variant = right.copy()
        variant[lost] = False
        for name, correct in (("control", right), ("clustered-2", variant)):
            evaluate.write_predictions(folder, name, np.where(correct, labels, (labels + 1) % 10), labels)
        found[seed] = [record("control", 0.90), record("clustered-2", variant.mean(),
                                                       evaluate.versus(folder, "clustered-2", "control"))]
    return found


def judged(results, deltas, margin_pp=1.0, shared=False):
    combined = {r["name"]: r for r in seeds.combine(runs(results, deltas, shared), results)}
    return combined["clustered-2"], report.tested(list(combined.values()), margin_pp)["clustered-2"]


def test_one_seed_is_returned_as_it_is(tmp_path):
    one = {7: [record("control", 0.9)]}
    assert seeds.combine(one, tmp_path) == one[7] and seeds.count(one[7][0]) == 1


def test_combined_record_holds_means_spread_and_every_seed(tmp_path):
    r, test = judged(tmp_path, [-1.0, -1.2, -0.8])
    assert r["metrics"]["accuracy"] == pytest.approx(0.89, abs=5e-3) and r["metrics"]["top_5"] == pytest.approx(0.99)
    assert r["by_seed"]["seeds"] == [1, 2, 3] and r["by_seed"]["delta_pp"] == pytest.approx([-1.0, -1.2, -0.8])
    assert r["vs_control"]["delta_pp"] == pytest.approx(-1.0) and r["vs_control"]["delta_std_pp"] == pytest.approx(0.2)
    assert test["verdict"] == verdicts.WORSE and test["evidence"].startswith("worse in 3 of 3 seeds")
    assert r["vs_control"]["test"] == "over seeds" and seeds.count(r) == 3


def test_three_seeds_that_each_lose_several_points_are_called_worse_by_more_than_the_margin(tmp_path):
    # the committed three-seed run of 2f734a0: clustered-4 lost 7.46 / 5.53 / 8.12 pp (each seed's McNemar p <
    # 1e-68) and read "too few seeds to tell" beside an interval of -10.38 … -3.69 pp, from a Holm-corrected t-test
    r, test = judged(tmp_path, [-7.46, -5.53, -8.12])
    assert test["high_pp"] < -1 and test["verdict"] == verdicts.WORSE_BEYOND
    assert test["evidence"].startswith("worse in 3 of 3 seeds (each McNemar p < 1e-")


def test_the_verdict_over_seeds_is_made_at_the_summarys_margin(tmp_path):
    r, _ = judged(tmp_path, [-0.55, -0.6, -0.65], shared=True)
    at = {m: verdicts.judge(r["vs_control"], m)["verdict"] for m in (1.0, 0.5)}
    assert at == {1.0: verdicts.WORSE_WITHIN, 0.5: verdicts.WORSE}


def test_seeds_missing_the_same_images_share_their_test_sets_error(tmp_path):
    # clustered-8 of the same run: -0.73 / -0.79 / -0.71 pp. Where each seed loses the same images, the spread
    # of three seeds says nothing about the test set they share; the interval still holds its error
    apart, _ = judged(tmp_path / "apart", [-0.73, -0.79, -0.71])
    together, test = judged(tmp_path / "together", [-0.73, -0.79, -0.71], shared=True)
    assert together["vs_control"]["shared_var_pp2"] > 50 * apart["vs_control"]["shared_var_pp2"]
    assert test["high_pp"] - test["low_pp"] > 0.2 and test["verdict"] == verdicts.WORSE_WITHIN


def test_an_undecided_variant_says_how_many_seeds_would_decide_it(tmp_path):
    r, test = judged(tmp_path, [-0.2, -1.3, -0.4])
    assert test["verdict"] == verdicts.UNDECIDED and test["seeds_needed"] > 3
    assert f"about {test['seeds_needed']} seeds would decide it" in test["said"]


def test_identical_variants_over_seeds_are_within_the_margin(tmp_path):
    _, test = judged(tmp_path, [0.0, 0.0, 0.0])
    assert (test["low_pp"], test["high_pp"], test["verdict"]) == (0.0, 0.0, verdicts.WITHIN)


def test_a_variant_missing_in_one_seed_is_left_out(tmp_path):
    runs_ = runs(tmp_path, [-1.0, -1.0, -1.0])
    runs_[2] = runs_[2][:1]
    assert [r["name"] for r in seeds.combine(runs_, tmp_path)] == ["control"]


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
    for seed, records in runs(tmp_path, [-1.0, -1.1, -0.9]).items():
        write(seeds.folder(tmp_path, seed), keyed(records, seed))
    (tmp_path / "seed-x").mkdir()
    (tmp_path / "notebooks").mkdir()
    assert seeds.seeds_in(tmp_path) == [1, 2, 3]
    table = seeds.table(seeds.load(tmp_path))
    assert list(table.index) == ["control", "clustered-2"]
    assert table.loc["clustered-2", "Δ vs control, seed 2 (pp)"] == "-1.10 (worse)"  # its own interval reaches −1.3 pp
    assert table.loc["clustered-2", "within 1 pp"] == "no"  # its interval over the seeds reaches below −1 pp
    assert table.loc["clustered-2", "Δ mean ± std (pp)"] == "-1.00 ± 0.10"
    assert table.loc["clustered-2", "verdict over seeds"] == verdicts.WORSE


def test_only_the_seeds_asked_for_are_summarised(tmp_path):
    for seed, records in runs(tmp_path, [-1.0, -1.1, -0.9]).items():
        write(seeds.folder(tmp_path, seed), keyed(records, seed, train_samples=600 if seed < 3 else 3000))
    assert seeds.load(tmp_path, [1, 2])[1]["by_seed"]["seeds"] == [1, 2]
    with pytest.raises(LabkitError, match="seeds 1 and 3 .*selection.train_samples 600 → 3000"):
        seeds.load(tmp_path)


def test_records_of_two_runs_in_one_folder_are_not_combined(tmp_path):
    control, _ = keyed(runs(tmp_path, [-1.0, -1.0, -1.0])[1], 1, train_samples=600)
    _, variant = keyed(runs(tmp_path, [-1.0, -1.0, -1.0])[1], 1, train_samples=3000)
    write(seeds.folder(tmp_path, 1), [control, variant])
    with pytest.raises(LabkitError, match=r"seed-1 mixes runs: clustered-2 made from other data or another base "
                                          r"than control \(selection.train_samples 600 → 3000\)") as err:
        seeds.load(tmp_path)
    assert "\n" not in str(err.value) and "--results-path" in str(err.value)


def test_a_record_without_a_key_or_compared_with_another_control_is_refused(tmp_path):
    records = keyed(runs(tmp_path, [-1.0, -1.0, -1.0])[1], 1)
    del records[1]["key"]
    write(seeds.folder(tmp_path, 1), records)
    with pytest.raises(LabkitError, match="clustered-2 were made by an older labkit, without a key"):
        seeds.load(tmp_path)
    records = keyed(runs(tmp_path, [-1.0, -1.0, -1.0])[1], 1)
    records[0]["key"]["variant"]["epochs"] = 2  # the control was made again, with another budget
    write(seeds.folder(tmp_path, 1), records)
    with pytest.raises(LabkitError, match="clustered-2 was compared with another control than the one in the folder"):
        seeds.load(tmp_path)


def test_no_records_is_one_line(tmp_path):
    with pytest.raises(LabkitError, match="no variant records under .*seed-\\*: run `python -m labkit run"):
        seeds.load(tmp_path)
