"""The Keras base classifiers of the lab, trained once and cached under models/ for every notebook."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from labkit.errors import LabkitError


def fashion_cnn(num_classes: int = 10, input_shape: tuple[int, ...] = (28, 28, 1)):
    """A small CNN for small images (Fashion-MNIST's 28x28 grayscale, or an image folder's or IDX files' size):
    Conv32-Pool-Conv64-Pool-Dense128-Dense(logits)."""
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


def weights_tag(weights: str | None) -> str:
    """A short name of the backbone weights for cached file names: imagenet, none, or a digest of the file."""
    if weights in (None, "none", "imagenet"):
        return str(weights or "none")
    return "file" + hashlib.sha1(Path(weights).read_bytes()).hexdigest()[:8]


def _backbone_weights(weights: str | None) -> str | None:
    if weights in (None, "none", "imagenet"):
        return None if weights in (None, "none") else "imagenet"
    from labkit.models.user_files import check_weights

    check_weights(weights)
    return str(weights)


def pets_mobilenet(num_classes: int, image_size: int = 128, weights: str | None = "imagenet"):
    """The course's pet classifier: MobileNetV2 with a Dense 1024-512-128 head (dropout 0.3), logits out.

    weights: "imagenet" (downloaded by Keras; when the download fails the backbone starts from scratch), a path to
    a MobileNetV2 weights file saved with include_top=False, or "none". Returns (model, used) where used names the
    weights the backbone really started from. The backbone's layers sit flat in one functional graph so that TFMOT
    can wrap each layer on its own; a pretrained backbone is frozen (train_pets_mobilenet trains the head first).
    """
    import tensorflow as tf

    layers = tf.keras.layers
    inputs = layers.Input((image_size, image_size, 3))
    wanted = _backbone_weights(weights)
    try:
        backbone = tf.keras.applications.MobileNetV2(input_tensor=inputs, include_top=False, weights=wanted)
        used, pretrained = {None: "none", "imagenet": "imagenet"}.get(wanted, f"file {wanted}"), wanted is not None
    except Exception as err:  # no network: the ImageNet download fails with assorted errors
        if wanted != "imagenet":
            raise LabkitError(f"{wanted} does not hold MobileNetV2 weights ({type(err).__name__}): save them "
                              "from tf.keras.applications.MobileNetV2(include_top=False) with save_weights") from err
        print(f"ImageNet weights could not be downloaded ({type(err).__name__}): MobileNetV2 trains from scratch")
        backbone = tf.keras.applications.MobileNetV2(input_tensor=inputs, include_top=False, weights=None)
        used, pretrained = "none (ImageNet download failed)", False
    if pretrained:
        for layer in backbone.layers:
            layer.trainable = False
    x = layers.GlobalAveragePooling2D()(backbone.output)
    for width in (1024, 512, 128):
        x = layers.Dense(width, activation="relu")(x)
        x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes)(x)
    return tf.keras.Model(inputs, outputs, name="pets_mobilenetv2"), used


def top_block_layers(model, blocks: int) -> list:
    """MobileNetV2's last `blocks` inverted-residual blocks (block_16 down) and its final 1x1 convolution, without
    their BatchNormalization layers (kept frozen: their statistics need more data than a fine-tuning sees)."""
    names = tuple(f"block_{i}_" for i in range(17 - blocks, 17)) + ("Conv_1",)
    return [layer for layer in model.layers if layer.name.startswith(names) and blocks > 0 and layer.weights
            and type(layer).__name__ != "BatchNormalization"]


def train_pets_mobilenet(model, train_ds, learning_rate: float, fine_tune_blocks: int = 0, steps: int | None = None,
                         steps_per_execution: int = 1, **fit) -> dict[str, list[float]]:
    """Train the head on a frozen pretrained backbone, then (fine_tune_blocks > 0) the top blocks too at a tenth
    of the learning rate, as the course's model was made; return the history of both phases. A backbone from
    scratch is not frozen: everything trains. With `steps`, each phase follows its own warm-up and cosine decay
    over that many steps (see compile_model)."""
    compile_model(model, learning_rate, steps, steps_per_execution)
    history = model.fit(train_ds, **fit).history
    if top := top_block_layers(model, fine_tune_blocks):
        for layer in top:
            layer.trainable = True
        compile_model(model, learning_rate / 10, steps, steps_per_execution)
        more = model.fit(train_ds, **fit).history
        history = {k: list(history[k]) + list(more.get(k, [])) for k in history}
    return history


def compile_model(model, learning_rate: float, steps: int | None = None, steps_per_execution: int = 1) -> None:
    """Adam on sparse categorical cross-entropy (from logits, or from probabilities for a model ending in softmax),
    tracking accuracy. At a constant `learning_rate`, or, given the training's `steps`, on warmup_cosine's schedule
    peaking at it. `steps_per_execution` steps run in one graph call between Python's callbacks: the same
    arithmetic, bit for bit, with less dispatch (tests/test_steps_per_execution.py)."""
    import tensorflow as tf

    rate = warmup_cosine(learning_rate, steps) if steps else learning_rate
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=not ends_in_softmax(model))
    model.compile(optimizer=tf.keras.optimizers.Adam(rate), loss=loss, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)


def warmup_cosine(peak: float, steps: int, warmup: float = 0.1):
    """A learning rate that rises linearly from 0 to `peak` over the first `warmup` share of `steps`, then falls to
    0 along a half cosine by the last step: a large rate once Adam's statistics have settled, a small one to end on
    a minimum. Keras' CosineDecay decays over `decay_steps` after the warm-up, so that is the rest of the steps."""
    import tensorflow as tf

    rise = int(steps * warmup)
    return tf.keras.optimizers.schedules.CosineDecay(0.0, steps - rise, warmup_target=peak, warmup_steps=rise)


def ends_in_softmax(model) -> bool:
    """Whether the model outputs probabilities (a user's model often ends in softmax), not the lab's logits."""
    import tensorflow as tf

    last = model.layers[-1]
    last = getattr(last, "layer", last)  # inside a TFMOT wrapper
    softmax = tf.keras.activations.softmax
    return isinstance(last, tf.keras.layers.Softmax) or getattr(last, "activation", None) is softmax


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
