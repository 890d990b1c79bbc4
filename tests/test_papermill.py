"""Papermill as its users call it: from any directory, with -p and -y, without the runner."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import ROOT

from labkit import LabkitError, parameters, paths

PAPERMILL = [sys.executable, "-m", "papermill", "--log-level", "ERROR"]


def test_a_relative_folder_is_in_the_project_and_an_absolute_one_is_kept(tmp_path: Path):
    assert paths.resolve("results/fashion-mnist") == ROOT / "results" / "fashion-mnist"
    assert paths.resolve(tmp_path) == tmp_path
    assert paths.shown(ROOT / "models" / "x.keras") == "models/x.keras"
    assert paths.shown(tmp_path) == str(tmp_path)


def test_kernels_import_this_checkouts_labkit_first(monkeypatch):
    """A run's kernels and Ray workers get the project folder first on PYTHONPATH: with another checkout installed
    (editable) in the same environment, they wrote its results folder, not this one's."""
    monkeypatch.setenv("PYTHONPATH", f"/elsewhere:{ROOT}:/more")
    assert paths.pythonpath() == f"{ROOT}:/elsewhere:/more"
    monkeypatch.delenv("PYTHONPATH")
    assert paths.pythonpath() == str(ROOT)


@pytest.mark.parametrize("notebook", ["01_clustering", "02_pruning", "03_structured_pruning", "04_summary"])
def test_folder_defaults_are_relative_to_the_project_not_the_caller(notebook: str):
    import papermill as pm

    folders = {name: p["default"] for name, p in pm.inspect_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"))
               .items() if name.endswith("_dir")}
    assert folders and all(not v.strip("\"'").startswith(("..", "/")) for v in folders.values()), folders


@pytest.mark.parametrize("value", ["[4]", "4"])
def test_a_list_parameter_given_as_text_names_the_fix(value):
    with pytest.raises(LabkitError, match=r"clusters=.* is refused \(Input should be a valid list; .* with -y\)"):
        parameters.check("01_clustering", {"clusters": value})
    assert parameters.check("02_pruning", {"sparsities": (0.5,)})["sparsities"] == [0.5]


@pytest.mark.notebook
@pytest.mark.own_lab(reason="papermill's own command line, stopped by the parameters check before any lab runs")
@pytest.mark.parametrize("name, value, refusal", [
    ("clusters", "[4]", "parameter clusters='[4]' is refused (Input should be a valid list"),
    ("fine_tune_epochs", "-1", "parameter fine_tune_epochs=-1 is refused (Input should be greater than or equal")])
def test_papermill_with_a_bad_value_stops_in_one_line_before_the_data(tmp_path: Path, name, value, refusal):
    run = subprocess.run([*PAPERMILL, str(ROOT / "notebooks" / "01_clustering.ipynb"), str(tmp_path / "out.ipynb"),
                          "-p", name, value, "-p", "results_dir", str(tmp_path / "results")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert f"LabkitError: {refusal}" in run.stderr
    assert "Traceback" not in _error_output(tmp_path / "out.ipynb")
    assert not (tmp_path / "results").exists()  # stopped before anything ran


def _error_output(notebook: Path) -> str:
    import nbformat

    cells = nbformat.read(str(notebook), as_version=4).cells
    return "\n".join("\n".join(o.get("traceback", [])) for c in cells for o in c.get("outputs", [])
                     if o["output_type"] == "error")


def test_papermill_from_another_directory_reads_relative_folders_in_the_project(tiny_lab, tmp_path: Path):
    records = Path("results") / f".test-{uuid.uuid4().hex[:8]}"  # inside the project's (ignored) results folder
    shutil.copytree(tiny_lab["root"], ROOT / records, ignore=shutil.ignore_patterns("*.lock", "notebooks"))
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    try:
        run = subprocess.run([*PAPERMILL, str(ROOT / "notebooks" / "04_summary.ipynb"), "out.ipynb",
                              "-p", "results_dir", str(records), "-p", "summary_dir", str(tmp_path / "summary"),
                              "-y", "reports: []"], cwd=caller, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(ROOT / records)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "summary" / "README.md").is_file()
    assert sorted(p.name for p in caller.iterdir()) == ["out.ipynb"]  # nothing written beside the caller
