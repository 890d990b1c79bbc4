"""The summary's verdicts follow from the records (synthetic records with known answers)."""

import numpy as np
import pytest

from labkit import report, summary


def record(name, method, accuracy, zipped, latency, raw=1000, base_accuracy=0.9):
    return {"name": name, "method": method, "params": {},
            "metrics": {"accuracy": accuracy}, "accuracy_change_pp": 100 * (accuracy - base_accuracy),
            "size": {"raw_bytes": raw, "zipped_bytes": zipped, "times_smaller": 900 / zipped,
                     "times_smaller_raw": 1000 / zipped, "deflation_pct": 100 * (1 - zipped / raw)},
            "latency": {"median_ms": latency, "iqr_ms": 0.0}}


RECORDS = [record("base-fp32", "none", 0.90, 900, 1.0),
           record("quantized-int8", "quantization", 0.89, 230, 0.4, raw=250),
           record("clustered-16-fp32", "clustering", 0.895, 100, 1.0),
           record("pruned-0.5-fp32", "pruning", 0.90, 500, 1.0),
           record("pruned-0.5-clustered-16-fp32", "pruning+clustering", 0.893, 90, 1.0)]


def test_pareto_front_keeps_only_unbeaten_variants():
    # the base ties pruned-0.5 on accuracy but is larger; INT8 is larger and worse than clustered-16
    assert report.pareto_front(RECORDS) == ["clustered-16-fp32", "pruned-0.5-fp32", "pruned-0.5-clustered-16-fp32"]


def test_dominance_names_the_front_and_the_fast_ones():
    text = summary.answer_dominance(RECORDS)
    assert "No single method dominates" in text and "clustering, pruning, pruning+clustering" in text
    assert "only quantized-int8 ran clearly faster" in text


def test_a_single_method_on_the_front_dominates():
    records = RECORDS[:3]
    assert "**clustering** dominates" in summary.answer_dominance(records)


def test_speed_words_treat_small_differences_as_noise():
    lines = summary.answer_quality_and_speed(RECORDS).splitlines()
    assert "2.5× faster than" in lines[0] and "as fast as (1.00×)" in lines[1]
    table = summary.method_table(RECORDS)
    assert table.loc["quantization", "× faster (batch 1)"] == "2.50"


def compared_record(name, method, accuracy, zipped, low, high, delta, p):
    r = record(name, method, accuracy, zipped, 1.0)
    r.update(accuracy_interval=[accuracy - 0.005, accuracy + 0.005], test_samples=10_000,
             vs_control={"control": "control-1-epochs-fp32", "delta_pp": delta, "low_pp": low, "high_pp": high,
                         "p_value": p, "a_only": 10, "b_only": 10})
    return r


def test_overlapping_intervals_are_ties_on_the_pareto_front():
    # 0.900 and 0.897 overlap (±0.005): the smaller one beats the larger on a tie
    records = [compared_record("clustered-16-fp32", "clustering", 0.900, 100, -0.3, 0.3, 0.0, 1.0),
               compared_record("clustered-8-fp32", "clustering", 0.897, 60, -0.6, 0.1, -0.3, 0.2),
               compared_record("clustered-2-fp32", "clustering", 0.800, 30, -11, -9, -10, 1e-9)]
    assert report.pareto_front(records) == ["clustered-8-fp32", "clustered-2-fp32"]


def test_verdicts_need_the_corrected_test_and_the_interval():
    records = [compared_record("clustered-8-fp32", "clustering", 0.897, 60, -0.6, 0.1, -0.3, 0.2),
               compared_record("clustered-2-fp32", "clustering", 0.800, 30, -11, -9, -10, 1e-9),
               compared_record("pruned-0.5-fp32", "pruning", 0.905, 500, 0.1, 0.9, 0.5, 0.03)]
    tests = report.tested(records)
    assert tests["clustered-8-fp32"]["verdict"] == "no measurable difference"
    assert tests["clustered-2-fp32"]["verdict"] == "worse"
    # 0.03 alone would pass, but Holm over the three comparisons makes it 0.06
    assert tests["pruned-0.5-fp32"]["p_holm"] == pytest.approx(0.06)
    assert tests["pruned-0.5-fp32"]["verdict"] == "no measurable difference"
    text = summary.answer_dominance(records)
    assert "Evidence: clustered-8-fp32" in text and "no measurable difference" in text and "1 seed" in text
    lines = summary.answer_quality_and_speed([RECORDS[0], *records]).splitlines()
    assert "from -10.00 pp (clustered-2-fp32: worse)" in lines[0] and "1 of 2 variant(s)" in lines[0]


