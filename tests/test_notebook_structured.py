"""The structured-pruning notebook, executed headless through the runner at tiny scale."""

from __future__ import annotations

import onnx
import pytest

from labkit import tflite
from labkit.netron import find_chromium
from labkit.records import load_records

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def structured_run(tiny_lab):
    return tiny_lab["results"]


def test_channels_shrink_as_configured(structured_run):
    record = {r["name"]: r for r in load_records(structured_run)}["structured-0.5"]
    before, after = record["stages"]["base"]["shapes"], record["stages"]["fine-tuned"]["shapes"]
    assert [before[n][0] for n in ("conv1", "conv2", "conv3", "fc1")] == [8, 16, 32, 1024]
    assert [after[n][0] for n in ("conv1", "conv2", "conv3", "fc1")] == [4, 8, 16, 512]
    assert after["fc1"][1] == 7744 and after["fc2"] == [10, 512]
    assert record["stages"]["fine-tuned"]["parameters"] < record["stages"]["base"]["parameters"] / 3.5


def test_exports_load_and_agree(structured_run):
    record = {r["name"]: r for r in load_records(structured_run)}["structured-0.5"]
    for label in ("torch-base", "torch-control", "structured-0.5"):
        onnx.checker.check_model(onnx.load(str(structured_run / f"{label}-fp32.onnx")))
        tflite.load(structured_run / f"{label}-fp32.tflite")
        checks = record["parity"][label]
        assert checks["onnx_max_abs_diff"] < 1e-4 and checks["tflite_max_abs_diff"] < 1e-4
        assert checks["onnx_argmax_agreement"] == 1.0
    assert (structured_run / "structured-0.5-compress.log").read_text().count("remain/total") == 4


def test_record_has_every_stage_and_the_tflite_metrics(structured_run):
    records = {r["name"]: r for r in load_records(structured_run)}
    assert {"torch-base-fp32", "structured-0.5"} <= set(records)
    stages = records["structured-0.5"]["stages"]
    assert {"base", "pruned", "fine-tuned", "control", "ONNX base", "ONNX pruned"} <= set(stages)
    assert 0 < records["structured-0.5"]["metrics"]["accuracy"] <= 1


def test_pruned_model_is_tested_against_the_base_trained_as_long(structured_run):
    records = {r["name"]: r for r in load_records(structured_run)}
    record, control = records["structured-0.5"], records["torch-control-fp32"]
    assert control["params"] == {"training_batches": 200, "fine_tune_epochs": 1, "fine_tune_learning_rate": 0.0001,
                                 "batch_size": 256}
    test = record["vs_control"]
    assert test["control"] == "torch-control-fp32"
    assert test["delta_pp"] == pytest.approx(100 * (record["metrics"]["accuracy"] - control["metrics"]["accuracy"]))
    assert test["low_pp"] <= test["delta_pp"] <= test["high_pp"]
    assert record["accuracy_before_fine_tuning"] == record["stages"]["pruned"]["accuracy"]
    assert (structured_run / "structured-0.5-stages.md").is_file()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed")
def test_netron_pictures_hold_the_graph(structured_run):
    for label in ("torch-base", "structured-0.5"):
        for kind in ("onnx", "tflite"):
            svg = (structured_run / f"{label}-fp32-{kind}.svg").read_text()
            assert svg.startswith("<svg") and svg.count("graph-node") >= 5
