"""Quiet output: the lab's libraries print harmless lines at start-up and on some calls; each is silenced where it
comes from, so notebooks and reports show the lab, not library noise.

- Environment variables, for what reads them: TensorFlow's C++ log level, litert-torch's
  progress, MLflow's link to every run it ends.
- Logger levels, for Python loggers that warn about their own internals (torchao's optional CUDA kernels, torch's
  pytree deprecation, NNI's notice that its v2 API, the course's, will go in v3, MLflow's new store's tables).
- Warning filters that name the message and the module that warns, never a blanket ignore.
- Native stderr closed around the few calls whose C++ lines no setting reaches: importing TensorFlow (absl's "before
  InitializeLog" notices: oneDNN's "slightly different numerical results", the CUDA probe), the TFLite interpreter's
  XNNPACK notice and the INT8 converter's summary. Errors still reach the user: they are Python exceptions, not stderr
  lines.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from types import ModuleType

ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3",
               "LITERT_TORCH_SHOW_PROGRESS": "n",  # litert-torch logs every step of a conversion
               "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}  # MLflow's emoji link to every run it ends
LOGGERS = ["torchao", "torch.utils._pytree", "nni.algorithms.compression.v2.pytorch.pruning.basic_pruner", "absl",
           "mlflow.store.db.utils"]  # MLflow: "Creating initial MLflow database tables..." in a new store
WARNINGS = [  # (message regex, category, module regex of the code that warns)
    (r"Statistics for quantized inputs were expected", UserWarning, r"tensorflow\.lite"),
    (r"The \.grad attribute of a Tensor that is not a leaf Tensor", UserWarning, r"nni\."),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"copyreg"),  # litert-torch's export
    # the course's one-file ONNX export (dynamo=False), called from a notebook cell
    (r"You are using the legacy TorchScript-based ONNX export", DeprecationWarning, r"__main__"),
]


def silence() -> None:
    """Set the environment, logger levels and warning filters above (before the libraries are imported)."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for message, category, module in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    if any(quiet not in sys.modules for quiet in QUIET_IMPORTS) and not any(
            isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


@contextlib.contextmanager
def native_stderr_closed() -> Iterator[None]:
    """Send what C++ code writes to file descriptor 2 to /dev/null inside the block (Python's own stderr is kept)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


QUIET_IMPORTS = ("tensorflow", "litert_converter.mlir")  # litert-torch's converter: MLIR linked to TensorFlow


class _QuietImport(importlib.abc.MetaPathFinder):
    """Runs the first `import tensorflow` (and of QUIET_IMPORTS' other modules), wherever it happens, with native
    stderr closed: the lab imports TensorFlow lazily in many places (and TFMOT, tf_keras and litert-torch import it
    too)."""

    def find_spec(self, name: str, path: object = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name not in QUIET_IMPORTS:
            return None
        for finder in sys.meta_path:  # the real finders locate it; this only wraps its execution
            if finder is not self and (spec := getattr(finder, "find_spec", lambda *a: None)(name, path, target)):
                break
        else:
            return None
        if spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_quietly(module: ModuleType) -> None:
                with native_stderr_closed():
                    execute(module)
                # In a kernel TensorFlow logs at INFO to stdout ("Assets written to …" at every TFLite conversion).
                logging.getLogger("tensorflow").setLevel(logging.ERROR)
                if self in sys.meta_path and all(quiet in sys.modules for quiet in QUIET_IMPORTS):
                    sys.meta_path.remove(self)  # all imported: nothing left to wrap

            spec.loader.exec_module = exec_quietly
        return spec
