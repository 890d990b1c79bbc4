"""How small a model file gets: ZIP deflation, and the entropy bound that no lossless coder can beat.

Clustering leaves few distinct weight values and pruning leaves many zeros; neither makes the
FP32 file smaller by itself, but both make it compress well. The bound tells how close DEFLATE gets.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from labkit.errors import LabkitError
from labkit.files import atomic_write_bytes

# TFLite schema TensorType codes of the types a weight buffer can have.
TFLITE_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}


def zip_model(path: Path, zip_path: Path | None = None) -> Path:
    """Zip one model file with DEFLATE (what `zip -q model.zip model.tflite` does) and return the archive."""
    path = Path(path)
    zip_path = Path(zip_path) if zip_path else path.with_name(path.name + ".zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.write(path, arcname=path.name)
    atomic_write_bytes(zip_path, buffer.getvalue())  # a unique temporary name: runs side by side never share one
    return zip_path


def deflation(path: Path, reference_zipped: int | None = None) -> dict[str, float]:
    """Raw and zipped size of a model file, deflation % and how many times smaller than a reference.

    `reference_zipped` is the zipped size of the FP32 base model; without it the file is its own reference.
    """
    path = Path(path)
    if not path.is_file():
        raise LabkitError(f"{path} does not exist: convert the model first")
    raw = path.stat().st_size
    zipped = zip_model(path).stat().st_size
    reference = reference_zipped or zipped
    return {"raw_bytes": raw, "zipped_bytes": zipped, "deflation_pct": 100.0 * (1 - zipped / raw),
            "times_smaller": reference / zipped}


def _binary_entropy(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else float(-p * np.log2(p) - (1 - p) * np.log2(1 - p))


def tensor_bound_bits(values: np.ndarray) -> float:
    """The ideal coded size, in bits, of one weight tensor under three simple models, whichever is least.

    raw (N*b); values coded against a codebook (N*H + U*b); a zero map plus raw non-zeros
    (N*H2(s) + (1-s)*N*b), where H is the value entropy, U the distinct values and s the zero share.
    """
    flat = values.reshape(-1)
    n, bits = flat.size, flat.dtype.itemsize * 8
    if n == 0:
        return 0.0
    _, counts = np.unique(flat, return_counts=True)
    p = counts / n
    entropy = float(-(p * np.log2(p)).sum())
    zeros = float(np.count_nonzero(flat == 0)) / n
    return min(n * bits, n * entropy + len(counts) * bits, n * _binary_entropy(zeros) + (1 - zeros) * n * bits)


def stored_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every constant tensor stored in a .tflite file's buffers, by tensor name, decoded with its dtype and shape."""
    from tensorflow.lite.python import schema_py_generated as schema

    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        seen, tensors = set(), {}
        for g in range(model.SubgraphsLength()):
            graph = model.Subgraphs(g)
            for t in range(graph.TensorsLength()):
                tensor = graph.Tensors(t)
                index = tensor.Buffer()
                buffer = model.Buffers(index)
                if index in seen or buffer is None or buffer.DataLength() == 0:
                    continue
                seen.add(index)
                values = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=TFLITE_DTYPES.get(tensor.Type(), np.uint8))
                shape = tuple(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
                name = (tensor.Name() or b"").decode() or f"buffer {index}"
                tensors[name if name not in tensors else f"{name} ({index})"] = (
                    values.reshape(shape) if shape and int(np.prod(shape)) == values.size else values)
    except Exception as err:  # the flatbuffer reader raises assorted errors on a damaged file
        raise LabkitError(f"{path} is not a readable TFLite file ({err}); convert the model again") from err
    return tensors


def weight_tensors(path: Path) -> list[np.ndarray]:
    """Every constant tensor stored in a .tflite file's buffers, decoded with its dtype."""
    return list(stored_tensors(path).values())


def entropy_bound(path: Path, zipped_bytes: int | None = None) -> dict[str, float]:
    """The ideal size of a .tflite file (weights at their bound, every other byte raw) and its ratio to zip.

    `reached` = ideal / zipped: 1.0 means DEFLATE is at the limit, 0.6 means a perfect coder would be 40 % smaller.
    """
    raw = Path(path).stat().st_size
    tensors = weight_tensors(path)
    weight_bytes = sum(t.nbytes for t in tensors)
    ideal = sum(tensor_bound_bits(t) for t in tensors) / 8 + (raw - weight_bytes)
    result = {"ideal_bytes": float(ideal), "weight_bytes": int(weight_bytes)}
    if zipped_bytes:
        result["reached"] = float(ideal / zipped_bytes)
    return result
