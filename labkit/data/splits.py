"""The in-memory dataset record and the seeded ways of cutting it down."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from labkit.data.descriptor import Descriptor
from labkit.errors import LabkitError


@dataclass(frozen=True)
class Dataset:
    """Images and integer labels of one dataset, already split into train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str
    descriptor: Descriptor | None = None  # what it was loaded from (load_dataset sets it)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def key(self) -> str:
        """The dataset's name in cached model files: its kind and the start of its checksum (see Descriptor.tag)."""
        return self.descriptor.tag if self.descriptor else self.name

    def describe(self) -> str:
        """One line: name (and the folder's name for the user's own data), sample counts, image shape and classes."""
        label = self.descriptor.label() if self.descriptor else self.name
        return (
            f"{label}: {len(self.x_train)} train / {len(self.x_test)} test images of "
            f"{tuple(self.x_train.shape[1:])}, {self.num_classes} classes"
        )


def subset(data: Dataset, train_samples: int | None = None, test_fraction: float = 1.0,
           seed: int = 0) -> Dataset:
    """Keep a seeded random `train_samples` of the training set and `test_fraction` of the test set.

    The lab runs at small scale by default; these two knobs scale it up to the full dataset.
    """
    if not 0 < test_fraction <= 1:
        raise LabkitError(f"test fraction {test_fraction} is outside (0, 1]: pass a value such as 0.5")
    if train_samples is not None and train_samples < 1:
        raise LabkitError(f"train samples {train_samples} must be at least 1 (or None for all)")
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(data.x_train))[: train_samples or len(data.x_train)]
    keep = max(1, round(len(data.x_test) * test_fraction))
    test = np.sort(rng.permutation(len(data.x_test))[:keep])
    return replace(data, x_train=data.x_train[train], y_train=data.y_train[train],
                   x_test=data.x_test[test], y_test=data.y_test[test])


def train_validation_split(x: np.ndarray, y: np.ndarray, validation_fraction: float = 0.1,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split (x, y) into seeded train and validation parts: x_train, y_train, x_val, y_val."""
    if not 0 <= validation_fraction < 1:
        raise LabkitError(f"validation fraction {validation_fraction} is outside [0, 1)")
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * validation_fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def stratified_split(labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train and test indices that keep every class's share (at least one test image per class with two
    or more images): for datasets that come without a test split."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = min(len(members) - 1, max(1, round(len(members) * test_fraction)))
        test += list(members[:n_test])
        train += list(members[n_test:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))
