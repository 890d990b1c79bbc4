"""The user's own model and data: a Keras file as the base, image folders and IDX files, checked before training.

Every file here is made by the test: a tiny Keras .h5 (3 classes, 32×32×3), an image folder of generated images,
IDX files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import idx_folder, steady
from PIL import Image

from labkit import records as records_
from labkit.data import describe, load_dataset, recognise
from labkit.errors import LabkitError
from labkit.records import load_records
from labkit.run import cli, runner

TINY = {"train_samples": 120, "base_epochs": 1, "fine_tune_epochs": 1, "batch_size": 32}


def tiny_keras(path: Path, classes: int = 3, shape: tuple[int, int, int] = (32, 32, 3), seed: int = 0) -> Path:
    """A small trained-looking Keras classifier ending in softmax, with a BatchNormalization layer (TFMOT cannot
    compress its weights); its weights drawn with `seed`."""
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    # Named layers: Keras numbers unnamed ones by how many it has made in this process (conv2d_1, dense_5 …).
    model = tf.keras.Sequential([layers.Input(shape), layers.Conv2D(8, 3, activation="relu", name="conv2d"),
                                 layers.BatchNormalization(name="batch_normalization"), layers.MaxPooling2D(4),
                                 layers.Flatten(), layers.Dense(16, activation="relu", name="dense"),
                                 layers.Dense(classes, activation="softmax", name="dense_1")])
    model.save(path)
    return path


def image_folder(root: Path, classes: int = 3, per_class: int = 20, split: bool = False) -> Path:
    """Class sub-folders of generated images of mixed sizes and formats; each class has its own colour, so the
    classes can be learned."""
    rng = np.random.default_rng(0)
    formats = [("PNG", ".png"), ("JPEG", ".jpg"), ("GIF", ".gif"), ("WEBP", ".webp")]
    for c in range(classes):
        for i in range(per_class):
            part = root / (("train" if i % 4 else "test") if split else "") / f"class_{c}"
            part.mkdir(parents=True, exist_ok=True)
            size = (int(rng.integers(20, 48)), int(rng.integers(20, 48)))
            pixels = rng.integers(0, 60, (*size, 3)) + np.array([60 * c, 100, 200 - 60 * c])
            fmt, suffix = formats[i % len(formats)]
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(part / f"img_{i}{suffix}", format=fmt)
    return root


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory) -> Path:
    return tiny_keras(tmp_path_factory.mktemp("model") / "pet-dataset-tensorflow.h5")


def test_layouts_are_recognised(tmp_path, pets_dir):
    assert recognise(image_folder(tmp_path / "folder", per_class=2)) == "image-folder"
    assert recognise(idx_folder(tmp_path / "idx", n=30)) == "idx"
    assert recognise(pets_dir) == "oxford-pets"
    assert recognise(None) == recognise(tmp_path / "nothing") == "fashion-mnist"


def test_image_folder_splits_by_class_and_reads_every_format(tmp_path):
    root = image_folder(tmp_path / "f", per_class=10)
    data = load_dataset(describe("image-folder", root), image_size=(24, 16), seed=3)
    assert data.class_names == ["class_0", "class_1", "class_2"] and data.x_train.shape[1:] == (24, 16, 3)
    assert np.bincount(data.y_test).tolist() == [2, 2, 2] and len(data.x_train) == 24
    assert data.describe().startswith("image-folder (f): ") and str(tmp_path) not in data.describe()
    split = load_dataset(describe("image-folder", image_folder(tmp_path / "s", split=True)), image_size=16)
    assert len(split.x_test) == 15 and len(split.x_train) == 45
    gray = tmp_path / "g"
    for c in ("a", "b"):
        (gray / c).mkdir(parents=True)
        Image.fromarray(np.full((9, 7), 50 if c == "a" else 200, np.uint8)).save(gray / c / "x.png")
        Image.fromarray(np.full((5, 5), 10, np.uint8)).save(gray / c / "y.png")
    assert load_dataset(describe(None, gray), image_size=8).x_train.shape[1:] == (8, 8)


def test_idx_files_of_any_size_gzipped_or_not(tmp_path):
    for gz in (True, False):
        data = load_dataset(describe("idx", idx_folder(tmp_path / str(gz), size=12, gz=gz, n=30)))
        assert data.x_train.shape == (30, 12, 12) and data.class_names == ["0", "1", "2"] and data.name == "idx"


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "a").mkdir(parents=True) or image_folder(root, classes=1, per_class=2),
     "holds no images"),
    (lambda root: image_folder(root, classes=1, per_class=2), "at least two"),
    (lambda root: (image_folder(root, per_class=2) / "class_1" / "broken.png").write_bytes(b"nope"),
     "cannot read image .*broken.png"),
])
def test_bad_image_folders_are_named_before_training(tmp_path, make, message):
    make(tmp_path / "data")
    with pytest.raises(LabkitError, match=message):
        runner.run(["clustered-2-fp32"], dataset="image-folder", dataset_root=str(tmp_path / "data"),
                   results_path=str(tmp_path / "r"), log=lambda _: None)
    assert not (tmp_path / "r").exists()


def test_bad_models_are_one_line_errors_before_training(tmp_path, keras_file, capsys):
    folder = str(image_folder(tmp_path / "f", per_class=2))
    pth = tmp_path / "model.pth"
    pth.write_bytes(b"torch")
    cases = [([str(pth)], "is not a Keras model: --model-path takes .* PyTorch state dict goes to --input-model"),
             ([str(tiny_keras(tmp_path / "four.h5", classes=4))], "has 4 outputs but .* has 3 classes"),
             ([str(tiny_keras(tmp_path / "flat.h5", shape=(32, 32, 4)))], "can only be resized to")]
    for model, message in cases:
        code = cli.main(["run", "--model-path", *model, "--dataset-root", folder, "--results-path",
                         str(tmp_path / "r"), "--tasks", "clustered-2-fp32"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert __import__("re").search(message, err), err
    assert not (tmp_path / "r").exists()


@pytest.mark.notebook
@pytest.mark.own_lab(reason="the course's command line as written, on the user's Keras model and image folder")
def test_the_courses_command_line_runs_on_a_users_model_and_image_folder(tmp_path, keras_file, monkeypatch):
    """The course's first command line as it is written (relative paths, --tasks all), at tiny scale: ~1.5 min."""
    folder = image_folder(tmp_path / "build" / "pet-dataset", per_class=24)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "--model-path", str(keras_file), "--dataset-root", "build/pet-dataset/",
                     "--results-path", "build/results", "--tasks", "all",
                     "-p", f"models_dir={tmp_path / 'models'}", *[f"-p{k}={v}" for k, v in TINY.items()]])
    assert code == 0
    results = tmp_path / "build" / "results" / "seed-42"
    records = {r["name"]: r for r in load_records(results)}
    keras_variants = [n for n in runner.plan_tasks(["all"]).variant_names() if not n.startswith(("structured", "tp-"))]
    assert steady(records) == {"base-fp32", "control-fp32", *keras_variants}
    base = records["base-fp32"]
    assert base["params"]["model_path"] == keras_file.name and base["params"]["trained_now"] is False
    assert base["key"]["base"] == {"source": "--model-path", "file": keras_file.name,
                                   "sha256": records_.sha256_of(keras_file)}
    assert base["dataset"].startswith("image-folder (pet-dataset): ")
    for record in results.glob("*.json"):  # records name files, never a path of the machine that made them
        assert str(tmp_path) not in record.read_text() and "/work/" not in record.read_text(), record.name
    assert not list((tmp_path / "models").glob("*.keras"))  # no base was trained
    for name in ("clustered-4-fp32", "pruned-0.5-fp32", "pruned-0.5-clustered-16-fp32"):
        assert records[name]["left_alone"] == ["batch_normalization (BatchNormalization)"]
        assert set(records[name]["kernels"]) == {"conv2d", "dense", "dense_1"}
    assert all(s["unique_values"] <= 4 for s in records["clustered-4-fp32"]["kernels"].values())
    executed = (results / "notebooks" / "01_clustering.ipynb").read_text()
    assert "batch_normalization (BatchNormalization)" in executed and "image-folder (" in executed
    summary = (tmp_path / "build" / "results" / "summary" / "README.md").read_text()  # not the committed summary
    assert "Dataset: image-folder (pet-dataset)" in summary and f"`{keras_file.name}`" in summary
    assert str(tmp_path) not in summary and str(folder) not in summary


