"""Exporting trained models for edge runtimes: Keras to TFLite (FP32 or INT8), PyTorch to ONNX and TFLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from labkit.files import atomic_write_bytes


def to_tflite(model, path: Path | None = None) -> bytes:
    """Convert a Keras model to an FP32 TFLite flatbuffer; write it to `path` (atomically) if given."""
    import tensorflow as tf

    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    if path:
        atomic_write_bytes(Path(path), flatbuffer)
    return flatbuffer


def to_int8_tflite(model, representative: np.ndarray, path: Path | None = None) -> bytes:
    """Full-integer post-training quantization: int8 weights, activations, input and output.

    `representative` is a few hundred training inputs that set the activation ranges.
    """
    import tensorflow as tf

    def samples() -> Iterator[list[np.ndarray]]:
        for x in representative:
            yield [x[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    flatbuffer = converter.convert()
    if path:
        atomic_write_bytes(Path(path), flatbuffer)
    return flatbuffer
