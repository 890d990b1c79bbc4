"""The lab's answers follow from the records (synthetic records with known answers): verdicts, the margin, the
answer first, the trade-off, speed."""

import re

import numpy as np

from labkit.results import answers, report, seeds, speed, verdicts


def record(name, method, accuracy, zipped, latency, raw=1000, base_accuracy=0.9):
    return {"name": name, "method": method, "params": {},
            "metrics": {"accuracy": accuracy, "mean_precision": accuracy, "mean_sensitivity": accuracy,
                        "g_mean": accuracy, "top_5": 1.0}, "accuracy_change_pp": 100 * (accuracy - base_accuracy),
            "size": {"raw_bytes": raw, "zipped_bytes": zipped, "times_smaller": 900 / zipped,
                     "times_smaller_raw": 1000 / zipped, "deflation_pct": 100 * (1 - zipped / raw)},
            "latency": {"median_ms": latency, "iqr_ms": 0.0}}


RECORDS = [record("base-fp32", "none", 0.90, 900, 1.0),
           record("quantized-int8", "quantization", 0.89, 230, 0.4, raw=250),
           record("clustered-16-fp32", "clustering", 0.895, 100, 1.0),
           record("pruned-0.5-fp32", "pruning", 0.90, 500, 1.0),
           record("pruned-0.5-clustered-16-fp32", "pruning+clustering", 0.893, 90, 1.0)]


def compared_record(name, method, accuracy, zipped, low, high, delta, p):
    r = record(name, method, accuracy, zipped, 1.0)
    r["params"] = {key: float(value) for key, value in re.findall(r"(clustered|pruned)-([0-9.]+)", name)}
    r["params"] = {{"clustered": "clusters", "pruned": "sparsity"}[k]: v for k, v in r["params"].items()}
    r.update(accuracy_interval=[accuracy - 0.005, accuracy + 0.005], test_samples=10_000,
             vs_control={"control": "control-1-epochs-fp32", "delta_pp": delta, "low_pp": low, "high_pp": high,
                         "p_value": p, "a_only": 10, "b_only": 10})
    return r


def test_pareto_front_keeps_only_unbeaten_variants():
    # the base ties pruned-0.5 on accuracy but is larger; INT8 is larger and worse than clustered-16
    assert report.pareto_front(RECORDS) == ["clustered-16-fp32", "pruned-0.5-fp32", "pruned-0.5-clustered-16-fp32"]


def test_overlapping_intervals_are_ties_on_the_pareto_front():
    # 0.900 and 0.897 overlap (±0.005): the smaller one beats the larger on a tie
    records = [compared_record("clustered-16-fp32", "clustering", 0.900, 100, -0.3, 0.3, 0.0, 1.0),
               compared_record("clustered-8-fp32", "clustering", 0.897, 60, -0.6, 0.1, -0.3, 0.2),
               compared_record("clustered-2-fp32", "clustering", 0.800, 30, -11, -9, -10, 1e-9)]
    assert report.pareto_front(records) == ["clustered-8-fp32", "clustered-2-fp32"]


def test_untested_variants_are_never_evidence():
    assert answers.answer_dominance(RECORDS) == "No compressed variant was compared with a control."
    assert answers.answer_first(RECORDS) == "No compressed variant was compared with a control."


def test_verdicts_are_read_from_the_interval_beside_them():
    records = [compared_record("clustered-8-fp32", "clustering", 0.897, 60, -0.6, 0.1, -0.3, 0.2),
               compared_record("clustered-2-fp32", "clustering", 0.800, 30, -11, -9, -10, 1e-9),
               compared_record("pruned-0.5-fp32", "pruning", 0.905, 500, 0.1, 0.9, 0.5, 0.03)]
    tests = report.tested(records)
    assert tests["clustered-8-fp32"]["verdict"] == verdicts.WITHIN
    assert tests["clustered-2-fp32"]["verdict"] == verdicts.WORSE_BEYOND
    assert tests["pruned-0.5-fp32"]["verdict"] == verdicts.BETTER  # its interval excludes 0: so does the verdict
    lines = answers.answer_quality_and_speed([RECORDS[0], *records]).splitlines()
    assert "from -10.00 pp (clustered-2-fp32) to -0.30 pp (clustered-8-fp32)" in lines[0]
    assert "1 within the margin, 1 worse by more than the margin (at a 1 pp margin)" in lines[0]
    table = report.variants_table(records)
    assert table.loc["pruned-0.5-fp32", "verdict"] == "better" and "p (Holm)" not in table.columns


