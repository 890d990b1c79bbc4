"""NNI structured pruning (legacy v2 API of NNI 2.10.1): ActivationAPoZRank masks, then ModelSpeedup.

APoZ (average percentage of zeros) ranks output channels by how often their ReLU output is zero;
the pruner masks the least active ones, and ModelSpeedup rebuilds the layers without them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labkit import onnxrt, torch_models
from labkit.compress import check_sparsity
from labkit.size import deflation


def config_list(sparsity: float, exclude: tuple[str, ...] = ("fc2",)) -> list[dict]:
    """Prune every Conv2d and Linear to `sparsity`, except the named layers (the classifier output)."""
    return [{"sparsity": check_sparsity(sparsity), "op_types": ["Conv2d", "Linear"]},
            {"exclude": True, "op_names": list(exclude)}]


def traced_adam(model: nn.Module, learning_rate: float):
    """An Adam optimizer built through nni.trace, so the pruner can rebuild it around its wrappers."""
    import nni

    return nni.trace(torch.optim.Adam)(model.parameters(), lr=learning_rate)


def make_trainer(loader, max_samples: int):
    """The pruner's trainer(model, optimizer, criterion): trains on at most `max_samples` samples.

    NNI's `training_batches` counts samples, not batches (its hook adds the batch size per call),
    so the trainer stops once that many have been seen.
    """
    def trainer(model: nn.Module, optimizer: torch.optim.Optimizer, criterion) -> None:
        torch_models.train(model, loader, optimizer, criterion, max_samples=max_samples, desc="APoZ statistics")

    return trainer


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Collect what NNI logs (INFO and up) while the block runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("nni")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def flops_and_params(model: nn.Module, dummy_input: torch.Tensor) -> tuple[int, int]:
    """Multiply-accumulate count and parameter count of one forward pass (NNI's counter)."""
    from nni.compression.pytorch.utils import count_flops_params

    flops, params, _ = count_flops_params(model, dummy_input, verbose=False)
    return int(flops), int(params)


def measure_torch(model: nn.Module, x: np.ndarray, y: np.ndarray, dummy_input: torch.Tensor) -> dict[str, Any]:
    """A PyTorch stage: test accuracy, batch-1 latency, parameters, FLOPs and layer shapes."""
    from labkit.data import torch_loader

    scores, labels = torch_models.predict(model, torch_loader(x, y, batch_size=256))
    flops, params = flops_and_params(model, dummy_input)
    return {"runtime": "PyTorch", "accuracy": float((scores.argmax(1) == labels).mean()),
            "latency": torch_models.latency(model, dummy_input), "parameters": params, "flops": flops,
            "shapes": torch_models.shapes(model)}


def measure_onnx(path: Path, x_nchw: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """An ONNX Runtime stage: test accuracy, batch-1 latency, file and zipped size."""
    session = onnxrt.load(path)
    scores = onnxrt.predict(session, x_nchw)
    return {"runtime": "ONNX Runtime", "accuracy": float((scores.argmax(1) == y).mean()),
            "latency": onnxrt.latency(session, x_nchw[0]), **deflation(path)}


def tflite_stage(record: dict[str, Any]) -> dict[str, Any]:
    """The TFLite stage of a structured-pruning run, taken from the variant record of its .tflite file."""
    return {"runtime": "TFLite", "accuracy": record["metrics"]["accuracy"], "latency": record["latency"],
            "raw_bytes": record["size"]["raw_bytes"], "zipped_bytes": record["size"]["zipped_bytes"]}
