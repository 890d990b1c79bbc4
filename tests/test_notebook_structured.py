"""The structured-pruning notebook, executed headless through the runner at tiny scale."""

from __future__ import annotations

import json

import onnx
import pytest
from conftest import TINY_LAB

from labkit.deploy import tflite
from labkit.deploy.netron import find_chromium
from labkit.models import recovery
from labkit.records import load_records


@pytest.fixture(scope="module")
def structured_run(tiny_lab):
    return tiny_lab["results"]


def test_channels_shrink_as_configured(structured_run):
    record = {r["name"]: r for r in load_records(structured_run)}["structured-0.5"]
    before, after = record["stages"]["base"]["shapes"], record["stages"]["fine-tuned"]["shapes"]
    assert [before[n][0] for n in ("conv1", "conv2", "conv3", "fc1")] == [8, 16, 32, 64]  # hidden_units=64
    assert [after[n][0] for n in ("conv1", "conv2", "conv3", "fc1")] == [4, 8, 16, 32]
    assert after["fc1"][1] == 7744 and after["fc2"] == [10, 32]
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


def test_pruned_model_is_tested_against_the_control_after_as_many_steps(structured_run):
    records = {r["name"]: r for r in load_records(structured_run)}
    record, control = records["structured-0.5"], records["torch-control-fp32"]
    rule = {"check_every_steps": 1, "patience_checks": 3, "max_steps": 2, "min_gain": 0.0}  # 2 steps an epoch
    assert control["params"] == {"training_batches": 200, "fine_tune_learning_rate": 0.001, "batch_size": 256, **rule}
    for r in (record, control):
        tuned = r["fine_tuning"]
        assert tuned["rule"] == rule and tuned["curve"]["steps"][0] == 0 and tuned["steps"] in tuned["curve"]["steps"]
    assert control["fine_tuning"]["curve"]["steps"] == [0, 1, 2]  # run to the maximum, every check kept
    assert sorted(p.name for p in (structured_run / "torch-control-steps").iterdir()) == [
        f"step-{step:07d}.pt" for step in (0, 1, 2)]
    test = record["vs_control"]
    paired = recovery.paired_name(control, record["fine_tuning"]["steps"])
    assert test["control"] == paired and paired in records
    delta = 100 * (record["metrics"]["accuracy"] - records[paired]["metrics"]["accuracy"])
    assert test["delta_pp"] == pytest.approx(delta)
    assert test["low_pp"] <= test["delta_pp"] <= test["high_pp"]
    assert record["accuracy_before_fine_tuning"] == record["stages"]["pruned"]["accuracy"]
    assert (structured_run / "structured-0.5-stages.md").is_file()
    executed = (structured_run / "notebooks" / "03_structured_pruning.ipynb").read_text()
    assert "Recovery during fine-tuning" in executed


@pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed")
def test_netron_pictures_hold_the_graph(structured_run):
    for label in ("torch-base", "structured-0.5", "tp-magnitude-0.5"):
        for kind in ("onnx", "tflite"):
            svg = (structured_run / f"{label}-fp32-{kind}.svg").read_text()
            assert svg.startswith("<svg") and svg.count("graph-node") >= 5


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
def test_torch_pruning_variant_has_nnis_widths_exports_and_agrees(structured_run, criterion):
    records = {r["name"]: r for r in load_records(structured_run)}
    name = f"tp-{criterion}-0.5"
    record, nni = records[name], records["structured-0.5"]
    stages = record["stages"]
    assert stages["fine-tuned"]["shapes"] == nni["stages"]["fine-tuned"]["shapes"]  # NNI's widths, layer by layer
    assert stages["fine-tuned"]["parameters"] == nni["stages"]["fine-tuned"]["parameters"]
    assert stages["fine-tuned"]["flops"] < stages["base"]["flops"] / 3.9
    assert record["stages"]["ONNX pruned"]["latency"]["median_ms"] < record["stages"]["ONNX base"]["latency"][
        "median_ms"]
    onnx.checker.check_model(onnx.load(str(structured_run / f"{name}-fp32.onnx")))
    tflite.load(structured_run / f"{name}-fp32.tflite")
    checks = record["parity"][name]
    assert checks["onnx_max_abs_diff"] < 1e-4 and checks["tflite_max_abs_diff"] < 1e-4
    assert checks["onnx_argmax_agreement"] == checks["tflite_argmax_agreement"] == 1.0
    assert record["accuracy_before_fine_tuning"] == stages["pruned"]["accuracy"]
    assert "group conv3: 32 -> 16 channels; coupled: conv3 outputs, fc1 inputs" in (
        structured_run / f"{name}-prune.log").read_text()


