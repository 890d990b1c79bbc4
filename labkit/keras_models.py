"""The Keras base classifiers of the lab, trained once and cached under models/ for every notebook."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from labkit.errors import LabkitError


def fashion_cnn(num_classes: int = 10, input_shape: tuple[int, ...] = (28, 28, 1)):
    """A small CNN for 28x28 grayscale images: Conv32-Pool-Conv64-Pool-Dense128-Dense(logits)."""
    import tensorflow as tf

    layers = tf.keras.layers
    return tf.keras.Sequential([
        layers.Input(input_shape),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(num_classes),
    ], name="fashion_cnn")


def pets_mobilenet(num_classes: int, image_size: int = 128, pretrained: bool = True):
    """The course's pet classifier: MobileNetV2 with a Dense 1024-512-128 head (dropout 0.3), logits out.

    Returns (model, weights) where weights is "imagenet" when they could be downloaded, else "none"
    (trained from scratch). The backbone's layers sit flat in one functional graph so that TFMOT
    can wrap each layer on its own.
    """
    import tensorflow as tf

    layers = tf.keras.layers
    inputs = layers.Input((image_size, image_size, 3))
    weights = "imagenet" if pretrained else None
    try:
        backbone = tf.keras.applications.MobileNetV2(input_tensor=inputs, include_top=False, weights=weights)
    except Exception:  # no network: the weight download fails with assorted errors
        weights = None
        backbone = tf.keras.applications.MobileNetV2(input_tensor=inputs, include_top=False, weights=None)
    x = layers.GlobalAveragePooling2D()(backbone.output)
    for width in (1024, 512, 128):
        x = layers.Dense(width, activation="relu")(x)
        x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes)(x)
    return tf.keras.Model(inputs, outputs, name="pets_mobilenetv2"), weights or "none"


def compile_model(model, learning_rate: float) -> None:
    """Adam on sparse categorical cross-entropy from logits, tracking accuracy."""
    import tensorflow as tf

    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])


def save_model(model, path: Path) -> Path:
    """Save a Keras model atomically (a stopped run never leaves a half-written model file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_model(path: Path):
    """Load a saved Keras model; a damaged file is a one-line LabkitError naming it."""
    import tensorflow as tf

    try:
        return tf.keras.models.load_model(path)
    except Exception as err:  # Keras raises many types for a damaged file
        raise LabkitError(f"{path} cannot be loaded ({type(err).__name__}); delete it and the lab retrains it") from err
