"""labkit: helpers for the pruning and clustering lab.

Importing labkit switches ``tf.keras`` to Keras 2 (``TF_USE_LEGACY_KERAS=1``) before TensorFlow
can be imported, because TensorFlow Model Optimization only accepts Keras 2 models.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from labkit.errors import LabkitError  # noqa: E402

if "LABKIT_RUN_LOCK" in os.environ:  # a kernel started by `python -m labkit run` joins its run's lock
    from labkit.lock import join_run

    join_run()

__all__ = ["LabkitError"]
__version__ = "0.1.0"
