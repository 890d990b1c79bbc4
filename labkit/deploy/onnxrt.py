"""Running ONNX models with ONNX Runtime on the CPU: batched predictions and batch-1 latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labkit.deploy.tflite import Batch1Call, cpu, time_call
from labkit.errors import LabkitError


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


def runtime(session) -> dict[str, Any]:
    """What runs a session: ONNX Runtime's version, threads and execution provider, and the CPU."""
    import onnxruntime as ort

    return {"engine": "ONNX Runtime", "version": ort.__version__,
            "threads": session.get_session_options().intra_op_num_threads, "provider": session.get_providers()[0],
            "cpu": cpu()}


def batch1_call(session, sample: np.ndarray) -> Batch1Call:
    """One batch-1 inference of `sample`, ready to time."""
    feed = {session.get_inputs()[0].name: sample[None].astype(np.float32)}
    return Batch1Call(lambda: session.run(None, feed), runtime(session))


def latency(session, sample: np.ndarray, warmup: int = 20, runs: int = 200) -> dict[str, Any]:
    """Batch-1 inference time in ms (median, IQR, p10, p90) after a warm-up, with the runtime that ran it."""
    return time_call(batch1_call(session, sample), warmup, runs)
