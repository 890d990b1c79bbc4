"""Collaborative optimization: quantization-aware training that keeps what pruning and clustering made, to INT8.

TFMOT's deployment tree: prune, cluster (keeping the zeros), then train quantization-aware (QAT) so that the INT8
model the device runs loses as little as possible. Plain QAT moves every weight on its own and undoes both the
zeros and the centroids; TFMOT's preserving schemes keep them. Each variant starts from its parent variant's
stripped Keras model, fine-tunes quantization-aware by the same stopping rule as every other variant, is converted
to full-integer INT8 TFLite with a representative dataset, and its file is read back to check what it kept.

| variant | parent | QAT keeps |
|---|---|---|
| `qat-int8` | the base | nothing (plain QAT) |
| `pruned-<s>-pqat-int8` | `pruned-<s>-fp32` | the zeros (PQAT) |
| `clustered-<k>-cqat-int8` | `clustered-<k>-fp32` | the centroids (CQAT) |
| `pruned-<s>-clustered-<k>-pcqat-int8` | `pruned-<s>-clustered-<k>-fp32` | both (PCQAT) |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.deploy import preservation
from labkit.deploy.export import to_int8_tflite
from labkit.errors import LabkitError
from labkit.files import atomic_write_bytes
from labkit.methods import compress
from labkit.records import digest, load_record

if TYPE_CHECKING:  # the names alone are light: the runner reads them and must start fast
    from labkit.methods.experiment import Experiment, FineTuning

CALIBRATION_SAMPLES = 300  # training images that set the INT8 activation ranges, as for post-training INT8
PATTERN = re.compile(r"qat-int8|pruned-(?P<s>-?[\d.]+)-(?:clustered-(?P<ck>-?\d+)-pcqat|pqat)-int8"
                     r"|clustered-(?P<k>-?\d+)-cqat-int8")


@dataclass(frozen=True)
class Deployment:
    """One collaborative-optimization variant: the sparsity and cluster count of its parent (None: not pruned, not
    clustered); what its quantization-aware training keeps follows from them."""

    sparsity: float | None = None
    clusters: int | None = None

    @property
    def keeps(self) -> str:
        """What the QAT scheme keeps (compress.KEEPS)."""
        kept = [word for word, value in (("zeros", self.sparsity), ("centroids", self.clusters)) if value]
        return " and ".join(kept) or "nothing"

    @property
    def parent(self) -> str:
        """The parent variant's name: the base for plain QAT."""
        parts = ([f"pruned-{self.sparsity:g}"] if self.sparsity else []) + (
            [f"clustered-{self.clusters}"] if self.clusters else [])
        return "-".join(parts) + "-fp32" if parts else "base-fp32"

    @property
    def name(self) -> str:
        scheme = {"nothing": "qat", "zeros": "pqat", "centroids": "cqat", "zeros and centroids": "pcqat"}[self.keeps]
        return f"{self.parent.removesuffix('-fp32')}-{scheme}-int8" if self.sparsity or self.clusters else "qat-int8"


def parse(name: str) -> Deployment:
    """The deployment a variant name stands for; a LabkitError naming the four forms for any other name."""
    if not (m := PATTERN.fullmatch(name)):
        raise LabkitError(f"{name!r} is not a collaborative-optimization variant: use qat-int8, pruned-<s>-pqat-int8, "
                          "clustered-<k>-cqat-int8 or pruned-<s>-clustered-<k>-pcqat-int8")
    clusters = m["ck"] or m["k"]
    return Deployment(compress.check_sparsity(float(m["s"])) if m["s"] else None,
                      compress.check_clusters(int(clusters)) if clusters else None)


def is_deployment(name: str) -> bool:
    return PATTERN.fullmatch(name) is not None


def parent_variant(exp: Experiment, base, how: Deployment, ref: dict, control: dict, tuning: FineTuning,
                   force: bool = False) -> dict[str, Any]:
    """The parent's record, made if this run has not made it yet (a finished one is read, not made again)."""
    from labkit.methods import experiment

    if how.sparsity and how.clusters:
        return experiment.pruned_clustered_variant(exp, base, how.sparsity, how.clusters, ref, control, tuning, force)
    if how.sparsity:
        return experiment.pruned_variant(exp, base, how.sparsity, ref, control, tuning, force)
    if how.clusters:
        return experiment.clustered_variant(exp, base, how.clusters, ref, control, tuning, force)
    return ref


