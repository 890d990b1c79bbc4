"""Running TensorFlow Lite models with the LiteRT interpreter: batched predictions and batch-1 latency.

Accuracy is measured in batches on every core (fast); latency separately at batch 1 on one thread
after a warm-up, as the median of many runs, because that is what one request on an edge device costs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from labkit.errors import LabkitError
from labkit.quiet import native_stderr_closed


def load(model: str | Path | bytes, num_threads: int = 1) -> Interpreter:
    """An interpreter for a .tflite file or its bytes; a file that is not a TFLite model is a LabkitError."""
    try:
        if isinstance(model, bytes):
            interpreter = Interpreter(model_content=model, num_threads=num_threads)
        else:
            interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
        with native_stderr_closed():  # the first allocation prints XNNPACK's "Created ... delegate" notice
            interpreter.allocate_tensors()
        return interpreter
    except (ValueError, RuntimeError) as err:
        where = "the given bytes" if isinstance(model, bytes) else str(model)
        raise LabkitError(f"{where} is not a valid TFLite model ({str(err).splitlines()[0]}); "
                          "delete it and convert the model again") from err


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input to the tensor's dtype using its scale and zero point (identity for float tensors)."""
    scale, zero_point = detail["quantization"]
    if detail["dtype"] in (np.float32, np.float16) or scale == 0:
        return x.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if y.dtype in (np.float32, np.float16) or scale == 0:
        return y.astype(np.float32)
    return (y.astype(np.float32) - zero_point) * scale


def predict(interpreter: Interpreter, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Outputs of the model's first output for every row of x, as float32, in batches.

    A model with a fixed batch size (litert-torch exports batch 1) is fed in batches of that size.
    """
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    fixed = inp["shape_signature"][0] != -1
    if fixed:
        batch_size = int(inp["shape"][0])
        interpreter.allocate_tensors()
    results, current = [], batch_size if fixed else None
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        if fixed and len(batch) < batch_size:
            padded = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), axis=0)])
            return np.concatenate([*results, predict(interpreter, padded, batch_size)[:len(batch)]])
        if current != len(batch):
            interpreter.resize_tensor_input(inp["index"], [len(batch), *inp["shape"][1:]])
            interpreter.allocate_tensors()
            current = len(batch)
        interpreter.set_tensor(inp["index"], _quantize(batch, inp))
        interpreter.invoke()
        results.append(_dequantize(interpreter.get_tensor(out["index"]), out))
    return np.concatenate(results)


def all_cores() -> int:
    """Threads for batched evaluation: every core of the machine."""
    return os.cpu_count() or 1


def latency(interpreter: Interpreter, sample: np.ndarray, warmup: int = 20, runs: int = 200) -> dict[str, float]:
    """Batch-1 inference time in milliseconds: median, interquartile range, 10th and 90th percentiles."""
    call = batch1_call(interpreter, sample)
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return summarize_times(times)


def summarize_times(seconds: np.ndarray) -> dict[str, float]:
    """Median, IQR and 10th/90th percentiles of a set of timings, in milliseconds."""
    p10, q1, median, q3, p90 = np.percentile(np.asarray(seconds) * 1e3, [10, 25, 50, 75, 90])
    return {"median_ms": float(median), "iqr_ms": float(q3 - q1), "p10_ms": float(p10), "p90_ms": float(p90)}


def batch1_call(interpreter: Interpreter, sample: np.ndarray | None = None):
    """A zero-argument function that runs one batch-1 inference (zeros when no sample is given)."""
    inp = interpreter.get_input_details()[0]
    shape = [1, *inp["shape"][1:]] if sample is None else [1, *sample.shape]
    interpreter.resize_tensor_input(inp["index"], shape)
    interpreter.allocate_tensors()
    x = np.zeros(shape, np.float32) if sample is None else sample[None].astype(np.float32)
    interpreter.set_tensor(inp["index"], _quantize(x, inp))
    return interpreter.invoke


def interleaved_latency(calls: dict, rounds: int = 15, runs: int = 40, warmup: int = 5, seed: int = 0
                        ) -> dict[str, dict]:
    """Batch-1 latency of several models timed round-robin, so drift of the machine hits all of them alike.

    Each round visits the models in a new seeded random order, and each block starts with `warmup` untimed runs:
    in a fixed order the model after the largest one always met cold caches and looked ~10 % slower than its
    identical twins. `calls` maps a name to a zero-argument function running one inference; returns
    summarize_times per name, with the median of each round (`rounds_ms`): the repeats that intervals of speed
    comparisons resample.
    """
    times: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    rng = np.random.default_rng(seed)
    names = list(calls)
    for _ in range(rounds):
        for name in rng.permutation(names):
            call = calls[name]
            for _ in range(warmup):
                call()
            batch = np.empty(runs)
            for i in range(runs):
                start = time.perf_counter()
                call()
                batch[i] = time.perf_counter() - start
            times[name].append(batch)
    return {name: {**summarize_times(np.concatenate(t)), "rounds_ms": [float(np.median(b)) * 1e3 for b in t]}
            for name, t in times.items()}
