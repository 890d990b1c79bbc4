"""Datasets of the lab: Fashion-MNIST (default) and Oxford-IIIT Pet, plus their input pipelines."""

from labkit.data.fashion_mnist import load_fashion_mnist
from labkit.data.pets import load_pets
from labkit.data.pipelines import preprocess, tf_dataset, torch_loader
from labkit.data.splits import Dataset, subset, train_validation_split

__all__ = ["Dataset", "load_fashion_mnist", "load_pets", "preprocess", "subset", "tf_dataset", "torch_loader",
           "train_validation_split"]
