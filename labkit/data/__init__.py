"""Datasets of the lab: Fashion-MNIST (default) and Oxford-IIIT Pet, plus their input pipelines."""

from labkit.data.fashion_mnist import load_fashion_mnist
from labkit.data.pets import load_pets
from labkit.data.pipelines import preprocess, tf_dataset, torch_loader
from labkit.data.splits import Dataset, subset, train_validation_split

__all__ = ["Dataset", "load_dataset", "load_fashion_mnist", "load_pets", "preprocess", "subset", "tf_dataset",
           "torch_loader", "train_validation_split"]


def load_dataset(name: str, root: str | None = None, download: bool = False, train_samples: int | None = None,
                 test_fraction: float = 1.0, image_size: int = 128, seed: int = 0) -> Dataset:
    """Load dataset `name` ("fashion-mnist" or "oxford-pets") and cut it to the requested scale."""
    from labkit.errors import LabkitError

    if name == "fashion-mnist":
        data = load_fashion_mnist(root, download)
    elif name == "oxford-pets":
        data = load_pets(root, download, image_size=image_size, seed=seed)
    else:
        raise LabkitError(f"unknown dataset {name!r}: use fashion-mnist or oxford-pets")
    return subset(data, train_samples, test_fraction, seed)
