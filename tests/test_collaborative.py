"""Quantization-aware training that keeps pruning's zeros and clustering's centroids (TFMOT's collaborative
optimization), checked on real INT8 TFLite files of a small CNN trained on scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest

from labkit import LabkitError
from labkit.deploy import preservation
from labkit.deploy.export import to_int8_tflite
from labkit.methods import compress

CLUSTERS, SPARSITY = 4, 0.5


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16).reshape(-1, 8, 8, 1).astype(np.float32), y


def trained(model, digits, epochs: int = 2, callbacks: list | None = None):
    import tensorflow as tf

    x, y = digits
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=epochs, callbacks=callbacks or [], verbose=0)
    return model


@pytest.fixture(scope="module")
def base(digits):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    model = tf.keras.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(16, 3, activation="relu", name="conv"),
                                 layers.Flatten(), layers.Dense(10, name="dense")])
    return trained(model, digits, epochs=5)


@pytest.fixture(scope="module")
def clustered(base, digits):
    return compress.strip(trained(compress.cluster(base, CLUSTERS), digits, epochs=1))


@pytest.fixture(scope="module")
def pruned(base, digits):
    return compress.strip(trained(compress.prune(base, SPARSITY), digits, epochs=1,
                                  callbacks=compress.pruning_callbacks()))


def int8_figures(model, digits, keeps: str, tmp_path) -> dict:
    """Quantization-aware training of `model` keeping `keeps`, converted to full-integer INT8, read back."""
    qat = trained(compress.quantize_aware(model, keeps), digits, epochs=1)
    path = tmp_path / f"{keeps.replace(' ', '-')}.tflite"
    to_int8_tflite(qat, digits[0][:100], path)
    kernels = preservation.figures(path)
    assert len(kernels) == 2, kernels  # the conv and the dense kernel, stored as int8
    return kernels


def test_cqat_keeps_the_centroids_and_plain_qat_loses_them(clustered, digits, tmp_path):
    kept = int8_figures(clustered, digits, "centroids", tmp_path)
    assert preservation.lost(kept, clusters=CLUSTERS) == []
    plain = int8_figures(clustered, digits, "nothing", tmp_path)
    assert preservation.lost(plain, clusters=CLUSTERS)  # the loss TFMOT's guide describes
    assert max(k["distinct_per_channel"] for k in plain.values()) > CLUSTERS


def test_pqat_keeps_the_zeros_and_plain_qat_loses_them(pruned, digits, tmp_path):
    kept = int8_figures(pruned, digits, "zeros", tmp_path)
    assert preservation.lost(kept, sparsity=SPARSITY) == []
    assert min(k["zero_share"] for k in kept.values()) >= SPARSITY - 0.005
    assert preservation.lost(int8_figures(pruned, digits, "nothing", tmp_path), sparsity=SPARSITY)


def test_pcqat_keeps_both(pruned, digits, tmp_path):
    model = compress.cluster(pruned, CLUSTERS, preserve_sparsity=True)
    both = compress.strip(trained(model, digits, epochs=1))
    kept = int8_figures(both, digits, "zeros and centroids", tmp_path)
    assert preservation.lost(kept, clusters=CLUSTERS, sparsity=SPARSITY) == []


def test_lost_names_what_was_lost_in_the_layers_asked_about():
    kernels = {"model/conv/Conv2D": {"distinct_per_channel": 9, "zero_share": 0.2, "size": 144},
               "model/dense/MatMul": {"distinct_per_channel": 3, "zero_share": 0.5, "size": 1440}}
    assert preservation.lost(kernels, clusters=4, sparsity=0.5) == [
        "model/conv/Conv2D: 9 distinct values in a channel (> 4)", "model/conv/Conv2D: 20.0% zeros (< 50%)"]
    assert preservation.lost(kernels, clusters=4, sparsity=0.5, only=["dense"]) == []


def test_an_unknown_keep_names_the_choices(base):
    with pytest.raises(LabkitError, match="use one of nothing, zeros, centroids"):
        compress.quantize_aware(base, "weights")
