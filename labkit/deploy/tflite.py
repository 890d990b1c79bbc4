"""Running TensorFlow Lite models with the LiteRT interpreter: batched predictions and batch-1 latency.

Accuracy is measured in batches on every core (fast); latency separately at batch 1 on one thread
after a warm-up, as the median of many runs, because that is what one request on an edge device costs.
Every latency names the runtime that ran it (`runtime`): which kernels ran the model decides even the sign of an
INT8 speed-up (benchmarks/README.md, "Which runtime ran").
"""

from __future__ import annotations

import functools
import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from labkit.errors import LabkitError
from labkit.quiet import native_stderr_closed

# LiteRT's kernel choices: its default applies the XNNPACK delegate to every op it supports; "builtin" runs the
# interpreter's own kernels (ruy and Eigen on x86) for every op.
KERNELS = {"xnnpack": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
KERNEL_NAMES = {"xnnpack": "XNNPACK", "builtin": "built-in kernels"}


class LabInterpreter(Interpreter):
    """LiteRT's interpreter, keeping the threads and kernels it was made with (LiteRT does not report them)."""

    def __init__(self, threads: int, kernels: str, **model: Any) -> None:
        super().__init__(**model, num_threads=threads, experimental_op_resolver_type=KERNELS[kernels])
        self.threads, self.kernels = threads, kernels


def load(model: str | Path | bytes, num_threads: int = 1, kernels: str = "xnnpack") -> LabInterpreter:
    """An interpreter for a .tflite file or its bytes, on `kernels` ("xnnpack", LiteRT's default, or "builtin");
    a file that is not a TFLite model is a LabkitError."""
    if kernels not in KERNELS:
        raise LabkitError(f"unknown TFLite kernels {kernels!r}: use one of {', '.join(KERNELS)}")
    try:
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        interpreter = LabInterpreter(num_threads, kernels, **source)
        with native_stderr_closed():  # the first allocation prints XNNPACK's "Created ... delegate" notice
            interpreter.allocate_tensors()
        return interpreter
    except (ValueError, RuntimeError) as err:
        where = "the given bytes" if isinstance(model, bytes) else str(model)
        raise LabkitError(f"{where} is not a valid TFLite model ({str(err).splitlines()[0]}); "
                          "delete it and convert the model again") from err


def partitions(ops: list[dict[str, Any]]) -> list[list[int]]:
    """The graph's ops (by index) that each delegate node runs, one list per partition, from an interpreter's
    `_get_ops_details()`.

    LiteRT keeps the replaced ops in its node list and appends one DELEGATE node per partition, which reads the
    partition's inputs and writes its outputs: the ops between them, found walking back from the outputs, are the
    ones it took over.
    """
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    found = []
    for delegate in (op for op in ops if op["op_name"] == "DELEGATE"):
        reads, inside, pending = {int(t) for t in delegate["inputs"]}, set(), [int(t) for t in delegate["outputs"]]
        while pending:
            op = producer.get(tensor := pending.pop())
            if tensor not in reads and op is not None and op["index"] not in inside:
                inside.add(op["index"])
                pending.extend(int(t) for t in op["inputs"])
        found.append(sorted(inside))
    return found


# Vector extensions that decide which kernels XNNPACK, ruy and Eigen pick: x86 flags and ARM features.
VECTOR_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                     "avx512_bf16", "avx_vnni", "amx_int8", "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve",
                     "sve2")


def cpu_from(cpuinfo: str) -> dict[str, Any]:
    """The processor's model name, architecture and vector extensions, from the text of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return {"model": fields.get("model name") or fields.get("Hardware") or platform.processor() or "unknown",
            "arch": platform.machine(), "vector_extensions": [f for f in VECTOR_EXTENSIONS if f in flags]}


@functools.cache
def cpu() -> dict[str, Any]:
    """This machine's processor (see cpu_from); only the architecture where there is no /proc/cpuinfo."""
    path = Path("/proc/cpuinfo")
    return cpu_from(path.read_text() if path.is_file() else "")


def runtime(interpreter: LabInterpreter) -> dict[str, Any]:
    """What runs a model: LiteRT's version, threads and kernels, how many ops XNNPACK took (in how many
    partitions) and which ones the built-in kernels run, and the CPU."""
    ops = interpreter._get_ops_details()
    names = {op["index"]: op["op_name"] for op in ops if op["op_name"] != "DELEGATE"}
    delegated = partitions(ops)
    builtin = sorted(set(names) - {i for part in delegated for i in part})
    return {"engine": "LiteRT", "version": version("ai-edge-litert"), "threads": interpreter.threads,
            "kernels": interpreter.kernels, "ops": len(names), "delegated_ops": len(names) - len(builtin),
            "partitions": len(delegated), "builtin_ops": len(builtin),
            "builtin_op_names": sorted({names[i] for i in builtin}), "cpu": cpu()}