def cases():
    return [compared_record("clustered-2-fp32", "clustering", 0.70, 30, -21, -19, -20, 1e-9),
            compared_record("clustered-16-fp32", "clustering", 0.900, 100, -0.6, 0.1, -0.3, 0.2),
            compared_record("pruned-0.5-fp32", "pruning", 0.901, 500, -0.5, 0.2, -0.2, 0.4),
            compared_record("pruned-0.5-clustered-16-fp32", "pruning+clustering", 0.85, 90, -6, -4, -5, 1e-9)]


def test_the_winner_is_the_smallest_model_at_no_measurable_cost_and_the_rest_a_trade_off():
    text = answers.answer_dominance(cases())
    assert text.startswith("**Which method dominates? None: a trade-off.** No variant is best on size, speed and "
                           "accuracy at once; the smallest model of all is clustered-2-fp32 (30.0×, worse by more "
                           "than the margin).")
    assert "The smallest model at no measurable cost is **clustered-16-fp32** (9.0× smaller zipped, -0.30 pp)." in text
    assert ("Each method's smallest within the 1 pp margin: clustering clustered-16-fp32 (9.0×), pruning "
            "pruned-0.5-fp32 (1.8×).") in text
    assert len(text.split()) < 90  # short enough to read aloud


def test_the_answer_comes_first_in_at_most_six_lines_each_with_its_numbers():
    timed = [{**r, "latency": {"median_ms": 0.25 if "pruned-0.5-fp32" == r["name"] else 1.0, "iqr_ms": 0.0}}
             for r in cases()]
    lines = answers.answer_first([RECORDS[0], *timed]).splitlines()
    assert len(lines) <= 6
    assert lines[0] == ("- **Smallest at no measurable cost**: clustered-16-fp32, 9.0× smaller zipped than its FP32 "
                        "base, -0.30 pp against its control (95 % CI -0.60 … +0.10: within the margin).")
    assert lines[1].startswith("- **Fastest**: pruned-0.5-fp32, 4.0× faster than its base at batch 1, -0.20 pp")
    assert lines[2] == ("- **Where methods break** (a 1 pp margin): clustering holds to 16 clusters and leaves the "
                        "margin at 2 clusters (clustered-2-fp32: -20.00 pp against its control (95 % CI -21.00 … "
                        "-19.00: worse by more than the margin)).")
    assert lines[3] == ("- **Every comparison decided** by 1 seed (one seed speaks only of its trained models: "
                        "`--seeds 42 43 44` trains each again).")
    assert "a trade-off" in lines[4]


def test_the_margin_decides_which_variants_count():
    records = [compared_record("clustered-8-fp32", "clustering", 0.897, 60, -0.6, 0.1, -0.3, 0.2),
               compared_record("pruned-0.5-fp32", "pruning", 0.901, 500, -0.4, 0.2, -0.1, 0.4)]
    assert "**clustered-8-fp32**" in answers.answer_dominance(records, margin_pp=1.0)
    text = answers.answer_dominance(records, margin_pp=0.5)
    assert "at no measurable cost is **pruned-0.5-fp32**" in text and "within the 0.5 pp margin: pruning" in text
    table = report.variants_table(records, margin_pp=0.5)
    assert table["within 0.5 pp"].tolist() == ["no", "yes"]
    assert table["verdict"].tolist() == [verdicts.UNDECIDED, verdicts.WITHIN]
    assert answers.method_table([RECORDS[0], *records], 0.5).loc["clustering", "within 0.5 pp"] == "0 of 1"


