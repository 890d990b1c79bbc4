"""The pruners compared from records and kept predictions: the paired test against NNI at the same widths, its
verdict and seeds, the table, the curve and the answer."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.records import digest
from labkit.results import answers, pruners, verdicts
from labkit.results.evaluate import write_predictions

LABELS = np.arange(1000) % 10


def record(name, sparsity, accuracy, pruner="nni", criterion="apoz", latency=1.0, zipped=1000):
    params = {"pruner": pruner, "criterion": criterion, "sparsity": sparsity}
    return {"name": name, "method": "structured pruning" if name != "torch-base-fp32" else "none", "params": params,
            "metrics": {"accuracy": accuracy}, "accuracy_interval": [accuracy - 0.02, accuracy + 0.02],
            "size": {"times_smaller": 4000 / zipped}, "latency": {"median_ms": latency},
            "stages": {"fine-tuned": {"parameters": int(1e6 * (1 - sparsity))}},
            "vs_control": {"control": "torch-control-fp32", "delta_pp": 0.0, "low_pp": -1.0, "high_pp": 1.0,
                           "p_value": 1.0},
            "key": {"control": {"name": "torch-control-fp32", "key": "c0ffee"}}}


def predictions(folder, name, wrong):
    """Keep predictions that miss the given test images."""
    predicted = LABELS.copy()
    predicted[list(wrong)] = (LABELS[list(wrong)] + 1) % 10
    write_predictions(folder, name, predicted, LABELS)


@pytest.fixture
def curve(tmp_path):
    base = record("torch-base-fp32", 0.0, 0.9, latency=2.0)
    base["method"] = "none"
    records = [base, record("structured-0.5", 0.5, 0.80, latency=0.5),
               record("tp-magnitude-0.5", 0.5, 0.80, "torch-pruning", "magnitude", latency=0.5),
               record("tp-taylor-0.5", 0.5, 0.90, "torch-pruning", "taylor", latency=0.5)]
    predictions(tmp_path, "structured-0.5", range(200))
    predictions(tmp_path, "tp-magnitude-0.5", range(5, 205))  # 5 images each way: no difference
    predictions(tmp_path, "tp-taylor-0.5", range(100))  # right on 100 more images than NNI, wrong on none it got
    return tmp_path, records


def test_each_torch_pruning_variant_is_paired_with_nni_at_its_sparsity(curve):
    folder, records = curve
    with_them = pruners.with_comparisons(records, [folder])
    compared = {r["name"]: r.get("vs_pruner") for r in with_them}
    assert compared["structured-0.5"] is None and compared["torch-base-fp32"] is None
    tests = pruners.pruner_tests(with_them)
    magnitude, taylor = tests["tp-magnitude-0.5"], tests["tp-taylor-0.5"]
    assert magnitude["control"] == "structured-0.5" and (magnitude["a_only"], magnitude["b_only"]) == (5, 5)
    assert magnitude["delta_pp"] == 0.0 and magnitude["verdict"] == verdicts.WITHIN
    assert taylor["delta_pp"] == pytest.approx(10.0) and taylor["verdict"] == verdicts.BETTER
    assert taylor["evidence"].startswith("one seed, McNemar p = ")


def test_over_seeds_the_comparison_is_the_interval_over_the_seeds(curve, tmp_path):
    folder, records = curve
    other = tmp_path / "seed-43"
    other.mkdir()
    predictions(other, "structured-0.5", range(200))
    predictions(other, "tp-magnitude-0.5", range(10, 200))
    predictions(other, "tp-taylor-0.5", range(90))
    tests = {r["name"]: r["vs_pruner"] for r in pruners.with_comparisons(records, [folder, other]) if "vs_pruner" in r}
    assert tests["tp-taylor-0.5"]["delta_pp"] == pytest.approx(10.5) and tests["tp-taylor-0.5"]["test"] == \
        "over seeds"
    assert [t["delta_pp"] for t in tests["tp-magnitude-0.5"]["per_seed"]] == pytest.approx([0.0, 1.0])


def test_table_curve_and_answer(curve):
    folder, records = curve
    compared = pruners.with_comparisons(records, [folder])
    table = pruners.comparison_table(compared)
    assert list(table.index) == ["structured-0.5", "tp-magnitude-0.5", "tp-taylor-0.5"]
    assert list(table["pruner"]) == ["NNI APoZ", "Torch-Pruning magnitude", "Torch-Pruning taylor"]
    assert list(table["× faster than base"]) == [4.0, 4.0, 4.0]
    assert table.loc["tp-taylor-0.5", "vs NNI"] == "better" and table.loc["structured-0.5", "vs NNI"] == ""
    axes = pruners.plot_curve(compared).axes
    assert [len(ax.lines) > 0 for ax in axes] == [True, True]
    for ax in axes:  # the same speed-up and size: an axis that does not blow 4.0 up into a spread
        low, high = ax.get_xlim()
        assert low < 4.0 < high and high / low >= pruners.MIN_SPAN * 0.999
    text = answers.answer_pruners(compared)
    assert "**tp-taylor-0.5** (Torch-Pruning taylor) − **structured-0.5** (NNI APoZ), sparsity 0.5: +10.00 pp" in text
    assert "**The pruner matters here**: Torch-Pruning kept measurably more accuracy than NNI's APoZ in " \
           "tp-taylor-0.5, at the same widths and speed." in text
    assert "as fast as" in text
    assert "One seed: this speaks of these trained models" in text  # one folder, one seed


def test_no_difference_beyond_the_margin_is_said_so(curve):
    folder, records = curve
    compared = pruners.with_comparisons(records[:3], [folder])
    assert "**The pruner does not matter beyond the margin**" in answers.answer_pruners(compared)
    assert answers.answer_pruners(records) == ""  # nothing compared: no answer, and no question in the summary


def test_pruners_the_seeds_cannot_tell_apart_are_not_called_the_same(curve):
    folder, records = curve
    compared = pruners.with_comparisons(records[:3], [folder])
    for r in compared:
        if r.get("vs_pruner"):  # as three seeds of 2f734a0 left it: an interval holding both 0 and −1 pp
            r["vs_pruner"] = {**r["vs_pruner"], "low_pp": -2.53, "high_pp": 2.80}
    text = answers.answer_pruners(compared)
    assert "**Undecided**: tp-magnitude-0.5 against NNI's" in text and "(95 % CI -2.53 … +2.80" in text
    assert "does not matter" not in text


def test_a_curve_keeps_only_the_records_of_its_control(curve):
    _, records = curve
    control = {"key": {}}
    for r in records:
        r["key"]["control"]["key"] = digest({}) if r["name"] != "tp-magnitude-0.5" else "another"
    assert [r["name"] for r in pruners.structured(records, control)] == ["structured-0.5", "tp-taylor-0.5"]