def describe(runtime: dict[str, Any]) -> str:
    """A runtime in a few words, e.g. "LiteRT 2.3.0, XNNPACK (7 of 7 ops), 1 thread" or "LiteRT 2.3.0, XNNPACK
    (2 of 3 ops in 2 partitions; CUMSUM on built-in kernels), 1 thread"."""
    what = f"{runtime['engine']} {runtime['version']}"
    if runtime.get("kernels") == "xnnpack":
        what += f", XNNPACK ({runtime['delegated_ops']} of {runtime['ops']} ops"
        what += f" in {runtime['partitions']} partitions" if runtime["partitions"] > 1 else ""
        left = runtime["builtin_op_names"]
        what += f"; {', '.join(left)} on built-in kernels)" if left else ")"
    elif "kernels" in runtime:
        what += ", built-in kernels"
    for detail in ("provider", "cpu_capability"):
        what += f", {runtime[detail]}" if detail in runtime else ""
    return what + f", {runtime['threads']} thread{'s' if runtime['threads'] != 1 else ''}"


def describe_cpu(cpu: dict[str, Any]) -> str:
    """A CPU in a few words, e.g. "AMD EPYC (x86_64: sse4_2, avx, avx2, fma, f16c)"."""
    return f"{cpu['model']} ({cpu['arch']}: {', '.join(cpu['vector_extensions']) or 'no vector extensions known'})"


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float input to the tensor's dtype using its scale and zero point (identity for float tensors)."""
    scale, zero_point = detail["quantization"]
    if detail["dtype"] in (np.float32, np.float16) or scale == 0:
        return x.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    """A tensor's raw output back to float32 with its scale and zero point (float tensors as they are)."""
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
        interpreter.set_tensor(inp["index"], quantize(batch, inp))
        interpreter.invoke()
        results.append(dequantize(interpreter.get_tensor(out["index"]), out))
    return np.concatenate(results)


def all_cores() -> int:
    """Threads for batched evaluation: every core of the machine."""
    return os.cpu_count() or 1


class Batch1Call(NamedTuple):
    """One batch-1 inference as a zero-argument function, and the runtime that runs it (see `runtime`)."""

    run: Callable[[], object]
    runtime: dict[str, Any]


def batch1_call(interpreter: LabInterpreter, sample: np.ndarray | None = None) -> Batch1Call:
    """One batch-1 inference of `sample` (zeros when no sample is given), ready to time."""
    inp = interpreter.get_input_details()[0]
    shape = [1, *inp["shape"][1:]] if sample is None else [1, *sample.shape]
    interpreter.resize_tensor_input(inp["index"], shape)
    interpreter.allocate_tensors()
    x = np.zeros(shape, np.float32) if sample is None else sample[None].astype(np.float32)
    interpreter.set_tensor(inp["index"], quantize(x, inp))
    return Batch1Call(interpreter.invoke, runtime(interpreter))


def _seconds(run: Callable[[], object], runs: int) -> np.ndarray:
    """The wall time of each of `runs` calls of `run`."""
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        run()
        times[i] = time.perf_counter() - start
    return times


def time_call(call: Batch1Call, warmup: int = 20, runs: int = 200) -> dict[str, Any]:
    """Batch-1 inference time in milliseconds after a warm-up (summarize_times), with the runtime that ran it."""
    for _ in range(warmup):
        call.run()
    return {**summarize_times(_seconds(call.run, runs)), "runtime": call.runtime}


def latency(interpreter: LabInterpreter, sample: np.ndarray, warmup: int = 20, runs: int = 200) -> dict[str, Any]:
    """Batch-1 inference time in milliseconds: median, interquartile range, 10th and 90th percentiles, and the
    runtime that ran it."""
    return time_call(batch1_call(interpreter, sample), warmup, runs)


def summarize_times(seconds: np.ndarray) -> dict[str, float]:
    """Median, IQR and 10th/90th percentiles of a set of timings, in milliseconds."""
    p10, q1, median, q3, p90 = np.percentile(np.asarray(seconds) * 1e3, [10, 25, 50, 75, 90])
    return {"median_ms": float(median), "iqr_ms": float(q3 - q1), "p10_ms": float(p10), "p90_ms": float(p90)}


def interleaved_latency(calls: dict[str, Batch1Call], rounds: int = 15, runs: int = 40, warmup: int = 5,
                        seed: int = 0) -> dict[str, dict[str, Any]]:
    """Batch-1 latency of several models timed round-robin, so drift of the machine hits all of them alike.

    Each round visits the models in a new seeded random order, and each block starts with `warmup` untimed runs:
    in a fixed order the model after the largest one always met cold caches and looked ~10 % slower than its
    identical twins. Returns summarize_times per name, with the median of each round (`rounds_ms`: the repeats
    that intervals of speed comparisons resample) and the runtime of its call.
    """
    times: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    rng = np.random.default_rng(seed)
    names = list(calls)
    for _ in range(rounds):
        for name in rng.permutation(names):
            run = calls[name].run
            for _ in range(warmup):
                run()
            times[name].append(_seconds(run, runs))
    return {name: {**summarize_times(np.concatenate(t)), "rounds_ms": [float(np.median(b)) * 1e3 for b in t],
                   "runtime": calls[name].runtime} for name, t in times.items()}
