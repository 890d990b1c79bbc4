"""The clustering and pruning notebooks, executed headless through the runner at tiny scale."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import SHARED_PETS, TINY_LAB, TINY_TASKS, needs, notebook_tasks, steady

from labkit.deploy import preservation
from labkit.methods import compress
from labkit.models import recovery
from labkit.records import digest, load_records
from labkit.results import report
from labkit.run import runner


@pytest.fixture(scope="module")
def fashion_run(tiny_lab):
    return tiny_lab["results"], tiny_lab["outputs"], tiny_lab["log"]


def test_notebooks_executed_without_outputs_in_source(fashion_run):
    results, outputs, log = fashion_run
    assert [p.name for p in outputs] == ["01_clustering.ipynb", "02_pruning.ipynb", "03_structured_pruning.ipynb",
                                         "04_summary.ipynb"]
    for out in outputs:
        cells = json.loads(out.read_text())["cells"]
        assert any(c.get("outputs") for c in cells if c["cell_type"] == "code")
    assert any("[1/4] 01_clustering" in line for line in log)


def test_clustered_kernels_have_at_most_k_values(fashion_run):
    records = {r["name"]: r for r in load_records(fashion_run[0])}
    for k in (2, 16):
        kernels = records[f"clustered-{k}-fp32"]["kernels"]
        assert kernels and all(stat["unique_values"] <= k for stat in kernels.values())


def test_pruned_kernels_reach_the_sparsity(fashion_run):
    records = {r["name"]: r for r in load_records(fashion_run[0])}
    for s in (0.2, 0.5):
        kernels = records[f"pruned-{s:g}-fp32"]["kernels"]
        assert all(stat["sparsity"] == pytest.approx(s, abs=0.01) for stat in kernels.values())
    combined = records["pruned-0.5-clustered-16-fp32"]["kernels"]
    assert all(stat["unique_values"] <= 16 and stat["sparsity"] >= 0.49 for stat in combined.values())
    # its pruning is pruned-0.5-fp32's, not trained again (a second training would have taken its own seconds)
    assert records["pruned-0.5-clustered-16-fp32"]["fine_tuning"]["pruning"] == records["pruned-0.5-fp32"][
        "fine_tuning"]


def test_every_variant_has_its_files_and_sane_metrics(fashion_run):
    results = fashion_run[0]
    records = load_records(results)
    variants = runner.plan_tasks(TINY_TASKS).variant_names()
    int8_twins = {f"{name}-int8" for name in variants if name.startswith(("structured-", "tp-"))}
    assert steady(r["name"] for r in records) == {"base-fp32", "torch-base-fp32", "torch-control-fp32", "control-fp32",
                                                  *variants, *int8_twins}
    for r in records:
        for name in r["files"]:
            assert (results / name).is_file(), name
        assert (results / f"{r['name']}-metrics.md").is_file()
        assert (results / f"{r['name']}-confusion-matrix.png").is_file()
        for value in r["metrics"].values():
            assert 0 <= value <= 1
        assert r["metrics"]["top_5"] >= r["metrics"]["accuracy"]
        assert r["latency"]["median_ms"] > 0


def test_every_compressed_variant_is_tested_against_the_control_after_as_many_steps(fashion_run):
    records = {r["name"]: r for r in load_records(fashion_run[0])}
    control = records["control-fp32"]
    for name, r in records.items():
        if r["method"] == "none" or r["method"].startswith("structured"):  # the PyTorch side has its own tests
            continue
        test = r["vs_control"]
        paired = "base-fp32" if name == "quantized-int8" else recovery.paired_name(control, r["fine_tuning"]["steps"])
        assert test["control"] == paired and r["key"]["control"]["name"] == ("base-fp32" if paired == "base-fp32"
                                                                             else "control-fp32")
        delta = 100 * (r["metrics"]["accuracy"] - records[test["control"]]["metrics"]["accuracy"])
        assert test["delta_pp"] == pytest.approx(delta, abs=1e-6)
        assert test["low_pp"] <= test["delta_pp"] <= test["high_pp"] and 0 <= test["p_value"] <= 1
        low, high = r["accuracy_interval"]
        assert low <= r["metrics"]["accuracy"] <= high
        if name != "quantized-int8":  # post-training quantization has no fine-tuning
            assert 0 <= r["accuracy_before_fine_tuning"] <= 1


def test_collaborative_variants_keep_the_zeros_and_centroids_in_their_int8_files(fashion_run):
    results = fashion_run[0]
    records = {r["name"]: r for r in load_records(results)}
    cases = [("pruned-0.5-clustered-16-pcqat-int8", "pruned-0.5-clustered-16-fp32", "pruning+clustering+QAT", 0.5, 16),
             ("clustered-16-cqat-int8", "clustered-16-fp32", "clustering+QAT", 0.0, 16),
             ("pruned-0.5-pqat-int8", "pruned-0.5-fp32", "pruning+QAT", 0.5, None),
             ("qat-int8", "base-fp32", "QAT", 0.0, None)]
    for name, parent, method, sparsity, clusters in cases:
        r, kept = records[name], records[name]["preservation"]
        assert r["method"] == method and r["params"]["parent_key"] == digest(records[parent]["key"])
        assert kept["kernels"] == preservation.figures(results / f"{name}.tflite")  # read from the INT8 file
        assert kept["lost"] == [] and set(kept["compressed_layers"]) == set(kept["kernels"])
        assert all(k["zero_share"] >= sparsity - 0.005 and k["distinct_per_channel"] <= (clusters or 256)
                   for k in kept["kernels"].values())
        tuned = r["fine_tuning"]
        earlier = records[parent].get("fine_tuning", {}).get("steps", 0)  # the base was not fine-tuned
        assert tuned["steps"] == earlier + tuned["quantization_aware"]["steps"]
        assert r["size"]["raw_bytes"] < records[parent]["size"]["raw_bytes"] / 3  # INT8 against FP32
    assert report.kept_said(records["qat-int8"]) == "nothing to keep"
    executed = json.loads((results / "notebooks" / "02_pruning.ipynb").read_text())
    shown = [o for c in executed["cells"] if c.get("id") == "deploy-plain" for o in c["outputs"]]
    assert "plain QAT" in "".join(shown[0]["data"]["text/html"])  # the notebook's argument for the preserving scheme


def test_zip_sizes_are_the_files_on_disk(fashion_run):
    results = fashion_run[0]
    for r in load_records(results):
        model = results / next(name for name in r["files"] if name.endswith(".tflite"))
        archive = Path(str(model) + ".zip")
        assert r["size"]["raw_bytes"] == model.stat().st_size
        assert r["size"]["zipped_bytes"] == archive.stat().st_size
        with zipfile.ZipFile(archive) as z:
            assert z.read(model.name) == model.read_bytes()


def test_compression_shrinks_the_zip(fashion_run):
    records = {r["name"]: r for r in load_records(fashion_run[0])}
    assert records["clustered-16-fp32"]["size"]["times_smaller"] > 3
    assert records["pruned-0.5-fp32"]["size"]["times_smaller"] > 1.3
    assert records["quantized-int8"]["size"]["raw_bytes"] < records["base-fp32"]["size"]["raw_bytes"] / 3


def test_rerun_skips_finished_notebooks(tiny_lab):
    results = tiny_lab["root"]
    log: list[str] = []
    outputs = runner.run(notebook_tasks(), results_path=str(results), test_dataset_fraction=0.05,
                         params={**TINY_LAB, "models_dir": str(tiny_lab["tmp"] / "models")}, log=log.append)
    assert outputs == []
    assert sum("already done with these settings" in line for line in log) == 3


@pytest.mark.notebook
@pytest.mark.own_lab(reason="other data and another base: the pets sample on MobileNetV2")
@needs(SHARED_PETS, "the shared Oxford-IIIT Pet sample")
def test_pets_clustering_at_tiny_scale(tmp_path):
    runner.run(["clustered-4-fp32"], dataset="oxford-pets", dataset_root=str(SHARED_PETS),
               results_path=str(tmp_path / "results"), test_dataset_fraction=0.2,
               params={"train_samples": 60, "base_epochs": 1, "fine_tune_epochs": 1, "image_size": 32, "batch_size": 16,
                       "models_dir": str(tmp_path / "models")}, log=lambda _: None)
    records = {r["name"]: r for r in load_records(tmp_path / "results" / "seed-42")}
    assert steady(records) == {"base-fp32", "control-fp32", "clustered-4-fp32"}
    kernels = records["clustered-4-fp32"]["kernels"]
    assert sum(name.startswith("dense") for name in kernels) == 4  # the head, plus the late 1x1 convolutions
    assert all(stat["unique_values"] <= 4 for stat in kernels.values())
    assert records["base-fp32"]["params"]["weights"] in {"imagenet", "none (ImageNet download failed)"}
    assert len(list((tmp_path / "results" / "seed-42").glob("*-confusion-matrix.png"))) == len(records)


def test_head_filter_picks_dense_and_late_convs():
    class Layer:
        def __init__(self, kind, name):
            self.__class__ = type(kind, (), {})
            self.name = name

    picks = [compress.head_and_late_convs(Layer(k, n)) for k, n in
             [("Dense", "dense"), ("Conv2D", "Conv_1"), ("Conv2D", "block_16_project"), ("Conv2D", "block_1_expand"),
              ("DepthwiseConv2D", "block_16_depthwise")]]
    assert picks == [True, True, True, False, False]


@pytest.mark.notebook
@pytest.mark.own_lab(reason="two seeds, each training its own base; the tiny lab has one")
def test_several_seeds_each_train_their_own_base_and_one_summary_combines_them(tmp_path):
    log: list[str] = []
    runner.run(["clustered-2-fp32", "summary"], results_path=str(tmp_path / "results"),
               summary_path=str(tmp_path / "summary"), test_dataset_fraction=0.05, seeds=[1, 2],
               params={"train_samples": 300, "base_epochs": 1, "fine_tune_epochs": 1,
                       "models_dir": str(tmp_path / "models")},
               log=log.append)
    for seed in (1, 2):
        records = {r["name"] for r in load_records(tmp_path / "results" / f"seed-{seed}")}
        assert steady(records) == {"base-fp32", "control-fp32", "clustered-2-fp32"}
        assert len(list((tmp_path / "models").glob(f"fashion-mnist-*-base-*-s{seed}*.keras"))) == 1
    readme = (tmp_path / "summary" / "README.md").read_text()
    assert "Seeds: 2 (1, 2)" in readme and "## Seed by seed" in readme and "| seed      | 1, 2 " in readme
    assert "Δ vs control, seed 2 (pp)" in readme and "Δ 95 % CI over seeds (pp)" in readme  # the seed is the unit
    assert sorted(p.name for p in (tmp_path / "summary").glob("*.html")) == ["01_clustering.html", "04_summary.html"]
    assert any("01_clustering, seed-2" in line for line in log)


def test_the_summary_says_what_fits_on_a_microcontroller(fashion_run, tiny_lab):
    records = {r["name"]: r for r in load_records(fashion_run[0])}
    assert all(r.get("micro") for name, r in records.items()), "a record without its TFLM measurement"
    clustered = records["clustered-2-fp32"]["micro"]
    assert clustered["compressed"]["flash_bytes"] < clustered["flash_bytes"] / 4  # 1-bit indices of the kernels
    assert clustered["compressed"]["identical_to_plain"] == clustered["sample"]
    text = (tiny_lab["summary"] / "README.md").read_text()
    assert "## What fits on a microcontroller, and what does it cost?" in text and "images/boards.png" in text
    assert "- **Arduino Nano 33 BLE Sense** (256 KB SRAM, 1,024 KB flash): **" in text
    assert "**The course's PyTorch classifier** fits: structured-0.5 (sparsity 0.5, FP32, " in text
    assert "KB of a board's flash with TFLM's look-up-table compression" in text  # beside the zip, in answer 2


def test_own_boards_join_the_fifth_answer(tiny_lab, tmp_path):
    from labkit.deploy import boards
    from labkit.results import answers, seeds

    own = tmp_path / "boards.csv"
    own.write_text("name,chip,sram_kb,flash_kb\nTiny sensor,Cortex-M0+,16,64\n")
    said = answers.answers(seeds.load(tiny_lab["root"]), boards=boards.load(own))
    fifth = said["What fits on a microcontroller, and what does it cost?"]
    assert "- **Tiny sensor** (16 KB SRAM, 64 KB flash): no compressed variant fits." in fifth
