"""NNI structured pruning (legacy v2 API of NNI 2.10.1): ActivationAPoZRank masks, then ModelSpeedup.

APoZ (average percentage of zeros) ranks output channels by how often their ReLU output is zero;
the pruner masks the least active ones, and ModelSpeedup rebuilds the layers without them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labkit.deploy import onnxrt
from labkit.deploy.export import int8_parity, tflite_to_int8, torch_to_tflite
from labkit.deploy.size import deflation
from labkit.files import atomic_copy, read_json, write_json
from labkit.models import recovery, torch_models
from labkit.records import STALE, Context, Record, differences, load_record, read_record
from labkit.results.evaluate import evaluate_variant

STAGES = ("base", "pruned", "fine-tuned", "control", "exported")


def make_trainer(loader, max_samples: int):
    """The pruner's trainer(model, optimizer, criterion): trains on at most `max_samples` samples.

    NNI's `training_batches` counts samples, not batches (its hook adds the batch size per call),
    so the trainer stops once that many have been seen.
    """
    def trainer(model: nn.Module, optimizer: torch.optim.Optimizer, criterion) -> None:
        torch_models.train(model, loader, optimizer, criterion, max_samples=max_samples, desc="APoZ statistics")

    return trainer


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Collect what NNI logs (INFO and up) while the block runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("nni")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def flops_and_params(model: nn.Module, dummy_input: torch.Tensor) -> tuple[int, int]:
    """Multiply-accumulate count and parameter count of one forward pass (NNI's counter)."""
    from nni.compression.pytorch.utils import count_flops_params

    flops, params, _ = count_flops_params(model, dummy_input, verbose=False)
    return int(flops), int(params)


def measure_torch(model: nn.Module, x: np.ndarray, y: np.ndarray, dummy_input: torch.Tensor) -> dict[str, Any]:
    """A PyTorch stage: test accuracy, batch-1 latency, parameters, FLOPs and layer shapes."""
    from labkit.data import torch_loader

    scores, labels = torch_models.predict(model, torch_loader(x, y, batch_size=256))
    flops, params = flops_and_params(model, dummy_input)
    return {"runtime": "PyTorch", "accuracy": float((scores.argmax(1) == labels).mean()),
            "latency": torch_models.latency(model, dummy_input), "parameters": params, "flops": flops,
            "shapes": torch_models.shapes(model)}


def measure_onnx(path: Path, x_nchw: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """An ONNX Runtime stage: test accuracy, batch-1 latency, file and zipped size."""
    session = onnxrt.load(path)
    scores = onnxrt.predict(session, x_nchw)
    return {"runtime": "ONNX Runtime", "accuracy": float((scores.argmax(1) == y).mean()),
            "latency": onnxrt.latency(session, x_nchw[0]), **deflation(path)}


def tflite_stage(record: dict[str, Any]) -> dict[str, Any]:
    """The TFLite stage of a structured-pruning run, taken from the variant record of its .tflite file."""
    return {"runtime": "TFLite", "accuracy": record["metrics"]["accuracy"], "latency": record["latency"],
            "raw_bytes": record["size"]["raw_bytes"], "zipped_bytes": record["size"]["zipped_bytes"]}


def control_at(control: Record, steps: int, kept: torch_models.Snapshots, base_weights: dict[str, torch.Tensor],
               dummy_input: torch.Tensor, context: Context, test: tuple[np.ndarray, np.ndarray, list[str]],
               reference: Record, force: bool = False) -> Record:
    """The control after `steps` steps of its fine-tuning (its weights kept there), exported to FP32 TFLite and
    measured on the `test` images (NCHW, labels, class names) like a variant: what a pruned model that kept the
    weights of that step is compared with. The control's own record when that is its best check."""
    name, params = recovery.paired_name(control, steps), {"steps": steps}
    if name == control["name"]:
        return control
    key, results_dir = context.key(params, control), kept.folder.parent
    if record := load_record(results_dir, name, key, force):
        return record
    net = kept.load_into(torch_models.FashionClassifier.from_state(base_weights), steps).eval()
    path = torch_to_tflite(net, dummy_input, results_dir / f"{name}.tflite")
    x, y, class_names = test
    return evaluate_variant(name, path, x, y, class_names, results_dir, reference, params, key=key)


def int8_variant(fp32: Record, results_dir: Path, calibration: np.ndarray,
                 test: tuple[np.ndarray, np.ndarray, list[str]], reference: Record, context: Context,
                 control: Record | None = None, force: bool = False) -> Record:
    """The full-integer INT8 twin of an FP32 record of this notebook (a pruned model or a control): its TFLite file
    quantized with ai-edge-quantizer's static recipe on the `calibration` images (NCHW), checked against the FP32
    file at INT8's tolerance (export.int8_parity) and measured on the `test` images like a variant, compared with
    `control`, the INT8 twin of its own control. The name swaps "-fp32" for "-int8" (or adds it)."""
    name = fp32["name"].removesuffix("-fp32") + "-int8"
    params = {**fp32["params"], "int8": "ai-edge-quantizer static_wi8_ai8", "calibration_images": len(calibration)}
    key = context.key(params, control)
    if record := load_record(results_dir, name, key, force):
        return record
    source = Path(results_dir) / next(f for f in fp32["files"] if f.endswith(".tflite"))
    path = tflite_to_int8(source, calibration, Path(results_dir) / f"{name}.tflite")
    x, y, class_names = test
    extra = {"parity": int8_parity(source, path, x[:64]), "int8_of": fp32["name"]}
    return evaluate_variant(name, path, x, y, class_names, results_dir, reference, params, extra=extra,
                            control=control["name"] if control else None, key=key)


def int8_twins(variants: list[Record], results_dir: Path, calibration: np.ndarray,
               test: tuple[np.ndarray, np.ndarray, list[str]], reference: Record, context: Context,
               force: bool = False) -> list[Record]:
    """The INT8 twins (`int8_variant`) of the controls the FP32 variants were compared with, then of the variants,
    each compared with its control's twin."""
    twins: dict[str, Record] = {}
    for fp32 in variants:
        control = fp32["vs_control"]["control"]
        if control not in twins:
            twins[control] = int8_variant(read_record(results_dir, control), results_dir, calibration, test,
                                          reference, context, force=force)
        twins[fp32["name"]] = int8_variant(fp32, results_dir, calibration, test, reference, context, twins[control],
                                           force)
    return list(twins.values())


class Checkpoints:
    """The finished stages of one structured-pruning run, kept beside its results so a stopped run resumes.

    Stages: base (measured), pruned (masked and sped up), fine-tuned, control (the base trained as long as the
    pruned model, without pruning), exported (ONNX and TFLite written).
    A stage's model is saved as a state dict first and the stage is listed in `<name>-checkpoints.json`
    last, both atomically: a listed stage is complete. Stages kept under another key (other data, base, settings
    or libraries: see labkit.records) are not reused; one line says what differed. `force` starts from nothing.
    """

    def __init__(self, results_dir: Path, name: str, key: dict[str, Any], force: bool = False, log=print):
        self.results_dir, self.name, self.key = Path(results_dir), name, key
        self.path = self.results_dir / f"{name}-checkpoints.json"
        state = {} if force or not self.path.is_file() else read_json(self.path)
        if state and state.get("key") != key:
            log(f"{STALE}{name} stages ({self.results_dir.name}): {differences(state.get('key'), key)}")
            state = {}
        self.done_stages: list[str] = state.get("done", [])
        self.measured: dict[str, dict[str, Any]] = state.get("measured", {})

    def done(self, stage: str) -> bool:
        """Whether `stage` finished in this or an earlier run."""
        return stage in self.done_stages

    def model_path(self, stage: str) -> Path:
        return self.results_dir / f"{self.name}-{stage}.pt"

    def save(self, stage: str, model: nn.Module | None = None, measured: dict[str, Any] | None = None) -> None:
        """Mark `stage` done, keeping its model (state dict) and what was measured of it."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
        if model is not None:
            torch_models.save_state(model, self.model_path(stage))
        if measured is not None:
            self.measured[stage] = measured
        self.done_stages = [s for s in STAGES if s in self.done_stages or s == stage]
        write_json(self.path, {"done": self.done_stages, "measured": self.measured, "key": self.key})

    def copy_to(self, stage: str, path: str | Path | None) -> Path | None:
        """Write the model saved at `stage` also where the user named it (the course's --backup-model and
        --final-model), atomically; nothing when path is None."""
        return atomic_copy(self.model_path(stage), path)

    def load(self, stage: str) -> nn.Module:
        """The model saved at `stage`, rebuilt with its (pruned) layer widths, in evaluation mode."""
        state = torch.load(self.model_path(stage), map_location="cpu", weights_only=True)
        return torch_models.FashionClassifier.from_state(state).eval()
