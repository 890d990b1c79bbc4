"""Benchmarks of the lab's claims, measured side by side in one run on this machine.

Prints a table per question and writes them all to <results>/benchmarks.json. Reads the variant
files of a default-scale lab run (`make lab`); `--rerun` first runs the whole lab again, timed.
These are measurements to read, not tests: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from micro import micro_full  # beside this file
from ray_scaling import ray_scaling
from roofline import roofline
from runtimes import int8_speedups
from throughput import matmul_peak, training_throughput

import labkit.paths  # legacy Keras before TensorFlow
from labkit.data import load_fashion_mnist, preprocess
from labkit.deploy import onnxrt, tflite
from labkit.records import load_records
from labkit.results import report, seeds, stats, summary
from labkit.run import runner

# TFMOT's published top-1 changes on ImageNet (percentage points), for scale.
PUBLISHED = {"clustering": {"MobileNetV2, 32 clusters": 69.74 - 71.78},
             "pruning": {"MobileNetV1, 50 % sparsity": 70.84 - 71.04, "InceptionV3, 50 % sparsity": 78.0 - 78.1}}


FORMATS = {"Zipped size against the entropy bound (KB)": ("", ",.1f", ",.1f", ".3f"),
           "INT8 against FP32 on each LiteRT runtime, over fresh processes": ".3f",
           "Training throughput of the PyTorch classifier beside the matmul peak": ".0f",
           "Where the first seed's time goes against the cores' peak": ",.1f",
           "The same plan sequentially and on local Ray, and the bound on more nodes": ".2f",
           "Every model under TensorFlow Lite for Microcontrollers, on the whole test set": ",.4g"}


def notebook_times(results: Path) -> pd.DataFrame:
    """Wall time of each notebook of the run, from papermill's metadata."""
    times = summary.notebook_durations(results / "notebooks")
    return pd.DataFrame({"notebook": list(times), "wall time (s)": list(times.values())}).set_index("notebook")


