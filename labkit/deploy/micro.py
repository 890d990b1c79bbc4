"""Running a TFLite file where a microcontroller runs it: TensorFlow Lite for Microcontrollers (TFLM).

For one file: whether TFLM runs it (the ops it lacks, by name), the tensor arena it needs (the smallest that
allocates, searched: TFLM returns no figure), the flash its model takes, and its outputs on a sample of test images
against LiteRT's built-in kernels, which TFLM's reference kernels match bit for bit in INT8. TFLM's look-up-table
compression then stores each weight tensor with few distinct values (a clustered model's) as bit-packed indices into
those values: the file a board would flash, checked to give exactly the same outputs.

The figures are the x86-64 build's (pointers are 64-bit here and optimized kernels add scratch buffers on a board:
tflite-micro issue 2474); labkit.deploy.boards adds the allowance. The wheel exists for Linux x86_64 only: elsewhere
`version()` is None and the lab runs without these measurements.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from labkit.deploy import tflite
from labkit.errors import LabkitError

PIN = "0.dev20261023182759"  # TFLM publishes nightly builds only: requirements.txt pins this one
MISSING = ("TensorFlow Lite for Microcontrollers is not installed (its wheels exist for Linux x86_64 only), so the "
           f"microcontroller measurements are skipped; on Linux x86_64: pip install tflite-micro=={PIN}")
MAX_INDEX_BITS = 7  # TFLM's look-up-table indices are 1 to 7 bits wide


def version() -> str | None:
    """The installed TFLM build, or None where its wheel is not installed."""
    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """What C++ writes to file descriptor 2 inside the block, as lines (TFLM reports why it failed only there)."""
    lines: list[str] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def _interpreter(model: bytes, arena: int):
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena)


def missing_ops(model: bytes) -> list[str]:
    """The ops of the model TFLM has no kernel for, by name (empty when it allocates with a large arena)."""
    with _native_stderr() as said:
        try:
            _interpreter(model, 16 * len(model) + (1 << 20))
            return []
        except RuntimeError:
            pass
    return sorted(set(re.findall(r"Didn't find op for builtin opcode '(\w+)'", "\n".join(said)))) or [
        "unknown (TFLM failed to allocate tensors without naming an op)"]


def external_buffers(model: bytes) -> int:
    """How many weight buffers the file keeps after its flatbuffer, by offset (as ai-edge-quantizer writes large
    models): TFLM reads none of them and computes from garbage without an error (export.inline_buffers fixes it)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    root = schema.Model.GetRootAsModel(model, 0)
    return sum(root.Buffers(i).Offset() > 1 for i in range(root.BuffersLength()))


def arena_bytes(model: bytes) -> int:
    """The smallest tensor arena TFLM allocates this model in, to the byte (searched: each failure costs one parse)."""
    low, high = 0, 4 * len(model) + (1 << 16)
    with _native_stderr():  # every arena too small prints TFLM's "Failed to resize buffer" lines
        while not _allocates(model, high):
            low, high = high, 2 * high
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if _allocates(model, middle) else (middle, high)
    return high


def _allocates(model: bytes, arena: int) -> bool:
    try:
        _interpreter(model, arena)
        return True
    except RuntimeError:
        return False


def outputs(model: bytes, inputs: np.ndarray, arena: int) -> np.ndarray:
    """TFLM's raw outputs (int8 for an INT8 model) for each of `inputs`, already in the model's input type, one
    image per call as on a board."""
    interpreter = _interpreter(model, arena)
    found = []
    for x in inputs:
        interpreter.set_input(x[None], 0)
        interpreter.invoke()
        found.append(interpreter.get_output(0)[0].copy())
    return np.stack(found)


