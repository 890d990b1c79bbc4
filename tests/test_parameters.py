"""The notebooks' parameters, declared once (labkit.parameters): the schema and the notebooks agree, and every
parameter has a bad value that `labkit run` refuses in one line (exit 2) before anything runs, in a used results
folder whose files stay as they were."""

from __future__ import annotations

import ast
import json

import pytest
from conftest import DEBIAN_FASHION, ROOT

from labkit import parameters
from labkit.errors import LabkitError
from labkit.methods.tp_pruning import CRITERIA
from labkit.run import cli

# One value per parameter that cannot mean anything; how labkit run takes it (an option, else -p NAME=VALUE).
BAD = {
    "dataset": "cifar", "download_dataset": "maybe", "base_epochs": 0, "base_patience": 0, "fine_tune_epochs": -1,
    "fine_tune_checks": 0, "fine_tune_patience": 0, "learning_rate": -0.1, "fine_tune_learning_rate": 0,
    "batch_size": 0, "train_samples": 5, "fine_tune_samples": 0, "test_dataset_fraction": 1.5, "image_size": 8,
    "model_path": "/no/such/model.keras", "weights": "/no/such/weights.h5", "fine_tune_blocks": -1,
    "results_dir": None, "models_dir": None, "seed": -1, "margin_pp": 0, "micro_samples": 0, "force": "maybe",
    "clusters": [1], "quantize_int8": "maybe", "sparsities": [1.5], "combined": [0.5], "deployed": ["int8"],
    "device": "tpu", "base_learning_rate": 0, "sparsity": 1.0, "hidden_units": 0, "training_batches": 0,
    "netron_live": "maybe", "int8_calibration": 0, "input_model": "/no/such/model.pt",
    "backup_model": "/no/such/folder/pruned.pt", "final_model": "/no/such/folder/final.pt",
    "onnx_model": "/no/such/folder/model.onnx", "tflite_model": "/no/such/folder/model.tflite",
    "tp_criteria": ["random"], "summary_dir": 3, "seeds": [-1], "reports": "04_summary.html", "executed_on": 3,
    "scale": "huge", "boards_file": "/no/such/boards.csv", "dataset_root": "/no/such/folder",
}


def notebook_defaults(notebook: str) -> dict:
    import papermill as pm

    found = pm.inspect_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"))
    return {name: ast.literal_eval(p["default"]) for name, p in found.items()}


@pytest.mark.parametrize("notebook", parameters.NOTEBOOKS)
def test_the_schema_knows_every_parameter_of_the_notebook_and_its_default(notebook):
    assert {name: p.default for name, p in parameters.SCHEMA[notebook].items()} == notebook_defaults(notebook)
    assert parameters.check(notebook, notebook_defaults(notebook)) == notebook_defaults(notebook)


def test_the_schemas_choices_are_the_labs():
    assert set(CRITERIA) == {"magnitude", "taylor"}


def test_every_parameter_has_a_bad_value_refused_in_one_line():
    names = {name for fields in parameters.SCHEMA.values() for name in fields}
    assert set(BAD) == names
    for notebook, fields in parameters.SCHEMA.items():
        for name in fields:
            with pytest.raises(LabkitError, match=rf"^parameter {name}=") as refused:
                parameters.check(notebook, {name: BAD[name]})
            assert "\n" not in str(refused.value) and "e.g." in str(refused.value), name


def test_relations_between_parameters_are_checked():
    with pytest.raises(LabkitError, match="fine_tune_samples=600 is more than train_samples=300"):
        parameters.check("02_pruning", {"train_samples": 300, "fine_tune_samples": 600})
    with pytest.raises(LabkitError, match="train_samples=40 is too few for oxford-pets: at least 42"):
        parameters.check("01_clustering", {"dataset": "oxford-pets", "train_samples": 40})
    with pytest.raises(LabkitError, match="give lists with -y"):
        parameters.check("01_clustering", {"clusters": "[4]"})
    assert parameters.check("01_clustering", {"train_samples": 12, "clusters": [2]})["clusters"] == [2]


def test_the_help_lists_every_parameter_and_the_docs_page_is_the_schemas():
    table = parameters.help_table()
    for name in BAD:
        assert f"`{name}`" in table
    assert table in (ROOT / "docs" / "parameters.md").read_text(), "regenerate docs/parameters.md from the schema"
    usage = cli.build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "fine_tune_learning_rate" in usage and "(0, 1]" in usage


def given(name, value) -> list[str]:
    """The command-line words that give a parameter its value."""
    if name in parameters.OPTIONS:
        return [parameters.OPTIONS[name], str(value)]
    return ["-p", f"{name}={value!r}" if not isinstance(value, str) else f"{name}={value}"]


@pytest.fixture(scope="module")
def used_folder(tmp_path_factory):
    """A results folder where an earlier run left a record and an executed notebook."""
    results = tmp_path_factory.mktemp("used") / "results"
    (results / "seed-42" / "notebooks").mkdir(parents=True)
    (results / "seed-42" / "clustered-16-fp32.json").write_text(json.dumps({"name": "clustered-16-fp32"}))
    (results / "seed-42" / "notebooks" / "01_clustering.ipynb").write_text("{}")
    return results


def snapshot(folder) -> dict:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
@pytest.mark.parametrize("name", sorted(BAD))
def test_labkit_run_refuses_a_bad_value_before_anything_runs(name, used_folder, capsys):
    before = snapshot(used_folder)
    code = cli.main(["run", "--tasks", "all", "--results-path", str(used_folder), "--no-tracking",
                     *given(name, BAD[name])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert name.replace("_", "-") in err or name in err, err
    assert snapshot(used_folder) == before and not (used_folder / ".labkit.lock").exists()
