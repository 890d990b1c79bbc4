"""INT8 against FP32 at batch 1 on each LiteRT runtime, over fresh processes.

Run alone (`.venv/bin/python benchmarks/runtimes.py`) on the lab run's base-fp32 and quantized-int8 files, on any
pair (`--fp32 A.tflite --int8 B.tflite`), on a freshly trained CNN (`--build`), or as part of `make bench`. Each
process loads both models on both runtimes, XNNPACK (LiteRT's default) and the built-in kernels, one thread each,
and times the four round-robin (labkit's interleaved_latency); a new process each time, so that one process's
luck (its memory layout, the caches and clock it met) shows as spread between the rows instead of as the answer.
`--build --layers` first times the CNN layer by layer on both runtimes: where INT8 gains or loses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import labkit  # noqa: F401  (legacy Keras before TensorFlow)
from labkit.deploy import tflite
from labkit.deploy.export import to_int8_tflite, to_tflite
from labkit.results import seeds, stats
from labkit.run import runner

PROCESSES, ROUNDS, RUNS = 5, 20, 100


def one_process(fp32: Path, int8: Path) -> dict[str, dict[str, Any]]:
    """Both models on both runtimes in this process, timed interleaved: per runtime the medians in ms and INT8's
    speed-up over FP32 with its bootstrap interval over the rounds."""
    calls = {f"{kernels} {precision}": tflite.batch1_call(tflite.load(path, kernels=kernels))
             for kernels in tflite.KERNELS for precision, path in (("fp32", fp32), ("int8", int8))}
    timed = tflite.interleaved_latency(calls, rounds=ROUNDS, runs=RUNS)
    result = {}
    for kernels in tflite.KERNELS:
        fp32_timing, int8_timing = timed[f"{kernels} fp32"], timed[f"{kernels} int8"]
        ratio, low, high = stats.speedup_interval(fp32_timing["rounds_ms"], int8_timing["rounds_ms"])
        result[kernels] = {"fp32_ms": fp32_timing["median_ms"], "int8_ms": int8_timing["median_ms"],
                           "int8_speedup": ratio, "low": low, "high": high,
                           "fp32_runtime": fp32_timing["runtime"], "int8_runtime": int8_timing["runtime"]}
    return result


def fresh_processes(fp32: Path, int8: Path, processes: int = PROCESSES) -> list[dict[str, dict[str, Any]]]:
    """one_process in `processes` new Python processes, one after another."""
    results = []
    for _ in range(processes):
        done = subprocess.run([sys.executable, __file__, "--one-process", str(fp32), str(int8)], check=True,
                              capture_output=True, text=True)
        results.append(json.loads(done.stdout.splitlines()[-1]))
    return results


def int8_speedups(fp32: Path, int8: Path, processes: int = PROCESSES) -> pd.DataFrame:
    """Per fresh process and runtime: FP32 and INT8 median latency and how many times faster INT8 is, with its
    95 % interval; then the min, median and max over the processes and in how many INT8 was faster."""
    results = fresh_processes(fp32, int8, processes)
    rows: dict[str, dict[str, Any]] = {f"process {i + 1}": {} for i in range(processes)}
    for kernels, name in tflite.KERNEL_NAMES.items():
        for row, result in zip(rows.values(), results, strict=True):
            r = result[kernels]
            row.update({f"{name}: FP32 (ms)": r["fp32_ms"], f"{name}: INT8 (ms)": r["int8_ms"],
                        f"{name}: INT8 × faster": r["int8_speedup"],
                        f"{name}: 95 % CI": f"{r['low']:.2f}–{r['high']:.2f}"})
    table = pd.DataFrame(rows).T
    numbers = table[[c for c in table.columns if not c.endswith("CI")]].astype(float)
    spread = pd.DataFrame({"min": numbers.min(), "median": numbers.median(), "max": numbers.max()}).T
    faster = {f"{name}: INT8 × faster": f"{(numbers[f'{name}: INT8 × faster'] > 1).sum()} of {processes}"
              for name in tflite.KERNEL_NAMES.values()}
    table[numbers.columns] = numbers.round(3)  # a column that also holds the counts prints its floats as they are
    return pd.concat([table, spread.round(3).astype(object), pd.DataFrame({"INT8 faster in": faster}).T]).fillna("")


def runtimes_of(fp32: Path, int8: Path) -> list[str]:
    """What ran the models, per runtime and file, and on which CPU: the lines printed under the table."""
    lines = []
    for kernels in tflite.KERNELS:
        for label, path in (("FP32", fp32), ("INT8", int8)):
            lines.append(f"- {label} on {tflite.describe(tflite.runtime(tflite.load(path, kernels=kernels)))}")
    return [*lines, f"- CPU: {tflite.describe_cpu(tflite.cpu())}"]


def train_cnn(train_samples: int = 12_000):
    """The lab's Keras CNN trained for one epoch on part of Fashion-MNIST, and 300 of its training images (the
    representative data of INT8 conversion)."""
    import tensorflow as tf

    from labkit.data import load_fashion_mnist, preprocess
    from labkit.models.keras_models import fashion_cnn

    data = load_fashion_mnist()
    x = preprocess(data.x_train[:train_samples])
    tf.keras.utils.set_random_seed(42)
    model = fashion_cnn(len(data.class_names), x.shape[1:])
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, data.y_train[:train_samples], epochs=1, batch_size=128, verbose=0)
    return model, x[:300]


def layer_costs(model, representative: np.ndarray, rounds: int = 2 * ROUNDS) -> pd.DataFrame:
    """Microseconds each layer with weights of a Sequential Keras model adds at batch 1 (with the weightless layers
    before it), per runtime and precision: the model cut after each such layer, every cut converted to FP32 and
    INT8 and all of them timed interleaved in this process; a layer costs its cut's median minus the previous
    cut's (the first also carries the ~2 µs of an invoke)."""
    import tensorflow as tf

    cuts, pending = {}, []
    for layer in model.layers:
        pending.append(layer.name)
        if layer.weights or layer is model.layers[-1]:
            cuts[" + ".join(pending)], pending = tf.keras.Model(model.inputs, layer.output), []
    calls = {}
    for label, cut in cuts.items():
        for precision, flatbuffer in (("FP32", to_tflite(cut)), ("INT8", to_int8_tflite(cut, representative))):
            for kernels in tflite.KERNELS:
                calls[f"{kernels} {precision} {label}"] = tflite.batch1_call(tflite.load(flatbuffer, kernels=kernels))
    timed = tflite.interleaved_latency(calls, rounds=rounds, runs=RUNS)
    columns = {}
    for kernels, name in tflite.KERNEL_NAMES.items():
        for precision in ("FP32", "INT8"):
            medians = [1e3 * timed[f"{kernels} {precision} {label}"]["median_ms"] for label in cuts]
            columns[f"{name}: {precision} (µs)"] = [*np.diff(medians, prepend=0.0), medians[-1]]
    return pd.DataFrame(columns, index=[*cuts, "whole model"])


