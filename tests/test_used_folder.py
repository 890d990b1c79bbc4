"""Runs in a folder where other runs happened before: what an earlier run left is reused only when it is what this
run would make; anything else is recomputed with a line saying why, and the summary never combines two runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, idx_folder, write_idx
from test_user_files import tiny_keras

from labkit import parameters, records
from labkit.run import cli, runner

TINY = {"base_epochs": 1, "fine_tune_epochs": 1}


def keys(folder: Path) -> dict[str, dict]:
    return {r["name"]: r["key"] for r in records.load_records(folder)}


@pytest.mark.notebook
@pytest.mark.own_lab(reason="runs at two scales in one folder, papermill's own command first: what is recomputed")
def test_runs_with_other_settings_recompute_what_they_use_and_the_summary_refuses_to_mix(tmp_path, capsys):
    folder, models = tmp_path / "results", tmp_path / "models"
    papermill = subprocess.run(  # a small direct papermill run, as the README shows one
        [sys.executable, "-m", "papermill", "--log-level", "ERROR", str(ROOT / "notebooks" / "01_clustering.ipynb"),
         str(tmp_path / "01.ipynb"), "-p", "results_dir", str(folder), "-p", "models_dir", str(models),
         "-p", "train_samples", "300", "-p", "base_epochs", "1", "-p", "test_dataset_fraction", "0.05",
         "-p", "quantize_int8", "False", "-y", "clusters: [2]"], capture_output=True, text=True, timeout=600)
    assert papermill.returncode == 0, papermill.stderr[-2000:]
    log: list[str] = []
    runner.run(["pruned-0.2-fp32"], results_path=str(folder), test_dataset_fraction=0.1,
               params={**TINY, "train_samples": 600, "models_dir": str(models)}, log=log.append)
    stale = [line for line in log if line.startswith("recomputing")]
    assert [line.split(" (")[0] for line in stale][:2] == ["recomputing base-fp32", "recomputing control-fp32"]
    assert "selection.train_samples 300 → 600" in stale[0] and "selection.test 500 → 1000" in stale[0]
    made = keys(folder / "seed-42")
    shared = ("dataset", "selection", "seed", "base", "versions")
    for name in ("base-fp32", "control-fp32", "pruned-0.2-fp32"):
        assert {p: made[name][p] for p in shared} == {p: made["pruned-0.2-fp32"][p] for p in shared}, name
        assert made[name]["selection"]["train_samples"] == 600 and made[name]["selection"]["test"] == 1000
    assert made["pruned-0.2-fp32"]["control"]["key"] == records.digest(made["control-fp32"])
    assert made["clustered-2-fp32"]["selection"]["train_samples"] == 300  # left as it was: not asked for
    code = cli.main(["run", "--tasks", "summary", "--results-path", str(folder), "-p", f"models_dir={models}"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert re.search(r"mixes runs: (control-\d+-steps-fp32, )*clustered-2-fp32(, control-\d+-steps-fp32)* made "
                     r"from other data or another base than base-fp32 \(selection.train_samples 600 → 300", err)
    assert "--results-path" in err


def test_a_side_run_writes_its_summary_beside_its_results(tiny_lab, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(tiny_lab["root"], folder, ignore=shutil.ignore_patterns("*.lock"))
    (summary := folder / "summary").mkdir()
    (summary / "05_other_run.html").write_text("a report of an older run")
    (summary / "notes.txt").write_text("the user's own file")
    (summary / ".labkit-summary.json").write_text('{"files": ["05_other_run.html"]}')
    def committed() -> str:
        return subprocess.run(["git", "status", "--porcelain", "summaries/"], cwd=ROOT, capture_output=True,
                              text=True).stdout

    before = committed()
    runner.run(["summary"], results_path=str(folder), params={"models_dir": str(tiny_lab["tmp"] / "models")},
               log=lambda _: None)
    assert committed() == before  # the committed summary is untouched
    assert not (summary / "05_other_run.html").exists()  # the older run's report is gone, not mixed in
    assert (summary / "notes.txt").is_file()  # what labkit did not write stays
    readme = (summary / "README.md").read_text()
    assert "## What made these numbers" in readme and "train_samples 300" in readme
    assert sorted(p.name for p in summary.glob("*.html")) == ["01_clustering.html", "02_pruning.html",
                                                              "03_structured_pruning.html", "04_summary.html"]


@pytest.mark.notebook
@pytest.mark.own_lab(reason="the user's model and data files, replaced in place between runs")
def test_a_replaced_model_and_a_changed_data_file_are_seen(tmp_path):
    data = idx_folder(tmp_path / "idx", size=20, n=90)
    model = tiny_keras(tmp_path / "model.h5", shape=(20, 20, 1))
    command = ["run", "--tasks", "clustered-2-fp32", "--model-path", str(model), "--dataset-root", str(data),
               "--results-path", str(tmp_path / "results"), "-p", "batch_size=32",
               "-p", f"models_dir={tmp_path / 'models'}"]

    def run() -> list[str]:
        log: list[str] = []
        args = cli.build_parser().parse_args(command)
        runner.run(args.tasks, dataset_root=args.dataset_root, results_path=args.results_path,
                   model_path=args.model_path, params=parameters.parse_params(args.param), log=log.append)
        return log

    run()
    assert any(line.startswith("skip 01_clustering (seed-42)") for line in run())  # nothing changed: nothing redone
    tiny_keras(model, shape=(20, 20, 1), seed=1)  # the user's model, replaced at the same path
    stale = [line for line in run() if line.startswith("recomputing")]
    assert len(stale) == 3 and all("base.sha256" in line and "dataset" not in line for line in stale), stale
    assert keys(tmp_path / "results" / "seed-42")["base-fp32"]["base"]["sha256"] == records.sha256_of(model)
    labels = (np.arange(90) + 1) % 3
    write_idx(data / "train-labels-idx1-ubyte.gz", labels)  # a data file, changed in place
    stale = [line for line in run() if line.startswith("recomputing")]
    assert len(stale) == 3 and all("dataset.sha256" in line for line in stale), stale