def course_loop(interpreter, x: np.ndarray) -> np.ndarray:
    """The course's evaluation: one sample per invoke, resizing and allocating for every sample."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    predictions = []
    for sample in x:
        interpreter.resize_tensor_input(inp["index"], [1, *sample.shape])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], sample[None])
        interpreter.invoke()
        predictions.append(interpreter.get_tensor(out["index"])[0].argmax())
    return np.array(predictions)


def batched_vs_loop(results: Path, x: np.ndarray) -> pd.DataFrame:
    """labkit's evaluation (batches of 64, every core) against the course's loop (one image per invoke, one
    thread): same model, same images."""
    model = results / "base-fp32.tflite"
    start = time.perf_counter()
    batched = tflite.predict(tflite.load(model, num_threads=tflite.all_cores()), x).argmax(1)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = course_loop(tflite.load(model), x)
    t_loop = time.perf_counter() - start
    return pd.DataFrame([{"images": len(x), "batched (s)": t_batched, "per-sample loop (s)": t_loop,
                          "× faster": t_loop / t_batched, "same predictions": bool((batched == looped).all())}])


def interleaved_latency(results: Path, names: list[str], x0: np.ndarray, onnx: dict[str, Path]) -> pd.DataFrame:
    """Batch-1 latency of every TFLite model and the ONNX exports, timed round-robin (labkit's interleaving)."""
    calls = {}
    for name in names:
        interpreter = tflite.load(_model_file(results, name, ".tflite"))
        sample = x0 if interpreter.get_input_details()[0]["shape"][-1] == 1 else x0.transpose(2, 0, 1)
        calls[name] = tflite.batch1_call(interpreter, sample)
    for label, path in onnx.items():
        calls[label] = onnxrt.batch1_call(onnxrt.load(path), x0.transpose(2, 0, 1))
    measured = tflite.interleaved_latency(calls)
    return pd.DataFrame([{"model": name, **stats, "runtime": tflite.describe(stats["runtime"])}
                         for name, stats in measured.items()]).set_index("model")


def _model_file(results: Path, name: str, suffix: str) -> Path:
    """A variant's model file: `<name><suffix>`, or `<name>-fp32<suffix>` for structured pruning's exports."""
    return next(p for p in (results / f"{name}{suffix}", results / f"{name}-fp32{suffix}") if p.is_file())


def structured_speedup(records: dict, latency: pd.DataFrame) -> pd.DataFrame:
    """Speedup of each structured-pruning variant (NNI's and Torch-Pruning's) per runtime beside its reduction of
    parameters and FLOPs."""
    rows = []
    for name, record in records.items():
        if record["method"] != "structured pruning":
            continue
        stages = record["stages"]
        base, tuned = stages["base"], stages["fine-tuned"]
        reduction = {"parameters ÷": base["parameters"] / tuned["parameters"],
                     "FLOPs ÷": base["flops"] / tuned["flops"]}
        rows.append({"variant": name, "runtime": "PyTorch (from the run)", **reduction,
                     "× faster": base["latency"]["median_ms"] / tuned["latency"]["median_ms"], "95 % CI": ""})
        for runtime, (b, p) in {"ONNX Runtime": ("onnx torch-base-fp32", f"onnx {name}"),
                                "TFLite": ("torch-base-fp32", name)}.items():
            ratio, low, high = stats.speedup_interval(latency.loc[b, "rounds_ms"], latency.loc[p, "rounds_ms"])
            rows.append({"variant": name, "runtime": runtime, **reduction, "× faster": ratio,
                         "95 % CI": f"{low:.2f}–{high:.2f}"})
    return pd.DataFrame(rows).set_index(["variant", "runtime"])


def bound_table(records: dict) -> pd.DataFrame:
    """Zipped size against the entropy bound: bound/zip = 1 means DEFLATE is at the limit."""
    return pd.DataFrame([{"variant": n, "zip": r["size"]["zipped_bytes"] / 1024,
                          "bound": r["size"]["ideal_bytes"] / 1024, "bound / zip": r["size"]["reached"]}
                         for n, r in records.items()]).set_index("variant")


def accuracy_table(records: dict) -> pd.DataFrame:
    """Accuracy change against the base and against the matched-budget control, beside TFMOT's published change
    for the same method (fine-tuned variant against the original model)."""
    rows = []
    for name, r in records.items():
        if r["method"] == "none":
            continue
        published = PUBLISHED.get(r["method"], {})
        rows.append({"variant": name, "Δ vs base (pp)": r["accuracy_change_pp"],
                     "Δ vs control (pp)": r["vs_control"]["delta_pp"] if r.get("vs_control") else None,
                     "published Δ (pp), ImageNet": "; ".join(f"{v:+.2f} ({k})" for k, v in published.items())})
    return pd.DataFrame(rows).set_index("variant")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-path", default=str(runner.ROOT / "results" / "fashion-mnist"))
    parser.add_argument("--rerun", action="store_true", help="run the whole lab again first (timed, forced)")
    args = parser.parse_args()
    if args.rerun:
        runner.run(["all"], results_path=args.results_path, force=True)
    found = seeds.seeds_in(args.results_path)
    results = seeds.folder(args.results_path, found[0] if found else runner.SEED)  # the first seed's models
    records = {r["name"]: r for r in load_records(results)}
    if "base-fp32" not in records:
        raise SystemExit(f"no lab results in {results}: run `make lab` first (or pass --rerun)")
    data = load_fashion_mnist()
    x = preprocess(data.x_test)
    keras_names = [r["name"] for r in report.keras_records(list(records.values()))]
    torch_names = [n for n in records if n not in keras_names]
    onnx = {f"onnx {n}": _model_file(results, n, ".onnx") for n in torch_names}
    latency = interleaved_latency(results, keras_names + torch_names, x[0], onnx=onnx)
    tables = {
        "Wall time of each notebook": notebook_times(results),
        "Batched evaluation against the course's per-sample loop": batched_vs_loop(results, x),
        "Batch-1 latency, interleaved (ms)": latency.drop(columns="rounds_ms"),
        "INT8 against FP32 on each LiteRT runtime, over fresh processes": int8_speedups(
            results / "base-fp32.tflite", results / "quantized-int8.tflite"),
        "Structured pruning: speedup against parameter and FLOP reduction": structured_speedup(records, latency),
        "Zipped size against the entropy bound (KB)": bound_table(records),
        "Accuracy change against the base, beside published TFMOT changes": accuracy_table(records),
        "Training throughput of the PyTorch classifier beside the matmul peak": training_throughput(),
        "Where the first seed's time goes against the cores' peak": roofline(results, labkit.paths.ROOT / "models",
                                                                             matmul_peak()),
        "The same plan sequentially and on local Ray, and the bound on more nodes": ray_scaling(),
        "Every model under TensorFlow Lite for Microcontrollers, on the whole test set": micro_full(
            results, x, data.y_test),
    }
    for title, table in tables.items():
        print(f"\n## {title}\n")
        print(table.to_markdown(floatfmt=FORMATS.get(title, ".4g")))
    out = results / "benchmarks.json"
    out.write_text(json.dumps({t: json.loads(v.reset_index().to_json(orient="records")) for t, v in tables.items()},
                              indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
