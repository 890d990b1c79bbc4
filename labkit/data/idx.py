"""Any MNIST-format dataset: IDX image and label files (gzipped or not) of any image size, no checksums.

File names follow MNIST's: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, and `t10k-…` or `test-…` for the
test split (torchvision's `<root>/<Name>/raw/` folders are found too). Without test files, a seeded stratified
split of the training files is the test set.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from labkit.data.descriptor import Descriptor, checksum
from labkit.data.fashion_mnist import read_idx
from labkit.data.splits import Dataset, stratified_split
from labkit.errors import LabkitError

PATTERN = re.compile(r"(train|t10k|test)-(images|labels)[-.]idx[13]-ubyte(\.gz)?")


def idx_files(folder: Path) -> dict[tuple[str, str], Path]:
    """The IDX files of one folder by (split, kind): split "train" or "test", kind "images" or "labels"."""
    found = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if m := PATTERN.fullmatch(path.name):
            found.setdefault(("train" if m[1] == "train" else "test", m[2]), path)
    return found


def find_idx(root: str | Path) -> Path | None:
    """The folder under root holding IDX training files: root itself or a torchvision `<root>/*/raw/`."""
    root = Path(root)
    for folder in [root, *sorted(root.glob("*/raw"))]:
        if {("train", "images"), ("train", "labels")} <= set(idx_files(folder)):
            return folder
    return None


def read_labels(root: str | Path) -> np.ndarray:
    """Every label of the dataset (train and test), read without the images: for the checks before a run."""
    folder = _folder(root)
    files = idx_files(folder)
    return np.concatenate([read_idx(files[split, "labels"]) for split in ("train", "test")
                           if (split, "labels") in files])


def image_shape(root: str | Path) -> tuple[int, ...]:
    """The (height, width[, channels]) of the training images, read from the header only."""
    path = idx_files(_folder(root))["train", "images"]
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
        header = f.read(4)
        dims = [int.from_bytes(f.read(4), "big") for _ in range(header[3])]
    return tuple(dims[1:])


def describe(root: str | Path | None) -> Descriptor:
    """The IDX files under root: classes from the labels (0..n-1, at least two), image shape from the header."""
    folder = _folder(root)
    labels = read_labels(folder)
    if len(set(labels.tolist())) < 2:
        raise LabkitError(f"the IDX labels in {folder} hold fewer than two classes: a classifier needs two")
    shape = image_shape(folder)
    count, sha = checksum(idx_files(folder).values(), folder)
    return Descriptor("idx", folder, tuple(str(i) for i in range(int(labels.max()) + 1)), shape[:2],
                      shape[2] if len(shape) == 3 else 1, count, sha)


def _folder(root: str | Path | None) -> Path:
    folder = find_idx(root) if root else None
    if folder is None:
        raise LabkitError(f"no IDX files under {root}: put train-images-idx3-ubyte[.gz] and "
                          "train-labels-idx1-ubyte[.gz] (and t10k-… for the test set) in the folder given as "
                          "--dataset-root")
    return folder


def _pair(files: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(files[split, "images"]), read_idx(files[split, "labels"]).astype(np.int64)
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)) or y.ndim != 1 or len(x) != len(y):
        raise LabkitError(f"{files[split, 'images'].name} holds {x.shape}, {files[split, 'labels'].name} "
                          f"{y.shape}: images must be N×H×W (or N×H×W×3) with one label each")
    return (x[..., 0] if x.ndim == 4 and x.shape[-1] == 1 else x), y


def load_idx(root: str | Path | None, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Load MNIST-format files as uint8 images and labels 0..n-1; classes are named by their label."""
    folder = _folder(root)
    files = idx_files(folder)
    x_train, y_train = _pair(files, "train")
    if ("test", "images") in files and ("test", "labels") in files:
        x_test, y_test = _pair(files, "test")
    else:
        train, test = stratified_split(y_train, test_fraction, seed)
        x_train, y_train, x_test, y_test = x_train[train], y_train[train], x_train[test], y_train[test]
    labels = np.unique(np.concatenate([y_train, y_test]))
    if len(labels) < 2:
        raise LabkitError(f"the IDX labels in {folder} hold {len(labels)} class: a classifier needs at least two")
    return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=[str(i) for i in range(int(labels.max()) + 1)], name="idx")
