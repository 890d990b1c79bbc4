"""A result's record and its key: what made it, so that a record is reused only by a run that would make the same one.

The key names the data (kind and checksum of its files), the selection (training samples, validation and test fractions,
image size, grayscale), the seed, the base model (a checksum of its weights, whether trained here or given by the user),
the variant's own settings and fine-tuning budget, the control it was compared with, and the versions of the libraries
that shape the numbers (and TensorFlow's kernels). A run that finds a record with another key, or with none (an older
labkit's), recomputes it and says in one line what differed, as Snakemake and DVC rerun a step whose inputs changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from labkit.errors import LabkitError
from labkit.files import read_json
from labkit.paths import ROOT, shown

Record = dict[str, Any]
KERAS = ("tensorflow", "tensorflow kernels", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert")
TORCH = ("torch", "nni", "torch-pruning", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert")
STALE = "recomputing "  # how the line that reports a stale record starts: the runner relays these lines


def tensorflow_kernels() -> str:
    """Which kernels TensorFlow's CPU ops run, "oneDNN" or "Eigen": they sum in different orders, so a model
    trained with one differs in its last bits from one trained with the other, and records name them. TensorFlow
    reads TF_ENABLE_ONEDNN_OPTS once (labkit sets 0 unless it is set); a process that has not imported it reads
    the variable as TensorFlow would (oneDNN only in its x86 builds)."""
    if "tensorflow" in sys.modules:
        from tensorflow.python.util import _pywrap_util_port

        return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"
    on = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() in ("1", "true")
    return "oneDNN" if on and platform.machine().lower() in ("x86_64", "amd64") else "Eigen"


SETTINGS = {"tensorflow kernels": tensorflow_kernels}  # what shapes the numbers beside the libraries' versions


def versions(libraries: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each library (read from its metadata, nothing imported), and each of SETTINGS."""
    found = {}
    for name in libraries:
        try:
            found[name] = SETTINGS[name]() if name in SETTINGS else metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (a SavedModel) with their relative paths."""
    path, digest = Path(path), hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []:
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def file_identity(path: str | Path, source: str) -> dict[str, str]:
    """A model file as a key names it: where it came from, its name (relative to the project when inside it; never
    a path of this machine) and its checksum."""
    path = Path(path).resolve()
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    return {"source": source, "file": name, "sha256": sha256_of(path)}


def fine_tune_count(fine_tune_samples: int | None, train: int) -> int:
    """How many of the `train` training images fine-tune each variant and its control: `fine_tune_samples` of them
    (None: all)."""
    if fine_tune_samples is not None and fine_tune_samples < 1:
        raise LabkitError(f"fine_tune_samples {fine_tune_samples} must be at least 1 (or None for all the training "
                          "images)")
    return min(fine_tune_samples or train, train)


def selection(train_samples: int | None, validation_fraction: float, test_fraction: float, x_train: np.ndarray,
              x_val: np.ndarray, x_test: np.ndarray, fine_tune_samples: int | None = None) -> dict[str, Any]:
    """The part of the data a run used, as asked for and as it came out (image size, grayscale, counts; `fine_tune`
    counts the training images the variants and their controls were fine-tuned on, the base trained on all)."""
    return {"train_samples": train_samples, "validation_fraction": validation_fraction, "test_fraction": test_fraction,
            "fine_tune_samples": fine_tune_samples, "image_size": list(x_train.shape[1:3]),
            "grayscale": x_train.ndim == 3 or x_train.shape[-1] == 1, "train": len(x_train),
            "fine_tune": fine_tune_count(fine_tune_samples, len(x_train)), "validation": len(x_val),
            "test": len(x_test)}


def context(data: Any, seed: int, libraries: tuple[str, ...], train_samples: int | None, test_fraction: float,
            validation_fraction: float, x_train: np.ndarray, x_val: np.ndarray, x_test: np.ndarray,
            fine_tune_samples: int | None = None) -> Context:
    """The context of a run on a loaded dataset (a labkit.data.Dataset) and its splits; the base comes later."""
    chosen = selection(train_samples, validation_fraction, test_fraction, x_train, x_val, x_test, fine_tune_samples)
    return Context(data.descriptor.identity(), chosen, seed, libraries)


def plain(value: Any) -> Any:
    """A value in the form it has after a JSON round trip (lists for tuples, Python numbers), so keys compare."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def digest(key: dict[str, Any]) -> str:
    """A short fingerprint of a key."""
    return hashlib.sha256(json.dumps(plain(key), sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(record: Record) -> str:
    """A record's fingerprint as its file holds it: without the TFLM measurement load_records attaches ("micro"), so
    a record read either way is the same record (MLflow runs are found by it)."""
    return digest({k: v for k, v in record.items() if k != "micro"})


@dataclass
class Context:
    """What every record of one run shares: the data, the selection, the seed, the libraries, and the base model
    once it is known (`base`, a file_identity)."""

    dataset: dict[str, Any]
    selection: dict[str, Any]
    seed: int
    libraries: tuple[str, ...]
    base: dict[str, str] = field(default_factory=dict)

    def key(self, variant: dict[str, Any], control: Record | None = None) -> dict[str, Any]:
        """The key of a record made in this run with the variant's own settings, compared with `control`."""
        key = {"dataset": self.dataset, "selection": self.selection, "seed": self.seed, "base": self.base,
               "variant": variant, "versions": versions(self.libraries)}
        if control is not None:
            key["control"] = {"name": control["name"], "key": digest(control["key"])}
        return plain(key)

    def made(self, record: Record | None) -> bool:
        """Whether a record comes from this run's data, selection, seed, base and libraries (its own settings
        aside)."""
        key = (record or {}).get("key") or {}
        return all(key.get(part) == plain(value) for part, value in self.key({}).items() if part != "variant")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for name, item in value.items() for k, v in _flat(item, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): value}


def _short(value: Any) -> str:
    """Checksums cut to their first ten digits; everything else as it is."""
    return f"{value[:10]}…" if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{16,}", value) else str(value)


def differences(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """What differs between two keys, e.g. "selection.train_samples 600 → 3000; base.sha256 3f2a1c…→ 9b7d0e…"."""
    if not old:
        return "made by an older labkit, without a key"
    before, after = _flat(old), _flat(new)
    changed = [name for name in dict.fromkeys([*after, *before]) if before.get(name) != after.get(name)]
    return "; ".join(f"{name} {_short(before.get(name, '–'))} → {_short(after.get(name, '–'))}" for name in changed)


def record_path(results_dir: Path, name: str) -> Path:
    return Path(results_dir) / f"{name}.json"


def read_record(results_dir: Path, name: str) -> Record | None:
    """The record of `name` as it is on disk, whatever made it (None when there is none)."""
    path = record_path(results_dir, name)
    return read_json(path) if path.is_file() else None


def load_record(results_dir: Path, name: str, key: dict[str, Any], force: bool = False, log=print) -> Record | None:
    """The finished record of `name` when it was made with exactly this key; else None, so it is computed again.

    A record made with another key, or an older one without a key, is stale: one line says what differed.
    """
    record = None if force else read_record(results_dir, name)
    if record is None or record.get("key") == key:
        return record
    log(f"{STALE}{name} ({Path(results_dir).name}): {differences(record.get('key'), key)}")
    return None


# The lab's methods in the order its tables and pictures show them (labkit.results.evaluate.method_of names them)
METHODS = ["none", "quantization", "clustering", "pruning", "pruning+clustering", "QAT", "clustering+QAT",
           "pruning+QAT", "pruning+clustering+QAT", "structured pruning", "structured pruning+INT8"]


def micro_path(results_dir: Path, name: str) -> Path:
    """Where a variant's TFLM measurement is kept (labkit.deploy.micro), beside its record."""
    return Path(results_dir) / f"{name}-micro.json"


def load_records(results_dir: Path) -> list[Record]:
    """Every variant record in a results folder, base first, then by method and name; each with its TFLM
    measurement as "micro" when it has one."""
    records = [read_json(p) for p in sorted(Path(results_dir).glob("*.json"))]
    records = [r for r in records if "name" in r and "metrics" in r]
    for r in records:
        if (micro := micro_path(results_dir, r["name"])).is_file():
            r["micro"] = read_json(micro)
    return sorted(records, key=lambda r: (METHODS.index(r["method"]) if r["method"] in METHODS else 99,
                                          r["params"].get("clusters") or 0, r["params"].get("sparsity") or 0,
                                          r["name"]))


def made_by(record: Record, seeds: list[int] | None = None) -> dict[str, str]:
    """What made a record, in words, one row each: data, selection, seed(s), base model and libraries."""
    key = record["key"]
    data, chosen, base = key["dataset"], key["selection"], key["base"]
    asked = "all" if chosen["train_samples"] is None else f"{chosen['train_samples']:,}"
    tuned = chosen.get("fine_tune", chosen["train"])
    tuned = f"; variants and controls fine-tuned on {tuned:,} of the training images" if tuned < chosen["train"] else ""
    colour = "grayscale" if chosen["grayscale"] else "RGB"
    source = {"trained here": "trained here", "--model-path": "your model (--model-path)",
              "--input-model": "your state dict (--input-model)"}[base["source"]]
    several = seeds and len(seeds) > 1
    return {
        "data": f"{data['name']}: {data['files']} files, {data['classes']} classes, sha256 {_short(data['sha256'])}",
        "selection": f"{chosen['train']:,} training and {chosen['validation']:,} validation images (train_samples "
                     f"{asked}, {chosen['validation_fraction']:.0%} held out){tuned}; {chosen['test']:,} test images "
                     f"({chosen['test_fraction']:.0%} of the test set); {'×'.join(map(str, chosen['image_size']))} "
                     f"{colour}",
        "seed": ", ".join(map(str, seeds)) if seeds else str(key["seed"]),
        "base": f"{source}: {base['file']}, sha256 {_short(base['sha256'])}"
                + (f" (seed {key['seed']}; each seed has its own)" if several and base["source"] == "trained here"
                   else ""),
        "libraries": ", ".join(f"{name} {version}" for name, version in key["versions"].items()),
    }


def family(record: Record) -> str:
    """Which base a record was made from: "torch" (the course's PyTorch classifier) or "keras"."""
    torch = record["method"].startswith("structured pruning") or record["name"].startswith("torch-")
    return "torch" if torch else "keras"


def _shared(key: dict[str, Any], parts: tuple[str, ...] = ("dataset", "selection", "seed", "base", "versions")
            ) -> dict[str, Any]:
    return {part: key.get(part) for part in parts}


def check_one_run(results_dir: Path, found: list[Record]) -> None:
    """The records of one seed's folder may be combined: every one has a key, those of each base come from the same
    data, selection, seed, base and libraries, and each was compared with the control record as it is now. Else a
    one-line LabkitError names the records and the fix."""
    where, fix = shown(results_dir), "or give each run its own --results-path"
    if old := [r["name"] for r in found if not r.get("key")]:
        raise LabkitError(f"{where}: {', '.join(old)} were made by an older labkit, without a key: run them again "
                          f"(`python -m labkit run --tasks ...` with this run's settings) {fix}")
    named = {r["name"]: r for r in found}
    for kind, base in (("keras", "base-fp32"), ("torch", "torch-base-fp32")):
        group = [r for r in found if family(r) == kind]
        anchor = named.get(base) or (group[0] if group else None)
        if odd := [r for r in group if _shared(r["key"]) != _shared(anchor["key"])]:
            what = differences(_shared(anchor["key"]), _shared(odd[0]["key"]))
            raise LabkitError(f"{where} mixes runs: {', '.join(r['name'] for r in odd)} made from other data or "
                              f"another base than {anchor['name']} ({what}): run {'them' if len(odd) > 1 else 'it'} "
                              f"again with this run's settings {fix}")
    for r in found:
        control = r["key"].get("control")
        if control and digest(named.get(control["name"], {}).get("key") or {}) != control["key"]:
            raise LabkitError(f"{where}: {r['name']} was compared with another {control['name']} than the one in "
                              f"the folder now: run it again with this run's settings {fix}")


def check_across_seeds(runs: dict[int, list[Record]]) -> None:
    """Seeds may be combined when only the seed (and the base each seed trained) differs: same data, selection,
    libraries and kind of base. Else a one-line LabkitError names the seeds and what differed."""
    parts = ("dataset", "selection", "versions")
    firsts = {seed: {r["name"]: r["key"] for r in found} for seed, found in runs.items()}
    seeds = sorted(firsts)
    for seed in seeds[1:]:
        for name in set(firsts[seed]) & set(firsts[seeds[0]]):
            ours, theirs = firsts[seeds[0]][name], firsts[seed][name]
            if _shared(ours, parts) != _shared(theirs, parts) or ours["base"]["source"] != theirs["base"]["source"]:
                mine = {**_shared(ours, parts), "base.source": ours["base"]["source"]}
                other = {**_shared(theirs, parts), "base.source": theirs["base"]["source"]}
                raise LabkitError(f"seeds {seeds[0]} and {seed} of the summary come from different runs ({name}: "
                                  f"{differences(mine, other)}): summarise them apart (--seeds) or run them again "
                                  "with the same settings")
