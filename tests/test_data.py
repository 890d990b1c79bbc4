"""Dataset readers: generated files for the edge cases, the real data on the machine for integration."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from conftest import DEBIAN_FASHION, SHARED_PETS, needs, write_idx

from labkit import LabkitError
from labkit.data import (
    fashion_mnist,
    load_fashion_mnist,
    load_pets,
    preprocess,
    subset,
    tf_dataset,
    torch_loader,
    train_validation_split,
)
from labkit.run.cli import main


def test_idx_round_trip(idx_dir):
    data = load_fashion_mnist(idx_dir, verify=False)
    assert data.x_train.shape == (50, 28, 28) and data.x_test.shape == (20, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.y_train.max() <= 9
    assert data.class_names[9] == "Ankle boot"


def test_uncompressed_idx_is_read(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    path = write_idx(tmp_path / "x-idx3-ubyte", array)
    np.testing.assert_array_equal(fashion_mnist.read_idx(path), array)


def test_checksum_mismatch_names_the_file(idx_dir):
    with pytest.raises(LabkitError, match="train-images-idx3-ubyte.gz fails its checksum"):
        load_fashion_mnist(idx_dir)


def test_checksum_is_of_decompressed_content(tmp_path):
    array = np.arange(8, dtype=np.uint8)
    path = write_idx(tmp_path / "y.gz", array)
    md5 = hashlib.md5(gzip.open(path).read()).hexdigest()
    np.testing.assert_array_equal(fashion_mnist.read_idx(path, md5), array)


def test_truncated_idx_names_the_file(idx_dir):
    path = idx_dir / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.open(path).read()
    path.write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(LabkitError, match="t10k-labels-idx1-ubyte.gz is truncated"):
        load_fashion_mnist(idx_dir, verify=False)


def test_corrupt_gzip_names_the_file(idx_dir):
    path = idx_dir / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(LabkitError, match="train-labels-idx1-ubyte.gz is corrupt or truncated"):
        load_fashion_mnist(idx_dir, verify=False)


def test_missing_dataset_names_every_place_and_the_fix(no_data_anywhere, monkeypatch):
    monkeypatch.setenv("LABKIT_DATA", str(no_data_anywhere / "mine"))
    with pytest.raises(LabkitError) as err:
        load_fashion_mnist()
    message = str(err.value)
    assert "\n" not in message
    for place in ("mine", "debian", "cache"):
        assert place in message
    assert "--download-dataset" in message and "dataset-fashion-mnist" in message
    with pytest.raises(LabkitError, match="no Fashion-MNIST in .*given .*leave out --dataset-root") as named:
        load_fashion_mnist(no_data_anywhere / "given")  # a folder the user named: the only place looked in
    assert "mine" not in str(named.value)


def test_cli_reports_missing_dataset_in_one_line(no_data_anywhere, capsys):
    assert main(["data", "--dataset-root", str(no_data_anywhere / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no Fashion-MNIST in ") and err.count("\n") == 1


def test_subset_and_split_are_seeded(idx_dir):
    data = load_fashion_mnist(idx_dir, verify=False)
    small = subset(data, train_samples=10, test_fraction=0.5, seed=3)
    assert len(small.x_train) == 10 and len(small.x_test) == 10
    again = subset(data, train_samples=10, test_fraction=0.5, seed=3)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    x_tr, y_tr, x_val, y_val = train_validation_split(data.x_train, data.y_train, 0.2, seed=1)
    assert len(x_tr) == 40 and len(x_val) == 10
    with pytest.raises(LabkitError, match="test fraction 0 is outside"):
        subset(data, test_fraction=0)


def test_pipelines_shapes(idx_dir):
    data = load_fashion_mnist(idx_dir, verify=False)
    x = preprocess(data.x_train)
    assert x.shape == (50, 28, 28, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    images, labels = next(iter(tf_dataset(x, data.y_train, batch_size=16, shuffle=True)))
    assert tuple(images.shape) == (16, 28, 28, 1)
    images, labels = next(iter(torch_loader(x, data.y_train, batch_size=8)))
    assert tuple(images.shape) == (8, 1, 28, 28) and str(labels.dtype) == "torch.int64"


def test_pets_quirks(pets_dir):
    with pytest.warns(UserWarning, match="skipped 1 pet images .*Bengal_4"):
        data = load_pets(pets_dir, image_size=32)
    assert len(data.class_names) == 37 and data.class_names[5] == "Bengal"  # the label space of all 37 breeds
    assert len(data.x_train) + len(data.x_test) == 11  # 12 listed, one undecodable
    assert set(np.unique(np.concatenate([data.y_train, data.y_test]))) == {0, 1, 5}  # CLASS-ID − 1
    assert data.x_train.shape[1:] == (32, 32, 3) and data.x_train.dtype == np.uint8
    x = preprocess(data.x_train)
    assert x.shape[-1] == 3 and x.dtype == np.float32


def test_pets_without_split_files_are_split_with_a_warning(pets_dir):
    (pets_dir / "annotations" / "trainval.txt").unlink()
    (pets_dir / "annotations" / "test.txt").unlink()
    with pytest.warns(UserWarning, match="no trainval.txt/test.txt"):
        data = load_pets(pets_dir, image_size=16)
    assert len(data.x_train) + len(data.x_test) == 11


def test_pets_missing_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(LabkitError, match="--download-dataset"):
        load_pets(tmp_path / "nowhere")


@needs(DEBIAN_FASHION, "Debian dataset-fashion-mnist")
def test_real_fashion_mnist_is_official_and_complete():
    data = load_fashion_mnist(DEBIAN_FASHION)
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10


@needs(SHARED_PETS, "the shared Oxford-IIIT Pet sample")
def test_real_pets_sample():
    data = load_pets(SHARED_PETS, image_size=64)
    assert data.class_names[:2] == ["Abyssinian", "american_bulldog"] and len(data.class_names) == 37
    assert (len(data.x_train), len(data.x_test)) == (300, 298)
    assert np.bincount(np.concatenate([data.y_train, data.y_test]), minlength=37)[[0, 1, 5]].tolist() == [198, 200, 200]


@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_a_named_folder_without_the_data_is_refused_not_replaced_by_the_packaged_one(tmp_path):
    from labkit.data import describe

    with pytest.raises(LabkitError, match=r"no Fashion-MNIST in .*: name the folder that holds its four IDX files"):
        describe("fashion-mnist", tmp_path)
    assert describe("fashion-mnist").root == DEBIAN_FASHION  # named no folder: the packaged data