def litert_reference(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The inputs as the model takes them (quantized for INT8) and LiteRT's raw outputs on its built-in kernels,
    one image per call, with the output tensor's details."""
    interpreter = tflite.load(path, kernels="builtin")
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [1, *inp["shape"][1:]]
    if list(inp["shape"]) != shape:
        interpreter.resize_tensor_input(inp["index"], shape)
        interpreter.allocate_tensors()
    images = images.reshape(len(images), *shape[1:])  # (n, 28, 28) to (n, 28, 28, 1); layouts must already match
    inputs = tflite.quantize(images.astype(np.float32), inp)
    found = []
    for x in inputs:
        interpreter.set_tensor(inp["index"], x[None])
        interpreter.invoke()
        found.append(interpreter.get_tensor(out["index"])[0].copy())
    return inputs, np.stack(found), out


def agreement(ours: np.ndarray, theirs: np.ndarray, detail: dict[str, Any]) -> dict[str, Any]:
    """How TFLM's outputs compare with LiteRT's on the same images: identical rows, same top class, and the largest
    difference (in the output's float units)."""
    difference = np.abs(tflite.dequantize(ours, detail) - tflite.dequantize(theirs, detail))
    return {"identical_outputs": int(np.all(ours == theirs, axis=1).sum()),
            "same_class": int((ours.argmax(axis=1) == theirs.argmax(axis=1)).sum()),
            "max_abs_difference": float(difference.max()) if difference.size else 0.0}


def _lut_plan(model: bytes) -> list[tuple[int, int, int, Any]]:
    """(subgraph, tensor, index bits, mode) of every constant tensor that look-up-table compression makes smaller.

    A tensor quantized per channel gets one table per channel along its quantized axis, any other one table: the
    decoder reads per-channel tables along the quantization axis, and other layouts decoded wrong (measured)."""
    from tflite_micro.tensorflow.lite.micro.compression import constant_inputs, model_editor, spec

    plan = []
    for s, subgraph in enumerate(model_editor.read(model).subgraphs):
        for t, tensor in enumerate(subgraph.tensors):
            if not (tensor.buffer and tensor.buffer.data) or len(tensor.shape) < 2:
                continue
            if constant_inputs.find_uses(subgraph, tensor):
                continue
            values = tensor.array
            scales = tensor.quantization.scales if tensor.quantization else None
            axis = tensor.quantization.axis if scales is not None and len(scales) > 1 else None
            if axis not in (None, 0, values.ndim - 1):
                continue
            tables = [values] if axis is None else list(np.moveaxis(values, axis, 0))
            bits = max(1, math.ceil(math.log2(max(len(np.unique(table)) for table in tables))))
            packed = math.ceil(values.size * bits / 8) + len(tables) * 2 ** bits * values.itemsize
            if bits <= MAX_INDEX_BITS and packed < values.nbytes:
                plan.append((s, t, bits, spec.PerTensor() if axis is None else spec.PerChannel(axis)))
    return plan


def lut_compress(model: bytes) -> tuple[bytes | None, dict[str, Any]]:
    """TFLM's look-up-table compression of every weight tensor it makes smaller, and which ones (None and the reason
    when none is: a tensor needs at most 128 distinct values per table, as clustering leaves)."""
    from tflite_micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec

    plan = _lut_plan(model)
    if not plan:
        return None, {"reason": "no weight tensor has few enough distinct values (at most 2^7 per table) to pay"}
    specs = [spec.Tensor(s, t, [spec.LookUpTableCompression(bits, mode)]) for s, t, bits, mode in plan]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "index_bitwidth larger than necessary": the plan gives the least
        compressed = bytes(compression.compress(model, specs))
    return compressed, {"tensors": len(plan), "index_bits": sorted({bits for _, _, bits, _ in plan})}


def measure(path: Path, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """One TFLite file under TFLM: whether it runs (or the ops it lacks), its flash and arena bytes, its outputs on
    `images` against LiteRT's built-in kernels and its accuracy on them, and the same for its look-up-table
    compressed form, whose outputs must equal the plain file's."""
    if (built := version()) is None:
        raise LabkitError(MISSING)
    model = Path(path).read_bytes()
    found: dict[str, Any] = {"runtime": f"TFLM {built}, reference kernels, x86-64", "sample": len(images),
                             "flash_bytes": len(model)}
    if outside := external_buffers(model):
        return {**found, "runs": False, "missing_ops": [],
                "unsupported": f"{outside} weight buffers stored outside the flatbuffer, which TFLM does not read"}
    if missing := missing_ops(model):
        return {**found, "runs": False, "missing_ops": missing}
    arena = arena_bytes(model)
    inputs, theirs, detail = litert_reference(path, images)
    ours = outputs(model, inputs, arena)
    found.update(runs=True, missing_ops=[], arena_bytes=arena, vs_litert_builtin=agreement(ours, theirs, detail),
                 sample_accuracy=float((ours.argmax(axis=1) == labels).mean()))
    compressed, how = lut_compress(model)
    if compressed is None:
        return {**found, "compressed": how}
    compressed_arena = arena_bytes(compressed)
    same = int(np.all(outputs(compressed, inputs, compressed_arena) == ours, axis=1).sum())
    return {**found, "compressed": {**how, "flash_bytes": len(compressed), "arena_bytes": compressed_arena,
                                    "identical_to_plain": same}}


def measure_variants(results_dir: Path, records: list[dict[str, Any]], images: np.ndarray, labels: np.ndarray,
                     force: bool = False) -> list[dict[str, Any]]:
    """The records, each with its TFLite file's TFLM measurement (`measure`) on the given test images as "micro";
    the controls they were compared with are measured too. Each measurement is kept beside its record in
    `<name>-micro.json`, keyed by the file (checksum), the record, the TFLM build and the sample: a later run reuses
    it only when all are the same. Where TFLM is not installed, one line says so and the records come back as they
    are."""
    from labkit.files import read_json, write_json
    from labkit.progress import tqdm
    from labkit.records import digest, micro_path, read_record, sha256_of

    if version() is None:
        print(MISSING)
        return records
    controls = [r["vs_control"]["control"] for r in records if r.get("vs_control")]
    found = {}
    for name in tqdm(list(dict.fromkeys([*(r["name"] for r in records), *controls])), desc="TFLM", unit="model"):
        record = read_record(results_dir, name) or {}
        files = [Path(results_dir) / f for f in record.get("files", []) if f.endswith(".tflite")]
        if not files:
            raise LabkitError(f"{name} has no record with a TFLite file in {results_dir}: measure the variant first")
        if not (path := files[0]).is_file():
            raise LabkitError(f"{path} is missing: run again with force (--force) to make {name} again")
        key = {"model": sha256_of(path), "record": digest(record.get("key") or {}), "tflite-micro": version(),
               "sample": len(images)}
        kept = micro_path(results_dir, name)
        if force or not kept.is_file() or read_json(kept).get("key") != key:
            write_json(kept, {**measure(path, images, labels), "key": key})
        found[name] = read_json(kept)
    return [{**r, "micro": found[r["name"]]} for r in records]