def write_models(model, representative: np.ndarray, folder: Path) -> tuple[Path, Path]:
    """A Keras model as FP32 and INT8 TFLite files in `folder`."""
    fp32, int8 = folder / "fp32.tflite", folder / "int8.tflite"
    to_tflite(model, fp32)
    to_int8_tflite(model, representative, int8)
    return fp32, int8


def lab_models(results_path: Path) -> tuple[Path, Path]:
    """The base and INT8 files of the lab run's first seed."""
    found = seeds.seeds_in(results_path)
    results = seeds.folder(results_path, found[0] if found else runner.SEED)
    fp32, int8 = results / "base-fp32.tflite", results / "quantized-int8.tflite"
    if not (fp32.is_file() and int8.is_file()):
        raise SystemExit(f"no base-fp32.tflite and quantized-int8.tflite in {results}: run `make lab` first, or "
                         "pass --build or --fp32/--int8")
    return fp32, int8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-path", default=str(runner.ROOT / "results" / "fashion-mnist"))
    parser.add_argument("--fp32", help="an FP32 .tflite file (with --int8)")
    parser.add_argument("--int8", help="its INT8 .tflite file")
    parser.add_argument("--build", action="store_true", help="train the lab's CNN briefly and time its files")
    parser.add_argument("--layers", action="store_true", help="with --build: also time the CNN layer by layer")
    parser.add_argument("--processes", type=int, default=PROCESSES)
    parser.add_argument("--one-process", nargs=2, metavar=("FP32", "INT8"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_process:
        print(json.dumps(one_process(*map(Path, args.one_process))))
        return
    with tempfile.TemporaryDirectory() as folder:
        if args.build:
            model, representative = train_cnn()
            fp32, int8 = write_models(model, representative, Path(folder))
            if args.layers:
                print(layer_costs(model, representative).to_markdown(floatfmt=".1f"), end="\n\n")
        elif args.fp32 and args.int8:
            fp32, int8 = Path(args.fp32), Path(args.int8)
        else:
            fp32, int8 = lab_models(Path(args.results_path))
        print(int8_speedups(fp32, int8, args.processes).to_markdown(floatfmt=".3f"))
        print("\n".join(["", *runtimes_of(fp32, int8)]))


if __name__ == "__main__":
    main()
