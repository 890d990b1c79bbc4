"""A record belongs to the run that made it: its key, the data's checksum, and where a summary may go."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import ROOT, idx_folder, write_idx

from labkit import LabkitError, records
from labkit.data import describe
from labkit.models import user_files
from labkit.records import KERAS, Context
from labkit.run import runner


def context(train_samples: int = 600, sha: str = "a" * 64) -> Context:
    return Context({"name": "fashion-mnist", "sha256": "f" * 64}, {"train_samples": train_samples}, 42, KERAS,
                   {"source": "trained here", "file": "models/base.keras", "sha256": sha})


def test_a_record_is_reused_only_with_its_key(tmp_path):
    key = context().key({"clusters": 4})
    (tmp_path / "clustered-4-fp32.json").write_text(json.dumps({"name": "clustered-4-fp32", "key": key}))
    said: list[str] = []
    assert records.load_record(tmp_path, "clustered-4-fp32", key, log=said.append)["key"] == key
    assert records.load_record(tmp_path, "clustered-4-fp32", key, force=True) is None
    assert said == []
    other = context(3000, "b" * 64).key({"clusters": 4})
    assert records.load_record(tmp_path, "clustered-4-fp32", other, log=said.append) is None
    assert said == [f"recomputing clustered-4-fp32 ({tmp_path.name}): selection.train_samples 600 → 3000; "
                    "base.sha256 aaaaaaaaaa… → bbbbbbbbbb…"]
    assert records.load_record(tmp_path, "pruned-0.5-fp32", key) is None  # none yet: nothing to say


def test_a_record_without_a_key_is_stale(tmp_path):
    (tmp_path / "base-fp32.json").write_text(json.dumps({"name": "base-fp32", "metrics": {}}))
    said: list[str] = []
    assert records.load_record(tmp_path, "base-fp32", context().key({}), log=said.append) is None
    assert said == [f"recomputing base-fp32 ({tmp_path.name}): made by an older labkit, without a key"]


def test_a_key_names_its_control_and_the_libraries_that_shape_the_numbers():
    control = {"name": "control-1-epochs-fp32", "key": context().key({"epochs": 1})}
    key = context().key({"clusters": 4}, control)
    assert key["control"] == {"name": "control-1-epochs-fp32", "key": records.digest(control["key"])}
    assert set(key["versions"]) == set(KERAS) and key["versions"]["tensorflow"] == "2.21.0"
    assert context().made({"key": key}) and not context(3000).made({"key": key}) and not context().made({})


def test_a_model_file_is_named_without_a_path_of_the_machine(tmp_path):
    model = tmp_path / "model.h5"
    model.write_bytes(b"weights")
    identity = records.file_identity(model, "--model-path")
    assert identity == {"source": "--model-path", "file": "model.h5", "sha256": records.sha256_of(model)}
    assert records.file_identity(ROOT / "README.md", "trained here")["file"] == "README.md"
    model.write_bytes(b"other weights")  # replaced at the same path
    assert records.file_identity(model, "--model-path")["sha256"] != identity["sha256"]
    saved = tmp_path / "saved"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    before = records.sha256_of(saved)
    (saved / "variables" / "v.data").write_bytes(b"w")
    assert records.sha256_of(saved) != before  # a SavedModel folder: every file counts


def test_the_data_checksum_sees_a_file_changed_in_place(tmp_path):
    folder = idx_folder(tmp_path / "idx", n=30)
    before = describe("idx", folder)
    assert (before.num_classes, before.image_shape, before.channels, before.files) == (3, (28, 28), 1, 4)
    assert before.identity() == {"name": "idx", "sha256": before.sha256, "files": 4, "classes": 3}
    labels = np.arange(30) % 3
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels[::-1])  # same size, other content
    assert describe("idx", folder).sha256 != before.sha256
    assert describe(None, folder).tag == f"idx-{describe('idx', folder).sha256[:8]}"


def test_a_partial_pets_download_keeps_the_37_breeds(pets_dir, tmp_path):
    import tensorflow as tf

    data = describe(None, pets_dir)
    assert data.kind == "oxford-pets" and data.num_classes == 37 and data.class_names[5] == "Bengal"
    for outputs in (37, 3):
        model = tf.keras.Sequential([tf.keras.layers.Input((32, 32, 3)), tf.keras.layers.Flatten(),
                                     tf.keras.layers.Dense(outputs)])
        model.save(tmp_path / f"pets-{outputs}.h5")
    user_files.check(data, str(tmp_path / "pets-37.h5"), {}, True, False, 32)  # the course's 37-output model fits
    with pytest.raises(LabkitError, match="has 3 outputs but the oxford-pets dataset has 37 classes"):
        user_files.check(data, str(tmp_path / "pets-3.h5"), {}, True, False, 32)


@pytest.mark.parametrize("changed, default", [
    ({}, True), ({"params": {"train_samples": 600}}, False), ({"results_path": "elsewhere"}, False),
    ({"dataset_root": "data"}, False), ({"dataset": "idx"}, False),
    ({"test_fraction": 0.5}, False), ({"model_path": "m.h5"}, False), ({"course_files": {"input_model": "x"}}, False),
])
def test_only_the_labs_default_run_writes_the_committed_summary(changed, default):
    settings = {"dataset": None, "dataset_root": None, "results_path": None, "test_fraction": 1.0, "params": {},
                "model_path": None, "course_files": {}}
    assert runner._is_default(**{**settings, **changed}) is default


def test_made_by_says_what_made_the_numbers():
    record = {"name": "base-fp32", "key": Context(
        {"name": "fashion-mnist", "sha256": "f" * 64, "files": 4, "classes": 10},
        {"train_samples": 30000, "validation_fraction": 0.1, "test_fraction": 1.0, "image_size": [28, 28],
         "grayscale": True, "train": 27000, "validation": 3000, "test": 10000}, 42, KERAS,
        {"source": "trained here", "file": "models/base.keras", "sha256": "a" * 64}).key({})}
    rows = records.made_by(record, [42, 43])
    assert rows["selection"] == ("27,000 training and 3,000 validation images (train_samples 30,000, 10% held out); "
                                 "10,000 test images (100% of the test set); 28×28 grayscale")
    assert rows["seed"] == "42, 43" and "each seed has its own" in rows["base"]
    record["key"]["selection"].update(train_samples=None, train=54000, validation=6000, fine_tune_samples=27000,
                                      fine_tune=27000)
    assert records.made_by(record)["selection"].startswith(
        "54,000 training and 6,000 validation images (train_samples all, 10% held out); variants and controls "
        "fine-tuned on 27,000 of the training images; 10,000 test images")
    assert rows["libraries"].startswith("tensorflow 2.21.0, tensorflow kernels Eigen, tf-keras 2.21.0")


def test_records_name_tensorflow_kernels_as_tensorflow_runs_them(monkeypatch):
    """oneDNN's and Eigen's kernels round differently: a record names which ran, read from TensorFlow once it is
    loaded, else from TF_ENABLE_ONEDNN_OPTS as TensorFlow would read it."""
    import tensorflow as tf  # noqa: F401  (loaded: asked directly)

    assert records.versions(("tensorflow kernels",)) == {"tensorflow kernels": "Eigen"}  # labkit's default
    monkeypatch.delitem(sys.modules, "tensorflow")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert records.tensorflow_kernels() == "Eigen"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert records.tensorflow_kernels() == "oneDNN"


def test_the_selection_names_the_images_variants_are_fine_tuned_on():
    x = np.zeros((10, 28, 28, 1), np.float32)
    chosen = records.selection(None, 0.1, 1.0, x[:9], x[:1], x[:5], fine_tune_samples=4)
    assert (chosen["fine_tune_samples"], chosen["fine_tune"], chosen["train"]) == (4, 4, 9)
    assert records.selection(None, 0.1, 1.0, x[:9], x[:1], x[:5], fine_tune_samples=27000)["fine_tune"] == 9
    assert records.selection(None, 0.1, 1.0, x[:9], x[:1], x[:5])["fine_tune"] == 9
    with pytest.raises(LabkitError, match="fine_tune_samples 0 must be at least 1"):
        records.selection(None, 0.1, 1.0, x[:9], x[:1], x[:5], fine_tune_samples=0)
