"""What an INT8 TFLite file kept of pruning's zeros and clustering's centroids, read from the file itself.

INT8 conversion quantizes each output channel of a kernel on its own scale, symmetric around zero: a clustered
channel keeps at most k distinct int8 values and a pruned weight stays exactly 0, unless training after the
compression (plain QAT) moved them. The check reads the stored weights, so it proves what the device will run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labkit.deploy.size import stored_tensors


def int8_kernels(path: Path) -> dict[str, np.ndarray]:
    """The int8 kernels of a .tflite file (convolutions and dense layers: two dimensions or more), by tensor name,
    output channels first as TFLite stores them."""
    return {name: values for name, values in stored_tensors(path).items()
            if values.dtype == np.int8 and values.ndim >= 2}


def kernel_figures(kernel: np.ndarray) -> dict[str, Any]:
    """The figures that show what a kernel kept: the most distinct values in any output channel, the share of
    zeros and the size."""
    channels = kernel.reshape(kernel.shape[0], -1)
    return {"distinct_per_channel": int(max(np.unique(c).size for c in channels)),
            "zero_share": float(np.mean(kernel == 0)), "size": int(kernel.size)}


def layer_name(tensor: str) -> str:
    """The Keras layer a TFLite kernel tensor comes from: `model/quant_dense_1/MatMul;…` → `dense_1` (the converter
    names a tensor by the ops fused into it, the first one first; QAT wraps each layer as `quant_<name>`)."""
    parts = tensor.split(";")[0].split("/")
    return (parts[1] if len(parts) > 2 else parts[0]).removeprefix("quant_")


def figures(path: Path) -> dict[str, dict[str, Any]]:
    """kernel_figures for every int8 kernel of a .tflite file, by the name of the layer it comes from."""
    return {layer_name(name): kernel_figures(kernel) for name, kernel in int8_kernels(path).items()}


def lost(kernels: dict[str, dict[str, Any]], clusters: int | None = None, sparsity: float | None = None,
         only: list[str] | None = None) -> list[str]:
    """What the kernels did not keep, one phrase each (empty when all is kept): more than `clusters` distinct values
    in a channel, or a smaller share of zeros than `sparsity`. `only` names the layers that were compressed;
    default all.

    Pruning zeroes the weights of each kernel, so its share is checked per kernel; half a percent below it is
    allowed, for kernels whose size does not split evenly.
    """
    problems = []
    for name, kernel in kernels.items():
        if only is not None and name not in only:
            continue
        if clusters is not None and kernel["distinct_per_channel"] > clusters:
            problems.append(f"{name}: {kernel['distinct_per_channel']} distinct values in a channel (> {clusters})")
        if sparsity is not None and kernel["zero_share"] < sparsity - 0.005:
            problems.append(f"{name}: {kernel['zero_share']:.1%} zeros (< {sparsity:.0%})")
    return problems
