"""Training throughput of the course's PyTorch classifier beside the machine's matmul peak.

Run alone (`.venv/bin/python benchmarks/throughput.py`) or as part of `make bench`. The classifier is
dominated by fc1 (15.9 M of its 18.8 M multiply-adds per image), so training is matrix multiplication: the share
of the matmul peak says how much faster any change of the training loop could still make it.
"""

from __future__ import annotations

import time

import pandas as pd
import torch

from labkit.methods import structured
from labkit.models import torch_models

SETTINGS = [(32, False), (256, False), (256, True), (512, True)]  # (batch size, fused Adam); the lab: 256, fused


def _best_seconds(step, repeats: int) -> float:
    step()  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of one float32 n×n matrix product on every core: the ceiling for a GEMM-bound training step."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / _best_seconds(lambda: a @ b, repeats) / 1e9


def training_throughput(repeats: int = 8) -> pd.DataFrame:
    """Images/s and GFLOP/s of a training step (forward, backward, Adam) per batch size and optimizer kernel.

    A training step costs about three forward passes (forward, and two products per layer backward), at two
    FLOPs per multiply-add.
    """
    torch.manual_seed(0)
    peak = matmul_peak()
    macs, _ = structured.flops_and_params(torch_models.FashionClassifier(), torch.zeros(1, 1, 28, 28))
    flops_per_image = 3 * 2 * macs
    rows = [{"setting": "matmul 2048³, float32", "images/s": None, "GFLOP/s": peak, "% of matmul peak": 100.0}]
    for batch, fused in SETTINGS:
        model = torch_models.FashionClassifier()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
        x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

        def step(model=model, optimizer=optimizer, x=x, y=y):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

        images = batch / _best_seconds(step, repeats)
        rows.append({"setting": f"batch {batch}, {'fused ' if fused else ''}Adam", "images/s": images,
                     "GFLOP/s": images * flops_per_image / 1e9,
                     "% of matmul peak": 100 * images * flops_per_image / 1e9 / peak})
    return pd.DataFrame(rows).set_index("setting")


if __name__ == "__main__":
    print(training_throughput().to_markdown(floatfmt=".0f"))