def parent_model(exp: Experiment, base, how: Deployment, ref: dict, control: dict, tuning: FineTuning):
    """The parent's record and its stripped Keras model. A record made before parents' models were kept beside
    their records is made once more, to have the model."""
    from labkit.methods import experiment

    parent = parent_variant(exp, base, how, ref, control, tuning)
    if parent is ref:
        return parent, base
    return experiment.with_kept_model(exp, parent,
                                      lambda: parent_variant(exp, base, how, ref, control, tuning, force=True))


def params(how: Deployment, parent: dict, tuning: FineTuning) -> dict[str, Any]:
    """The settings a deployment variant's record keeps (and its key names): its parent's, what QAT keeps, the
    fine-tuning and the calibration."""
    return {"parent": parent["name"], "parent_key": digest(parent["key"]), "keeps": how.keeps,
            "sparsity": how.sparsity, "clusters": how.clusters, **tuning.params(),
            "calibration_samples": CALIBRATION_SAMPLES}


def variant(exp: Experiment, base, name: str, ref: dict, control: dict, tuning: FineTuning,
            force: bool = False) -> dict[str, Any]:
    """Train a copy of the parent quantization-aware (keeping what its scheme keeps) to recovery, convert it to
    full-integer INT8 TFLite and measure it (`measure`)."""
    from labkit.methods import experiment

    how = parse(name)
    parent, model = parent_model(exp, base, how, ref, control, tuning)
    if record := load_record(exp.results_dir, name, exp.context.key(params(how, parent, tuning), control), force):
        return record
    experiment.check_budget(control, tuning)
    qat = compress.quantize_aware(model, how.keeps)
    compress.calibrate(qat, exp.x_train[:CALIBRATION_SAMPLES])
    before = experiment.accuracy_now(exp, qat)
    curve = experiment.fine_tune(qat, exp, tuning, desc=f"{name}: quantization-aware training")
    return measure(exp, name, qat, parent, ref, control, tuning, before, curve.as_record(), force=True)


def measure(exp: Experiment, name: str, qat, parent: dict, ref: dict, control: dict, tuning: FineTuning,
            before: float, fine_tuned: dict[str, Any], force: bool = False,
            flatbuffer: bytes | None = None) -> dict[str, Any]:
    """Convert a quantization-aware trained model to full-integer INT8 TFLite (or take its `flatbuffer`, converted
    in a notebook cell), check what the file kept of its parent's compression, and evaluate it against the control
    after as many steps as the parent's fine-tuning and `fine_tuned` (its recovery curve) together. A finished
    record with the same key is returned as it is."""
    from labkit.methods import experiment
    from labkit.results.evaluate import evaluate_variant

    how = parse(name)
    settings = params(how, parent, tuning)
    key = exp.context.key(settings, control)
    if record := load_record(exp.results_dir, name, key, force):
        return record
    path = exp.results_dir / f"{name}.tflite"
    if flatbuffer is None:
        to_int8_tflite(qat, exp.x_train[:CALIBRATION_SAMPLES], path)
    else:
        atomic_write_bytes(path, flatbuffer)
    earlier = parent.get("fine_tuning") or {"steps": 0, "still_recovering": False}
    steps = {"steps": earlier["steps"] + fine_tuned["steps"],
             "still_recovering": earlier["still_recovering"] or fine_tuned["still_recovering"],
             "parent": earlier, "quantization_aware": fine_tuned}
    paired = experiment.control_at(exp, ref, control, steps["steps"])
    return evaluate_variant(name, path, exp.x_test, exp.y_test, exp.data.class_names, exp.results_dir, ref,
                            settings, extra={"dataset": exp.data.describe(), "accuracy_before_fine_tuning": before,
                                             "fine_tuning": steps, "preservation": preserved(path, how, parent)},
                            control=paired["name"], key=key)


def preserved(path: Path, how: Deployment, parent: dict) -> dict[str, Any]:
    """What the INT8 file kept of its parent's compression: per compressed kernel, the most distinct values in a
    channel and the share of zeros, and what it lost (empty when it kept all)."""
    compressed = list(parent.get("kernels") or {}) or None
    kernels = preservation.figures(path)
    return {"kernels": kernels, "compressed_layers": compressed,
            "lost": preservation.lost(kernels, how.clusters, how.sparsity, only=compressed)}
