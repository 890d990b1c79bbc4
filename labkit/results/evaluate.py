"""Measuring one lab variant end to end and keeping its record (see labkit.records for the record's key).

A variant's JSON record is written last: if it exists, every file of the variant is complete.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from labkit.deploy import size, tflite
from labkit.files import atomic_write_bytes, write_json
from labkit.records import record_path
from labkit.results import stats
from labkit.results.metrics import classification_metrics, confusion_matrix, write_metrics


def method_of(name: str) -> str:
    """The compression method a variant name stands for, in the course's naming."""
    if name.endswith("qat-int8"):  # collaborative optimization: QAT after what the name says came before it
        return "+".join([m for m, word in (("pruning", "pruned-"), ("clustering", "clustered-")) if word in name]
                        + ["QAT"])
    if name.startswith(("structured-", "tp-")) and name.endswith("-int8"):
        return "structured pruning+INT8"
    if name.startswith("pruned-") and "-clustered-" in name:
        return "pruning+clustering"
    methods = (("base", "none"), ("torch-", "none"), ("control-", "none"), ("clustered-", "clustering"),
               ("pruned-", "pruning"), ("quantized-", "quantization"), ("structured-", "structured pruning"),
               ("tp-", "structured pruning"))
    for prefix, method in methods:
        if name.startswith(prefix):
            return method
    return "other"


def predictions_path(results_dir: Path, name: str) -> Path:
    return Path(results_dir) / f"{name}-predictions.npz"


def write_predictions(results_dir: Path, name: str, predicted: np.ndarray, labels: np.ndarray) -> Path:
    """Keep the predicted class of every test image: paired comparisons between variants need them."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, predicted=predicted.astype(np.int16), labels=labels.astype(np.int16))
    return atomic_write_bytes(predictions_path(results_dir, name), buffer.getvalue())


def load_correct(results_dir: Path, name: str) -> np.ndarray:
    """Per test image, whether variant `name` classified it correctly."""
    return _load(results_dir, name)[0]


def _load(results_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per test image, whether variant `name` got it right, and its label."""
    with np.load(predictions_path(results_dir, name)) as saved:
        return saved["predicted"] == saved["labels"], saved["labels"]


def versus(results_dir: Path, name: str, control: str) -> dict[str, Any]:
    """Variant `name` against `control` on the same test images: the accuracy difference with a 95 % paired
    bootstrap interval, and the exact McNemar p-value (uncorrected: correct it over the variants compared)."""
    ours, theirs = load_correct(results_dir, name), load_correct(results_dir, control)
    return {"control": control, **stats.paired_delta(ours, theirs), **stats.mcnemar_test(ours, theirs)}


def over_seeds(pairs: list[tuple[Path, str, str]]) -> dict[str, Any]:
    """One comparison repeated over seeds, a (seed folder, variant, other) triple per seed: the interval over the
    seeds of the paired per-image differences (stats.seed_interval), with the seeds' shared test-set error counted
    when every seed was tested on the same images (the same labels in the same order)."""
    differences, labels = [], []
    for folder, name, other in pairs:
        (ours, seen), (theirs, _) = _load(folder, name), _load(folder, other)
        differences.append(ours.astype(np.int8) - theirs.astype(np.int8))
        labels.append(seen)
    same = all(np.array_equal(labels[0], other) for other in labels[1:])
    return stats.seed_interval(differences, same_images=same)


def evaluate_variant(name: str, tflite_path: Path, x_test: np.ndarray, y_test: np.ndarray, class_names: list[str],
                     results_dir: Path, reference: dict[str, Any] | None = None,
                     params: dict[str, Any] | None = None, kernels: dict[str, Any] | None = None,
                     extra: dict[str, Any] | None = None, control: str | None = None,
                     key: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate a .tflite variant on the test set and write its metrics, picture, zip and JSON record.

    `reference` is the FP32 base record: sizes are compared against it. `control` names the variant with the
    same training budget and no compression, whose predictions the accuracy is compared with image by image.
    `extra` adds method-specific fields to the record (the stages of structured pruning). `key` is what made the
    record (labkit.records): a later run reuses the record only when its key is the same.
    """
    results_dir = Path(results_dir)
    start = time.perf_counter()
    scores = tflite.predict(tflite.load(tflite_path, num_threads=tflite.all_cores()), x_test)
    eval_seconds = time.perf_counter() - start
    values = classification_metrics(y_test, scores)
    cm = confusion_matrix(y_test, scores.argmax(axis=1), len(class_names))
    files = [*write_metrics(results_dir / name, name, values, cm, class_names),
             write_predictions(results_dir, name, scores.argmax(axis=1), y_test)]
    sizes = size.deflation(tflite_path, reference["size"]["zipped_bytes"] if reference else None)
    sizes.update(size.entropy_bound(tflite_path, sizes["zipped_bytes"]))
    sizes["times_smaller_raw"] = (reference["size"]["raw_bytes"] if reference else sizes["raw_bytes"]) / sizes[
        "zipped_bytes"]
    record = {
        "name": name, "method": method_of(name), "params": params or {},
        "metrics": values,
        "accuracy_interval": stats.accuracy_interval(int(round(values["accuracy"] * len(y_test))), len(y_test)),
        "accuracy_change_pp": 100 * (values["accuracy"] - reference["metrics"]["accuracy"]) if reference else 0.0,
        "vs_control": versus(results_dir, name, control) if control else None,
        "size": sizes,
        "latency": tflite.latency(tflite.load(tflite_path), x_test[0]),
        "eval_seconds": eval_seconds, "test_samples": len(y_test),
        "kernels": kernels or {},
        "files": [p.name for p in (*files, Path(tflite_path), Path(str(tflite_path) + ".zip"))],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
        "key": key,
    }
    write_json(record_path(results_dir, name), record)
    return record