def test_speed_words_come_from_intervals_over_interleaved_rounds():
    rng = np.random.default_rng(0)
    timed = [{**r, "latency": {"median_ms": ms, "iqr_ms": 0.0, "rounds_ms": list(ms * rng.lognormal(0, 0.02, 15))}}
             for r, ms in zip(RECORDS, (1.0, 0.4, 1.0, 1.0, 1.0), strict=True)]
    lines = summary.answer_quality_and_speed(timed).splitlines()
    assert "2.50× faster (95 % CI 2.4" in lines[0]
    assert "as fast as (1.00×, 95 % CI 0.9" in lines[1] and "no measurable difference" in lines[1]
    assert "only quantized-int8 ran clearly faster" in summary.answer_dominance(timed)


def test_a_speedup_under_five_percent_is_not_called_faster_however_tight():
    rounds = np.full(15, 1.0)
    timed = [{**r, "latency": {"median_ms": ms, "iqr_ms": 0.0, "rounds_ms": list(ms * rounds * (1 + 1e-3 * i))}}
             for i, (r, ms) in enumerate(zip(RECORDS, (1.0, 0.4, 1.0, 0.98, 1.0), strict=True))]
    assert summary.speed_factor(timed[3], timed[0])[1] > 1  # the interval alone would call pruned-0.5 faster
    lines = summary.answer_quality_and_speed(timed).splitlines()
    assert "as fast as (1.0" in lines[2] and "within 5 %" in lines[2]
    assert "only quantized-int8 ran clearly faster" in summary.answer_dominance(timed)


def test_a_front_of_worse_variants_still_gets_its_evidence():
    records = [compared_record("clustered-4-fp32", "clustering", 0.80, 46, -12, -10, -11, 1e-9),
               compared_record("clustered-8-fp32", "clustering", 0.85, 60, -7, -5, -6, 1e-9)]
    text = summary.answer_dominance(records)
    assert "Evidence: clustered-4-fp32" in text and "): worse." in text and "not tested" not in text


def test_each_seeds_wall_time_is_the_sum_of_its_notebooks(tmp_path):
    import json

    for seed, durations in ((42, [60, 120]), (43, [30])):
        notebooks = tmp_path / f"seed-{seed}" / "notebooks"
        notebooks.mkdir(parents=True)
        for i, seconds in enumerate(durations):
            (notebooks / f"0{i + 1}_x.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": seconds}}}))
    assert summary.seed_durations(tmp_path, [42, 43]) == {42: 180.0, 43: 30.0}
    assert summary.seed_durations(tmp_path, [43]) == {43: 30.0}  # only the seeds of the run


def test_the_winner_without_measurable_loss_comes_from_the_paired_tests():
    records = [compared_record("clustered-2-fp32", "clustering", 0.70, 30, -21, -19, -20, 1e-9),
               compared_record("clustered-16-fp32", "clustering", 0.900, 100, -0.6, 0.1, -0.3, 0.2),
               compared_record("pruned-0.5-fp32", "pruning", 0.901, 500, -0.5, 0.2, -0.2, 0.4),
               compared_record("pruned-0.5-clustered-16-fp32", "pruning+clustering", 0.85, 90, -6, -4, -5, 1e-9)]
    text = summary.answer_dominance(records)
    assert "Evidence: clustered-16-fp32" in text and "It is also the smallest variant not called worse" in text
    assert text.count("95 % CI") == 1  # its numbers are not repeated
    assert "a small loss is likely" not in text  # its interval spans zero
    assert "pruned-0.5-fp32 (pruning, 1.80×)" in text and "pruned-0.5-clustered-16-fp32 (pruning" not in text
    worse = [records[0], records[3]]
    assert "Every tested compressed variant is measurably less accurate" in summary.answer_dominance(worse)


def test_a_winner_tied_off_the_front_gets_its_own_numbers():
    # clustered-4 is worse than the control, but ties clustered-8 on accuracy and is smaller: only it is on the front
    records = [compared_record("clustered-4-fp32", "clustering", 0.894, 50, -1.2, -0.4, -0.8, 1e-4),
               compared_record("clustered-8-fp32", "clustering", 0.897, 60, -0.6, 0.1, -0.3, 0.2)]
    text = summary.answer_dominance(records)
    assert "Evidence: clustered-4-fp32" in text and "): worse." in text
    assert "not called worse than their control, the smallest is **clustered-8-fp32** (clustering)" in text
    assert "On speed, none of the variants ran clearly faster" in text


def test_an_interval_below_zero_is_not_passed_off_as_no_loss():
    records = [compared_record("clustered-16-fp32", "clustering", 0.900, 100, -0.5, -0.2, -0.35, 0.2)]
    assert "a small loss is likely" in summary.answer_dominance(records)


def test_markdown_tables_leave_missing_values_blank():
    import pandas as pd

    table = pd.DataFrame({"accuracy": [0.9, 0.91234], "Δ vs control": [float("nan"), "-0.10 (n.s.)"]},
                         index=["base-fp32", "pruned-0.5-fp32"])
    text = report.markdown(table)
    assert "nan" not in text.lower() and "0.9123" in text and "-0.10 (n.s.)" in text
