"""The software stack of the lab, imported in one process: the only proof the pinned set is sound.

`pip check` can report no broken requirements while a package fails to import (an unpinned
ai-edge-torch once pulled a torch-xla that did), so the check imports what the notebooks use.
"""

from __future__ import annotations

import importlib
from importlib import metadata

MODULES = [
    "tensorflow", "tf_keras", "tensorflow_model_optimization", "torch", "nni", "torch_pruning", "litert_torch",
    "onnx", "onnxruntime", "ai_edge_litert", "netron", "papermill", "nbconvert", "seaborn", "sklearn", "statsmodels",
    "ray", "mlflow", "sphinx", "myst_nb", "sphinx_book_theme",
]


def check_stack() -> dict[str, str]:
    """Import every package of the lab, the legacy NNI classes and Torch-Pruning's pruner and criteria; return
    {module: version}."""
    import labkit  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

    versions = {}
    for name in MODULES:
        module = importlib.import_module(name)
        versions[name] = getattr(module, "__version__", "?")
    import tensorflow as tf
    from nni.compression.pytorch.pruning import ActivationAPoZRankPruner  # noqa: F401
    from nni.compression.pytorch.speedup import ModelSpeedup  # noqa: F401
    from torch_pruning.pruner import BasePruner  # noqa: F401
    from torch_pruning.pruner.importance import GroupMagnitudeImportance, GroupTaylorImportance  # noqa: F401

    versions["torch_pruning"] = metadata.version("torch-pruning")  # the 1.6.1 wheel's __version__ says 1.6.0
    try:  # TensorFlow Lite for Microcontrollers: its wheels exist for Linux x86_64 only
        metadata.version("tflite-micro")
        versions["tflite_micro"] = importlib.import_module("tflite_micro").__version__
    except metadata.PackageNotFoundError:
        pass

    if "tf_keras" not in tf.keras.__name__:
        raise RuntimeError(f"tf.keras is {tf.keras.__name__}, not Keras 2: set TF_USE_LEGACY_KERAS=1 first")
    return versions
