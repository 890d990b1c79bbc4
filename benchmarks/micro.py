"""Every TFLite model of a lab run under TensorFlow Lite for Microcontrollers on the whole test set.

The notebooks run each model under TFLM on a sample of the test set (`micro_samples`, about a minute a seed); this
runs the distinct models of the first seed (the controls after n steps share the control's architecture) on all of
it, two processes at a time: flash and arena, TFLM's accuracy beside LiteRT's, and how often TFLM's outputs are
LiteRT's built-in kernels' (identical for INT8 in the reference kernels, except where noted). The seconds are the
x86 reference kernels', not a board's.

    .venv/bin/python benchmarks/micro.py [--results-path results/fashion-mnist]
"""

from __future__ import annotations

import argparse
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

import labkit  # noqa: F401  (legacy Keras before TensorFlow)
from labkit.data import load_fashion_mnist, preprocess
from labkit.deploy import micro
from labkit.records import family, load_records
from labkit.results import seeds
from labkit.run import runner


def _measure(job: tuple[str, Path, np.ndarray, np.ndarray]) -> tuple[str, dict, float]:
    name, path, x, y = job
    start = time.perf_counter()
    return name, micro.measure(path, x, y), time.perf_counter() - start


def micro_full(results: Path, x: np.ndarray, y: np.ndarray, workers: int = 2) -> pd.DataFrame:
    """Per distinct model of a seed folder: TFLM's flash, arena, LUT-compressed flash and arena, accuracy on the whole
    test set beside LiteRT's, agreement with LiteRT's built-in kernels, and the seconds it took here."""
    if micro.version() is None:
        raise SystemExit(micro.MISSING)
    records = [r for r in load_records(results) if not re.fullmatch(r"(torch-)?control-\d+-steps-(fp32|int8)",
                                                                     r["name"])]
    nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    jobs = [(r["name"], results / next(f for f in r["files"] if f.endswith(".tflite")),
             nchw if family(r) == "torch" else x, y) for r in records]
    accuracy = {r["name"]: r["metrics"]["accuracy"] for r in records}
    rows = []
    with ProcessPoolExecutor(workers) as pool:
        for name, m, seconds in pool.map(_measure, jobs):
            packed = m.get("compressed", {})
            row = {"variant": name, "runs": m["runs"], "flash (KB)": m["flash_bytes"] / 1024}
            if m["runs"]:
                row.update({"arena (KB)": m["arena_bytes"] / 1024,
                            "LUT flash (KB)": packed.get("flash_bytes", np.nan) / 1024,
                            "LUT arena (KB)": packed.get("arena_bytes", np.nan) / 1024,
                            "accuracy TFLM": m["sample_accuracy"], "accuracy LiteRT (record)": accuracy[name],
                            "identical to LiteRT built-in": m["vs_litert_builtin"]["identical_outputs"] / m["sample"],
                            "same class": m["vs_litert_builtin"]["same_class"] / m["sample"],
                            "LUT identical to plain": packed.get("identical_to_plain", np.nan) / m["sample"],
                            "seconds": seconds})
            rows.append(row)
    return pd.DataFrame(rows).set_index("variant")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-path", default=str(runner.ROOT / "results" / "fashion-mnist"))
    args = parser.parse_args()
    found = seeds.seeds_in(args.results_path)
    results = seeds.folder(args.results_path, found[0] if found else runner.SEED)
    data = load_fashion_mnist()
    table = micro_full(results, preprocess(data.x_test), data.y_test)
    print(f"{micro.version()}, {len(data.y_test)} test images, {results}\n")
    print(table.to_markdown(floatfmt=",.4g"))


if __name__ == "__main__":
    main()
