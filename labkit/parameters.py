"""The notebooks' parameters, declared once: name, type, allowed range or choices, default per notebook and meaning.

Every run checks them against this schema before anything trains: `labkit run` checks each notebook's values before
the first notebook starts, and each notebook checks its own in the cell after its `parameters` cell (papermill and
JupyterLab alike). A value that cannot mean anything is refused in one line that names the parameter, the value,
what is allowed and an example; nothing is clamped. `tests/test_parameters.py` keeps the schema and the notebooks'
parameter cells in step. papermill's `-p NAME VALUE` passes text, so lists come with `-y`.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, create_model

from labkit.errors import LabkitError
from labkit.paths import resolve

NOTEBOOKS = ("01_clustering", "02_pruning", "03_structured_pruning", "04_summary")
CLASSES = {"fashion-mnist": 10, "idx": 10, "oxford-pets": 37, "image-folder": 2}  # the fewest a dataset can have
VALIDATION_SHARE = 0.1  # of the training images, held out (labkit.data.splits)
OPTIONS = {"dataset_root": "--dataset-root", "model_path": "--model-path", "input_model": "--input-model",
           "backup_model": "--backup-model", "final_model": "--final-model", "onnx_model": "--onnx-model",
           "tflite_model": "--tflite-model", "test_dataset_fraction": "--test-dataset-fraction"}  # labkit run's own


def _exists(path: str | None) -> str | None:
    if path is not None and not resolve(path).exists():
        raise ValueError(f"{resolve(path)} does not exist")
    return path


def _folder_exists(path: str | None) -> str | None:
    if path is not None and not resolve(path).parent.is_dir():
        raise ValueError(f"its folder {resolve(path).parent} does not exist")
    return path


def _weights(value: str) -> str:
    return value if value in ("imagenet", "none") else _exists(value)


Count = Annotated[int, Field(ge=1)]
Rate = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(gt=0, le=1)]
Sparsity = Annotated[float, Field(gt=0, lt=1)]
Existing = Annotated[str | None, AfterValidator(_exists)]
Output = Annotated[str | None, AfterValidator(_folder_exists)]
KERAS_DATA = Literal["fashion-mnist", "oxford-pets", "image-folder", "idx"]


@dataclass(frozen=True)
class Param:
    """One parameter: its type with its range, its default, its meaning and an example of a good value."""

    kind: Any
    default: Any
    meaning: str
    example: Any = None
    allowed: str = ""  # the range in words, for `labkit run --help` and docs/parameters.md


def _p(kind: Any, default: Any, meaning: str, example: Any = None, allowed: str = "") -> Param:
    return Param(kind, default, meaning, default if example is None else example, allowed)


KERAS = {
    "dataset": _p(KERAS_DATA, "fashion-mnist", "the dataset", allowed="fashion-mnist, oxford-pets, image-folder, idx"),
    "dataset_root": _p(Existing, None, "folder holding the dataset (None: search $LABKIT_DATA, the Debian package, "
                       "the cache)", "data/fashion-mnist", "an existing folder, or None"),
    "download_dataset": _p(bool, False, "fetch the dataset when it is not on disk (needs internet)", allowed="bool"),
    "base_epochs": _p(Count, 6, "epochs of base training (skipped when it is cached in models_dir)", allowed=">= 1"),
    "base_patience": _p(Count | None, None, "None: warm-up, then cosine decay; a number: constant rate, early "
                        "stopping after this many epochs without a gain", 2, ">= 1, or None"),
    "fine_tune_epochs": _p(Count, 3, "most epochs of fine-tuning; each variant stops earlier once it has recovered",
                           allowed=">= 1"),
    "fine_tune_checks": _p(Count, 4, "checks of validation accuracy per epoch of fine-tuning", allowed=">= 1"),
    "fine_tune_patience": _p(Count, 3, "checks without a gain before fine-tuning stops", allowed=">= 1"),
    "learning_rate": _p(Rate, 3e-3, "Adam learning rate of the base model (the peak of its schedule)",
                        allowed="> 0"),
    "fine_tune_learning_rate": _p(Rate, 1e-4, "Adam learning rate of fine-tuning", allowed="> 0"),
    "batch_size": _p(Count, 64, "training batch size", allowed=">= 1"),
    "train_samples": _p(Count | None, None, "training images, 10 % held out for validation (None: all)", 6000,
                        "at least the dataset's classes / 0.9, or None"),
    "fine_tune_samples": _p(Count | None, None, "training images every variant and its control are fine-tuned on "
                            "(None: all)", 6000, ">= 1 and <= train_samples, or None"),
    "test_dataset_fraction": _p(Share, 1.0, "share of the test set used for evaluation", 0.5, "in (0, 1]"),
    "image_size": _p(Annotated[int, Field(ge=32)], 128, "input size of the pet and image-folder images",
                     allowed=">= 32"),
    "model_path": _p(Existing, None, "your Keras classifier (.h5, .keras, SavedModel) as the base instead of "
                     "training one", "my_model.keras", "an existing file or folder, or None"),
    "weights": _p(Annotated[str, AfterValidator(_weights)], "imagenet", "pets backbone: imagenet (downloaded), a "
                  "MobileNetV2 weights file, or none (scratch)", allowed="imagenet, none, or an existing file"),
    "fine_tune_blocks": _p(Annotated[int, Field(ge=0)], 0, "pets: also fine-tune this many top MobileNetV2 blocks",
                           allowed=">= 0"),
    "results_dir": _p(str, "results/fashion-mnist", "where metrics, pictures, models and records go (in "
                      "seed-<seed>/)", allowed="a folder"),
    "models_dir": _p(str, "models", "where trained base models are cached", allowed="a folder"),
    "seed": _p(Annotated[int, Field(ge=0)], 42, "seeds data splits, initialisation and shuffling", allowed=">= 0"),
    "margin_pp": _p(Rate, 1.0, "non-inferiority margin in percentage points", 0.5, "> 0"),
    "micro_samples": _p(Count, 200, "test images each TFLite model runs on under TensorFlow Lite Micro",
                        allowed=">= 1"),
    "force": _p(bool, False, "recompute variants whose records already exist", allowed="bool"),
}
TORCH = {
    **{name: KERAS[name] for name in (
        "dataset_root", "download_dataset", "fine_tune_epochs", "fine_tune_checks", "fine_tune_patience",
        "train_samples", "fine_tune_samples", "test_dataset_fraction", "results_dir", "models_dir", "seed",
        "margin_pp", "micro_samples")},
    "dataset": _p(Literal["fashion-mnist", "idx"], "fashion-mnist", "28×28 grayscale images: fashion-mnist, or idx "
                  "files of that size", allowed="fashion-mnist, idx"),
    "device": _p(Annotated[str, Field(pattern=r"^(cpu|cuda(:\d+)?|mps)$")], "cpu", "where PyTorch trains",
                 allowed="cpu, cuda, cuda:N, mps"),
    "base_learning_rate": _p(Rate, 0.002, "Adam learning rate of the base model: the peak of its cycle",
                             allowed="> 0"),
    "learning_rate": _p(Rate, 0.001, "Adam learning rate of the pruner's training steps and of the control's",
                        allowed="> 0"),
    "fine_tune_learning_rate": _p(Rate, 0.001, "Adam learning rate of fine-tuning", allowed="> 0"),
    "batch_size": _p(Count, 256, "training batch size", allowed=">= 1"),
    "sparsity": _p(Sparsity, 0.5, "share of channels/neurons removed from every pruned layer", allowed="in (0, 1)"),
    "hidden_units": _p(Count, 1024, "width of fc1 in a base trained here", allowed=">= 1"),
    "base_epochs": _p(Count, 4, "epochs of base training (skipped when it is cached in models_dir)", allowed=">= 1"),
    "base_patience": _p(Count | None, None, "None: one learning-rate cycle; a number: constant rate, early stopping",
                        2, ">= 1, or None"),
    "training_batches": _p(Count, 1000, "samples the pruner sees to collect activation statistics",
                           allowed=">= 1"),
    "netron_live": _p(bool, True, "start a live Netron view (needs a running kernel)", allowed="bool"),
    "int8_calibration": _p(Count, 300, "training images that set the INT8 models' activation ranges",
                           allowed=">= 1"),
    "force": _p(bool, False, "redo every stage, even those an earlier run finished", allowed="bool"),
    "input_model": _p(Existing, None, "the course's --input-model: a state dict of the classifier as the base",
                      "model.pt", "an existing file, or None"),
    **{name: _p(Output, None, f"the course's --{name.replace('_', '-')}: also write {what} here", example,
                "a file in an existing folder, or None")
       for name, what, example in (
           ("backup_model", "the pruned model (state dict), before fine-tuning", "out/pruned.pt"),
           ("final_model", "the fine-tuned pruned model (state dict)", "out/final.pt"),
           ("onnx_model", "the fine-tuned pruned model as ONNX", "out/model.onnx"),
           ("tflite_model", "the fine-tuned pruned model as FP32 TensorFlow Lite", "out/model.tflite"))},
    "tp_criteria": _p(list[Literal["magnitude", "taylor"]], ["magnitude", "taylor"], "Torch-Pruning criteria pruned "
                      "to the same sparsity ([]: NNI alone)", allowed="a list of magnitude, taylor"),
}
SCHEMA: dict[str, dict[str, Param]] = {
    "01_clustering": {**KERAS, "clusters": _p(list[Annotated[int, Field(ge=2)]], [2, 4, 8, 16, 32],
                                              "cluster counts to compare", allowed="a list of integers >= 2"),
                      "quantize_int8": _p(bool, True, "also measure the INT8-quantized base", allowed="bool")},
    "02_pruning": {**KERAS, "sparsities": _p(list[Sparsity], [0.2, 0.4, 0.5], "share of each kernel's weights set "
                                             "to zero", allowed="a list of shares in (0, 1)"),
                   "combined": _p(list[float], [0.5, 16], "[sparsity, clusters] of the pruned-then-clustered "
                                  "variant; [] to skip it", allowed="[] or [a share in (0, 1), an integer >= 2]"),
                   "deployed": _p(list[Annotated[str, Field(pattern=r"qat-int8$")]],
                                  ["pruned-0.5-clustered-16-pcqat-int8", "clustered-16-cqat-int8"],
                                  "INT8 variants trained quantization-aware", allowed="a list of names: qat-int8, "
                                  "pruned-<s>-pqat-int8, clustered-<k>-cqat-int8, "
                                  "pruned-<s>-clustered-<k>-pcqat-int8")},
    "03_structured_pruning": TORCH,
    "04_summary": {
        "results_dir": _p(str, "results/fashion-mnist", "where the other notebooks wrote their records",
                          allowed="a folder"),
        "summary_dir": _p(str | None, None, "where the lab summary goes (None: <results_dir>/summary)",
                          allowed="a folder, or None"),
        "seeds": _p(list[Annotated[int, Field(ge=0)]] | None, None, "the seeds to summarise (None: every "
                    "seed-<seed> folder)", [42, 43, 44], "a list of integers >= 0, or None"),
        "models_dir": KERAS["models_dir"],
        "reports": _p(list[str], [], "names of the HTML reports beside the summary (the runner fills this in)",
                      allowed="a list of file names"),
        "executed_on": _p(str, "", "where the seeds ran when not here (the runner fills this in)", allowed="text"),
        "scale": _p(Literal["full", "quick"], "full", "quick: a first look whose verdicts are not the methods'",
                    allowed="full, quick"),
        "margin_pp": KERAS["margin_pp"],
        "boards_file": _p(Existing, None, "a CSV of your own boards (name,chip,sram_kb,flash_kb)", "my_boards.csv",
                          "an existing file, or None"),
    },
}


def _model(notebook: str):
    fields = {name: (p.kind, Field(p.default, description=p.meaning)) for name, p in SCHEMA[notebook].items()}
    return create_model(f"Parameters_{notebook}", __config__=ConfigDict(extra="ignore"), **fields)


def check(notebook: str, values: dict[str, Any]) -> dict[str, Any]:
    """The notebook's parameters from `values` (a job's, or a notebook's globals()), checked against the schema and
    its relations; a bad one is refused in one LabkitError line."""
    if notebook not in SCHEMA:
        raise LabkitError(f"unknown notebook {notebook!r}: one of {', '.join(SCHEMA)}")
    given = {name: values[name] for name in SCHEMA[notebook] if name in values}
    try:
        checked = _model(notebook).model_validate(given).model_dump()
    except ValidationError as err:
        raise _refusal(notebook, err.errors()[0], given) from None
    _relations(notebook, checked)
    return checked


def check_given(values: dict[str, Any]) -> None:
    """Check each value a user gave (options and -p values) against every notebook that takes it, before the data is
    even looked for: a path that does not exist stops the run instead of falling back to a default."""
    for notebook, fields in SCHEMA.items():
        if mine := {name: value for name, value in values.items() if name in fields}:
            check(notebook, mine)


def _refusal(notebook: str, error: dict, given: dict[str, Any]) -> LabkitError:
    name = str(error["loc"][0])
    param, value = SCHEMA[notebook][name], given.get(name)
    reason = error["msg"].removeprefix("Value error, ")
    if isinstance(value, str) and "list" in param.allowed:
        reason += "; papermill's -p passes text, so give lists with -y"
    example = f"{OPTIONS[name]} {param.example}" if name in OPTIONS else f"-p {name}={param.example!r}"
    return LabkitError(f"parameter {name}={value!r} is refused ({reason}): allowed {param.allowed} ({param.meaning}); "
                       f"e.g. {example}")


def _relations(notebook: str, p: dict[str, Any]) -> None:
    """What one value allows of another: enough training images for the classes and the validation split, no more
    fine-tuning images than training images, a valid [sparsity, clusters] pair."""
    if (train := p.get("train_samples")) is not None:
        fewest = math.ceil(CLASSES.get(p["dataset"], 2) / (1 - VALIDATION_SHARE))
        if train < fewest:
            raise LabkitError(f"parameter train_samples={train} is too few for {p['dataset']}: at least {fewest}, so "
                              f"that one image per class trains beside the {VALIDATION_SHARE:.0%} held out for "
                              "validation; e.g. -p train_samples=6000")
        if (tune := p.get("fine_tune_samples")) is not None and tune > train:
            raise LabkitError(f"parameter fine_tune_samples={tune} is more than train_samples={train}: use at most "
                              f"train_samples, e.g. -p fine_tune_samples={train}")
    if (combined := p.get("combined")) and not (len(combined) == 2 and 0 < combined[0] < 1
                                                and combined[1] == int(combined[1]) >= 2):
        raise LabkitError(f"parameter combined={combined!r} is refused: allowed [] or [sparsity in (0, 1), clusters "
                          ">= 2]; e.g. -y \"combined: [0.5, 16]\"")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs; VALUE is a Python literal (300, 0.5, [2, 4], None) or else a string."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise LabkitError(f"parameter {pair!r} is not NAME=VALUE (e.g. -p train_samples=600)")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def rows() -> list[tuple[str, str, str, str, str]]:
    """(name, notebooks, default(s), allowed, meaning) of every parameter, by name."""
    found = []
    for name in sorted({n for fields in SCHEMA.values() for n in fields}):
        where = {nb: fields[name] for nb, fields in SCHEMA.items() if name in fields}
        by_default: dict[str, list[str]] = {}
        for nb, p in where.items():
            by_default.setdefault(repr(p.default), []).append(nb[:2])
        defaults = next(iter(by_default)) if len(by_default) == 1 else " / ".join(
            f"{d} ({', '.join(nbs)})" for d, nbs in by_default.items())
        first = next(iter(where.values()))
        found.append((name, ", ".join(nb[:2] for nb in where), defaults, first.allowed, first.meaning))
    return found


def help_table() -> str:
    """Every parameter as a Markdown table: docs/parameters.md holds it (a test keeps the two the same)."""
    lines = ["| parameter | notebooks | default | allowed | meaning |", "|---|---|---|---|---|"]
    return "\n".join(lines + [f"| `{n}` | {nb} | {d} | {a} | {m} |" for n, nb, d, a, m in rows()])


def help_text() -> str:
    """Every parameter in plain text, for `labkit run --help`."""
    lines = ["notebook parameters (-p NAME=VALUE; notebooks 01–04; default; allowed; meaning):"]
    return "\n".join(lines + [f"  {n:24s} {nb:14s} {d} ({a}): {m}" for n, nb, d, a, m in rows()])
