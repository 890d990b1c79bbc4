"""Two lanes against one: the lab's Keras training and its PyTorch training, each alone and then side by side.

`.venv/bin/python benchmarks/lanes.py [--rounds 3]` trains, in fresh processes with each framework's default thread
count (as the notebooks do), the lab's Keras CNN (batch 64, 211 steps per graph call, as its fine-tuning) and the
course's PyTorch classifier (batch 256, fused Adam, as 03), on random images: first each alone, then both at once,
`--rounds` times. It prints each one's wall time alone and beside the other, and the gain of two lanes: the sum of
the times alone over the time of both at once. Whether a run's Keras and PyTorch notebooks should run side by side
(the runner runs them one after another) is this gain: on 2 cores it was 0.95, each framework's threads only taking
turns with the other's. With one thread each the frameworks would not compete, but a thread count changes the
order of their sums, so the numbers would change too (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KERAS = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
import labkit
import numpy as np, tensorflow as tf
from labkit.models import keras_models
rng = np.random.default_rng(0)
x, y = rng.random((13504, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 13504)
model = keras_models.fashion_cnn()
keras_models.compile_model(model, 1e-4, steps_per_execution=211)
model.fit(x, y, batch_size=64, epochs=6, verbose=0)
"""
TORCH = f"""
import sys; sys.path.insert(0, {str(ROOT)!r})
import labkit, torch
from labkit.models.torch_models import FashionClassifier
torch.manual_seed(0)
model = FashionClassifier()
optimizer = torch.optim.Adam(model.parameters(), 1e-3, fused=True)
x, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
for _ in range(60):
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
"""


def _timed(*codes: str) -> list[float]:
    """Wall seconds of each code's process, all started at once."""
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code]) for code in codes]
    ends = []
    for proc in procs:
        if proc.wait():
            raise SystemExit(f"a training process failed (exit {proc.returncode})")
        ends.append(time.perf_counter() - start)
    return ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of alone, alone, both (default 3)")
    args = parser.parse_args()
    rows = []
    for _ in range(args.rounds):
        keras, = _timed(KERAS)
        torch, = _timed(TORCH)
        beside = _timed(KERAS, TORCH)
        rows.append({"Keras alone": keras, "PyTorch alone": torch, "Keras beside PyTorch": beside[0],
                     "PyTorch beside Keras": beside[1], "one lane (sum)": keras + torch,
                     "two lanes": max(beside), "gain": (keras + torch) / max(beside)})
    table = pd.DataFrame(rows)
    print(f"{args.rounds} rounds; seconds of wall time, process start and imports included")
    print(table.agg(["median", "min", "max"]).T.round(2).to_markdown())


if __name__ == "__main__":
    main()
