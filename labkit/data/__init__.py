"""Datasets of the lab: Fashion-MNIST (default), Oxford-IIIT Pet, and the user's own image folders and IDX files,
plus their input pipelines.

The first stage of the lab: it may import the shared basics at labkit's top only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from labkit.data import fashion_mnist, idx, image_folder, pets
from labkit.data.descriptor import KINDS, Descriptor
from labkit.data.fashion_mnist import load_fashion_mnist
from labkit.data.idx import load_idx
from labkit.data.image_folder import load_image_folder
from labkit.data.pets import load_pets
from labkit.data.pipelines import preprocess, tf_dataset, torch_loader
from labkit.data.splits import Dataset, subset, train_validation_split
from labkit.errors import LabkitError

__all__ = ["KINDS", "Dataset", "Descriptor", "describe", "load_dataset", "load_fashion_mnist", "load_idx",
           "load_image_folder", "load_pets", "preprocess", "recognise", "subset", "tf_dataset",
           "torch_loader", "train_validation_split"]


def recognise(root: str | Path | None) -> str:
    """The dataset kind of the layout under root: Oxford-IIIT Pet, IDX files (Fashion-MNIST when they are the
    official files), or class folders. Without a root, or with nothing recognisable in it, the default
    Fashion-MNIST."""
    if root is None:
        return "fashion-mnist"
    root = Path(root)
    if (root / "images").is_dir() and (root / "annotations" / "list.txt").is_file():
        return "oxford-pets"
    if folder := idx.find_idx(root):
        return "fashion-mnist" if fashion_mnist.is_official(folder) else "idx"
    if root.is_dir() and image_folder.looks_like(root):
        return "image-folder"
    return "fashion-mnist"  # the default: its loader says where it looked and how to get it


def describe(kind: str | None, root: str | Path | None = None, download: bool = False) -> Descriptor:
    """Find the dataset (`kind`, else recognised from the layout under root), download it when asked and missing,
    and describe it once (labkit.data.descriptor). A dataset that is not on disk, or is damaged, is a one-line
    LabkitError naming the fix."""
    if kind is not None and kind not in KINDS:
        raise LabkitError(f"unknown dataset {kind!r}: use one of {', '.join(KINDS)}")
    kind = kind or recognise(root)
    if kind == "fashion-mnist":
        return fashion_mnist.describe(root, download)
    if kind == "oxford-pets":
        return pets.describe(root, download)
    if kind == "image-folder":
        return image_folder.describe(root)
    return idx.describe(root)


def load_dataset(descriptor: Descriptor, train_samples: int | None = None, test_fraction: float = 1.0,
                 image_size: int | tuple[int, int] = 128, seed: int = 0, grayscale: bool | None = None) -> Dataset:
    """Load the dataset a descriptor names (see `describe`) and cut it to the requested scale.

    image_size (an int for square, or (height, width)) and grayscale apply to the datasets read from image files.
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    root = descriptor.root
    if descriptor.kind == "fashion-mnist":
        data = load_fashion_mnist(root)
    elif descriptor.kind == "oxford-pets":
        data = load_pets(root, image_size=size[0], seed=seed)
    elif descriptor.kind == "image-folder":
        data = load_image_folder(root, size, grayscale, seed)
    else:
        data = load_idx(root, seed)
    return replace(subset(data, train_samples, test_fraction, seed), descriptor=descriptor)