def test_both_libraries_are_compared_with_one_control_at_one_budget(structured_run):
    """The key names pruner and criterion; the budget, the control and its record are NNI's."""
    from labkit.records import digest

    records = {r["name"]: r for r in load_records(structured_run)}
    control = records["torch-control-fp32"]
    nni = records["structured-0.5"]
    assert nni["key"]["variant"] == {"pruner": "nni", "criterion": "apoz", "sparsity": 0.5, **control["params"]}
    for criterion in ("magnitude", "taylor"):
        record = records[f"tp-{criterion}-0.5"]
        assert record["key"]["variant"] == {"pruner": "torch-pruning", "criterion": criterion, "sparsity": 0.5,
                                            **control["params"]}
        assert record["key"]["control"] == nni["key"]["control"] == {"name": "torch-control-fp32",
                                                                     "key": digest(control["key"])}
        assert record["vs_control"]["control"] == recovery.paired_name(control, record["fine_tuning"]["steps"])
        assert record["key"]["versions"]["torch-pruning"] == "1.6.1"
    saved = json.loads((structured_run / "torch-checkpoints.json").read_text())
    assert saved["done"] == ["control"] and saved["measured"]["control"] == nni["stages"]["control"]


def test_the_report_and_summary_compare_the_pruners(tiny_lab):
    executed = (tiny_lab["results"] / "notebooks" / "03_structured_pruning.ipynb").read_text()
    assert "Compare the pruners along the sparsity curve" in executed and "Torch-Pruning taylor" in executed
    summary = (tiny_lab["summary"] / "README.md").read_text()
    assert "## Does the structured pruner matter?" in summary
    assert "One seed: this speaks of these trained models, not of the methods" in summary
    assert "Every structurally pruned model is fine-tuned until it has recovered: validation accuracy checked every " \
           "1 steps, stopping after 3 checks without a gain or at 2 steps, at a learning rate of 0.001" in summary
    assert "**tp-taylor-0.5** (Torch-Pruning taylor) − **structured-0.5** (NNI APoZ)" in summary
    assert "![accuracy against speed-up and size, one line per pruner](images/structured-pruners.png)" in summary
    assert (tiny_lab["summary"] / "images" / "structured-pruners.png").is_file()
    assert "![recovery of structured pruning during fine-tuning](images/recovery-structured-pruning.png)" in summary
    assert (tiny_lab["summary"] / "images" / "recovery-structured-pruning.png").is_file()


def test_a_quick_looks_summary_says_first_that_its_verdicts_are_not_the_methods(tiny_lab, tmp_path):
    from labkit.results import summary

    results = tiny_lab["results"]
    readme = summary.write_summary(load_records(results), results, tmp_path / "summary", tmp_path / "models", [],
                                   scale="quick").read_text()
    assert readme.split("\n")[2].startswith("**A quick look, not the methods' answer.** This run trained on 9,000")
    assert "run the full lab: `make lab`" in readme
    assert "A quick look" not in (tiny_lab["summary"] / "README.md").read_text()


def test_every_pruned_model_gets_an_int8_twin_compared_with_its_controls_twin(structured_run):
    records = {r["name"]: r for r in load_records(structured_run)}
    for name in ("structured-0.5", "tp-magnitude-0.5", "tp-taylor-0.5"):
        twin = records[f"{name}-int8"]
        assert twin["method"] == "structured pruning+INT8" and twin["int8_of"] == name
        control = records[twin["vs_control"]["control"]]
        assert control["int8_of"] == records[name]["vs_control"]["control"] and control["name"].endswith("-int8")
        interpreter = tflite.load(structured_run / f"{name}-int8.tflite")
        assert interpreter.get_input_details()[0]["dtype"].__name__ == "int8"  # full integer, input included
        assert twin["parity"]["int8_median_relative_diff"] <= 0.1
        assert twin["size"]["raw_bytes"] < records[name]["size"]["raw_bytes"] / 3
        for int8 in (twin, control):  # weights inline (export.inline_buffers): TFLM computes what LiteRT does
            assert int8["micro"]["vs_litert_builtin"]["same_class"] >= 0.9 * int8["micro"]["sample"]


def test_every_tflite_file_of_the_notebook_ran_under_tflm(structured_run):
    records = {r["name"]: r for r in load_records(structured_run)}
    measured = {name for name, r in records.items() if r.get("micro") and (name.startswith(("torch-", "tp-",
                                                                                             "structured-")))}
    assert {"torch-base-fp32", "torch-control-fp32", "structured-0.5", "structured-0.5-int8",
            "tp-taylor-0.5-int8"} <= measured
    twin = records["structured-0.5-int8"]["micro"]
    assert twin["runs"] and twin["arena_bytes"] > 0 and twin["sample"] == TINY_LAB["micro_samples"]
    assert twin["vs_litert_builtin"]["same_class"] >= 0.9 * twin["sample"]
