"""The user's own Keras classifier as the base (`--model-path`): load it, read what inputs it takes, and fit the
data to them. Its input shape decides the image size and grayscale or RGB; its output count must match the classes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from labkit.data.splits import Dataset
from labkit.errors import LabkitError

KERAS_FILES = (".h5", ".hdf5", ".keras")


def check_keras_path(path: str | Path) -> Path:
    """A .h5/.keras file or a SavedModel folder; anything else (a PyTorch .pth, a missing file) is a LabkitError."""
    path = Path(path)
    if not path.exists():
        raise LabkitError(f"model file {path} does not exist: pass --model-path a Keras .h5, .keras or SavedModel")
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        raise LabkitError(f"{path} is a folder without saved_model.pb: pass --model-path a Keras .h5, .keras or "
                          "SavedModel folder")
    if path.is_file() and path.suffix.lower() not in KERAS_FILES:
        hint = " (a PyTorch state dict goes to --input-model)" if path.suffix.lower() in (".pth", ".pt") else ""
        raise LabkitError(f"{path} is not a Keras model: --model-path takes a .h5, .keras or SavedModel folder{hint}")
    return path


def load_classifier(path: str | Path):
    """Load the user's Keras classifier (without its training state: the lab compiles it again)."""
    import tensorflow as tf

    path = check_keras_path(path)
    try:
        return tf.keras.models.load_model(path, compile=False)
    except Exception as err:  # Keras raises many types for a file it cannot read
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise LabkitError(f"{path} cannot be loaded as a Keras 2 model ({type(err).__name__}: {first}): save it "
                          "with tf.keras (tf-keras) as .h5 or SavedModel") from err


def input_spec(model, image_size: int = 128) -> tuple[int, int, int]:
    """(height, width, channels) the model takes; a size left open (None) becomes image_size."""
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] not in (1, 3):
        raise LabkitError(f"the model takes inputs of shape {shape}: images can only be resized to "
                          "(batch, height, width, 1 or 3); pass a model with one image input")
    height, width, channels = shape[1:]
    return height or image_size, width or image_size, channels


def check_outputs(model, num_classes: int, dataset: str) -> None:
    """The model must have one output per class of the dataset."""
    outputs = model.output_shape[-1]
    if outputs != num_classes:
        raise LabkitError(f"the model has {outputs} outputs but {dataset} has {num_classes} classes: pass a model "
                          f"with {num_classes} outputs, or a dataset with {outputs} classes")


def fit_images(x: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, 3) resized to height × width, as grayscale (N, h, w) for channels 1 or
    RGB (N, h, w, 3) for channels 3; images already in that form are returned as they are."""
    want = (len(x), height, width) + ((3,) if channels == 3 else ())
    if x.shape == want:
        return x
    mode = "RGB" if channels == 3 else "L"
    return np.stack([np.asarray(Image.fromarray(image).convert(mode).resize((width, height), Image.BILINEAR))
                     for image in x]).reshape(want)


def fit_dataset(data: Dataset, height: int, width: int, channels: int) -> Dataset:
    """The dataset with its train and test images fitted to the model's input (see fit_images)."""
    return replace(data, x_train=fit_images(data.x_train, height, width, channels),
                   x_test=fit_images(data.x_test, height, width, channels))