@pytest.mark.notebook
@pytest.mark.own_lab(reason="IDX files of another image size train a base of their own")
def test_idx_files_train_the_lab_base_end_to_end(tmp_path):
    runner.run(["clustered-2-fp32"], dataset="idx", dataset_root=str(idx_folder(tmp_path / "idx", size=20)),
               results_path=str(tmp_path / "r"), test_dataset_fraction=0.5,
               params={**TINY, "models_dir": str(tmp_path / "models")}, log=lambda _: None)
    records = {r["name"]: r for r in load_records(tmp_path / "r" / "seed-42")}
    assert steady(records) == {"base-fp32", "control-fp32", "clustered-2-fp32"}
    assert records["base-fp32"]["params"]["trained_now"] is True
    assert records["base-fp32"]["dataset"].startswith("idx (") and records["clustered-2-fp32"]["left_alone"] == []
    assert len(list((tmp_path / "models").glob("idx-*-base-20x20-*.keras"))) == 1


def test_every_keras_format_loads_and_its_input_shape_fits_the_data(tmp_path, keras_file):
    import tensorflow as tf

    from labkit.methods import experiment
    from labkit.models import model_inputs

    model = model_inputs.load_classifier(keras_file)
    model.save(tmp_path / "model.keras")
    tf.keras.models.save_model(model, tmp_path / "saved", save_format="tf")
    for path in (tmp_path / "model.keras", tmp_path / "saved"):
        assert model_inputs.input_spec(model_inputs.load_classifier(path)) == (32, 32, 3)
    # 28×28 grayscale IDX images become the model's 32×32 RGB inputs
    exp = experiment.prepare("idx", str(idx_folder(tmp_path / "idx", n=30)), results_dir=tmp_path / "r",
                             models_dir=tmp_path / "m", model_path=str(tmp_path / "saved"))
    assert exp.x_train.shape[1:] == (32, 32, 3) and exp.x_test.shape[1:] == (32, 32, 3)
    assert experiment.base_model(exp) is exp.user_model and exp.base_info["trained_now"] is False
    with pytest.raises(LabkitError, match="folder without saved_model.pb"):
        model_inputs.load_classifier(tmp_path)


def test_idx_files_of_one_class_are_refused_before_training(tmp_path):
    with pytest.raises(LabkitError, match="fewer than two classes"):
        runner.run(["clustered-2-fp32"], dataset="idx", dataset_root=str(idx_folder(tmp_path / "idx", classes=1)),
                   results_path=str(tmp_path / "r"), log=lambda _: None)
    assert not (tmp_path / "r").exists()