def test_a_loss_the_interval_allows_is_not_hidden():
    # the interval excludes no change but rules out more than a 1 pp loss: worse, within the margin; not "free"
    records = [compared_record("clustered-16-fp32", "clustering", 0.900, 100, -0.5, -0.2, -0.35, 0.2)]
    assert report.tested(records)["clustered-16-fp32"]["verdict"] == verdicts.WORSE_WITHIN
    assert answers.answer_first(records).startswith("- **No compressed variant comes at no measurable cost**")
    assert "within the 1 pp margin: clustering clustered-16-fp32" in answers.answer_dominance(records)
    assert "**No compressed variant is within the margin**" in answers.answer_dominance(records, margin_pp=0.4)


def test_no_variant_within_the_margin_is_said_plainly():
    records = [compared_record("clustered-4-fp32", "clustering", 0.80, 46, -12, -10, -11, 1e-9),
               compared_record("clustered-8-fp32", "clustering", 0.85, 60, -7, -5, -6, 1e-9)]
    text = answers.answer_dominance(records)
    assert "**No compressed variant is within the margin**: each may lose more than 1 pp." in text
    assert "at no measurable cost" not in text


def test_speed_words_treat_small_differences_as_noise():
    lines = answers.answer_quality_and_speed(RECORDS).splitlines()
    assert "2.5× faster than" in lines[0] and "as fast as (1.00×)" in lines[1]
    table = answers.method_table(RECORDS)
    assert table.loc["quantization", "× faster (batch 1)"] == "2.50"


def test_speed_words_come_from_intervals_over_interleaved_rounds():
    rng = np.random.default_rng(0)
    timed = [{**r, "latency": {"median_ms": ms, "iqr_ms": 0.0, "rounds_ms": list(ms * rng.lognormal(0, 0.02, 15))}}
             for r, ms in zip(RECORDS, (1.0, 0.4, 1.0, 1.0, 1.0), strict=True)]
    lines = answers.answer_quality_and_speed(timed).splitlines()
    assert "2.50× faster (95 % CI 2.4" in lines[0]
    assert "as fast as (1.00×, 95 % CI 0.9" in lines[1] and "no measurable difference" in lines[1]


def test_a_speedup_under_five_percent_is_not_called_faster_however_tight():
    rounds = np.full(15, 1.0)
    timed = [{**r, "latency": {"median_ms": ms, "iqr_ms": 0.0, "rounds_ms": list(ms * rounds * (1 + 1e-3 * i))}}
             for i, (r, ms) in enumerate(zip(RECORDS, (1.0, 0.4, 1.0, 0.98, 1.0), strict=True))]
    assert speed.speed_factor(timed[3], timed[0])[1] > 1  # the interval alone would call pruned-0.5 faster
    lines = answers.answer_quality_and_speed(timed).splitlines()
    assert "as fast as (1.0" in lines[2] and "within 5 %" in lines[2]
    assert not speed.clearly_faster(speed.speed_factor(timed[3], timed[0]))


def test_a_one_seed_verdict_speaks_of_its_trained_models_and_a_three_seed_one_of_the_method():
    records = [compared_record("clustered-16-fp32", "clustering", 0.900, 100, -0.6, 0.1, -0.3, 0.2),
               compared_record("pruned-0.5-fp32", "pruning", 0.901, 500, -0.5, 0.2, -0.2, 0.4)]
    one_seed = "One seed: this speaks of these trained models, not of the methods; `--seeds 42 43 44`"
    for text in (answers.answer_dominance(records), answers.answer_quality_and_speed(
            [record("base-fp32", "none", 0.90, 900, 1.0), *records])):
        assert one_seed in text
    three = [{**r, "by_seed": {"seeds": [42, 43, 44]}} for r in records]
    assert seeds.scope(three) == ""  # what answer_dominance and answer_pruners add
    assert "One seed" not in answers.answer_quality_and_speed([record("base-fp32", "none", 0.90, 900, 1.0), *three])
