"""Running ONNX models with ONNX Runtime on the CPU: batched predictions and batch-1 latency."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from labkit.errors import LabkitError
from labkit.tflite import summarize_times


def load(path: Path):
    """A one-thread ONNX Runtime CPU session (like the TFLite interpreter's); a bad file is a LabkitError."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for bad files
        raise LabkitError(f"{path} is not a valid ONNX model ({type(err).__name__}); export it again") from err


def predict(session, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The first output for every row of x, in batches."""
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + batch_size]})[0] for i in range(0, len(x), batch_size)])


def latency(session, sample: np.ndarray, warmup: int = 20, runs: int = 200) -> dict[str, float]:
    """Batch-1 inference time in ms (median, IQR, p10, p90) after a warm-up."""
    feed = {session.get_inputs()[0].name: sample[None].astype(np.float32)}
    for _ in range(warmup):
        session.run(None, feed)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times[i] = time.perf_counter() - start
    return summarize_times(times)
