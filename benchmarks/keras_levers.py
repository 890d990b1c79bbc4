"""The Keras training levers of the lab, each measured alone: TensorFlow's kernels (oneDNN against Eigen) and steps
per graph call (steps_per_execution), on the lab's CNN as it is fine-tuned plain, clustered and pruned.

`.venv/bin/python benchmarks/keras_levers.py` runs one process per kernel library (TensorFlow reads
TF_ENABLE_ONEDNN_OPTS once, at import), Eigen and oneDNN in turn, `--rounds` times. Inside a process the settings
run in turn too, `--steps` steps each per round after a warm-up call, so that the machine's drift hits every row
alike. Each row: the median steps/s over rounds and processes, the GFLOP/s of those steps (a training step ≈ 3
forward passes, counted from the model's layers) and their share of the cores' matmul peak measured here.
Batches of 64 random images from an in-memory tf.data pipeline shuffled as the lab's; one check's worth of steps
(211) per call, as the lab fine-tunes. Eigen with one step per call is how the lab trained before #42, Eigen with
211 steps per call how it trains now; oneDNN is the opt-in (TF_ENABLE_ONEDNN_OPTS=1) that changes the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("plain", "clustered-16", "pruned-0.5")
PER_CALL = (1, 211)


def forward_flops(model) -> int:
    """FLOPs of one image's forward pass through the convolutions and dense layers (2 per multiply-add)."""
    flops = 0
    for layer in model.layers:
        layer = getattr(layer, "layer", layer)  # inside a TFMOT wrapper
        kind = type(layer).__name__
        if kind == "Conv2D":
            h, w, out = layer.output.shape[1:]
            kh, kw, cin, _ = layer.kernel.shape
            flops += 2 * h * w * kh * kw * cin * out
        elif kind == "Dense":
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return int(flops)


def measure(steps: int) -> list[dict]:
    """In this process: steps/s of every (kind, steps per call) after a warm-up, the kinds in turn."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import labkit  # noqa: F401  (Keras 2 before TensorFlow loads)
    from labkit.data import tf_dataset
    from labkit.methods import compress
    from labkit.models import keras_models
    from labkit.records import tensorflow_kernels

    rng = np.random.default_rng(0)
    x, y = rng.random((54000, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 54000)
    data = tf_dataset(x, y, 64, shuffle=True, seed=0)
    base = keras_models.fashion_cnn()
    wraps = {"plain": lambda m: m, "clustered-16": lambda m: compress.cluster(m, 16),
             "pruned-0.5": lambda m: compress.prune(m, 0.5)}
    models = {}
    for kind in KINDS:
        for per_call in PER_CALL:
            model = wraps[kind](compress.copy_model(base))
            keras_models.compile_model(model, 1e-4, steps_per_execution=per_call)
            callbacks = compress.pruning_callbacks() if kind.startswith("pruned") else []
            model.fit(data, epochs=1, steps_per_epoch=per_call * max(1, 211 // per_call), verbose=0,
                      callbacks=callbacks)  # warm-up: tracing
            models[kind, per_call] = model, callbacks
    rows, flops = [], 3 * 64 * forward_flops(base)
    for (kind, per_call), (model, callbacks) in models.items():
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
        rows.append({"kind": kind, "kernels": tensorflow_kernels(), "steps per call": per_call,
                     "steps/s": steps / (time.perf_counter() - start), "flops": flops})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="processes per kernel library (default 2)")
    parser.add_argument("--steps", type=int, default=422, help="steps per setting and round (default 422)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a measuring process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.steps)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import matmul_peak

    peak = matmul_peak()
    rows = []
    for _ in range(args.rounds):
        for onednn in ("0", "1"):
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn}
            out = subprocess.run([sys.executable, __file__, "--one", "--steps", str(args.steps)], env=env,
                                 capture_output=True, text=True, check=True).stdout
            rows += json.loads(out.splitlines()[-1])
    table = pd.DataFrame(rows)
    table = table.groupby(["kind", "kernels", "steps per call"]).agg(steps_s=("steps/s", statistics.median),
                                                                     flops=("flops", "first"))
    table["GFLOP/s"] = table.steps_s * table.flops / 1e9
    table["% of peak"] = 100 * table["GFLOP/s"] / peak
    before = table.steps_s.xs(("Eigen", 1), level=("kernels", "steps per call"))
    table["× before"] = table.steps_s / before.reindex(table.index.get_level_values("kind")).to_numpy()
    print(f"matmul peak {peak:.0f} GFLOP/s (float32 2048³ on every core); {args.rounds} round(s) of {args.steps} "
          "steps per setting")
    print(table.drop(columns="flops").rename(columns={"steps_s": "steps/s"}).round(2).to_markdown())


if __name__ == "__main__":
    main()
