"""labkit: helpers for the pruning and clustering lab, one sub-package per stage of it.

A run flows data → base model → method → export → measure → judge → report. The stages, lowest first:
labkit.data (datasets), labkit.deploy (export, runtimes, file size), labkit.models (the bases, the user's model,
fine-tuning to recovery), labkit.results (measuring and judging, the summary), labkit.methods (the compression
steps: each ends in a measured record, so it stands above results), labkit.course (the student edition) and
labkit.run (runner, Ray, tracking, command line). A module imports the shared basics here at the top (paths,
files, errors, quiet, stack, lock, progress, parameters, and records: what made each number) and the stages before
its own, never a later one (tests/test_layout.py).

Importing labkit switches ``tf.keras`` to Keras 2 (``TF_USE_LEGACY_KERAS=1``) before TensorFlow
can be imported, because TensorFlow Model Optimization only accepts Keras 2 models, and keeps TensorFlow on its Eigen
kernels (``TF_ENABLE_ONEDNN_OPTS=0`` unless set; records name them: labkit.records.tensorflow_kernels).
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's Eigen kernels, not oneDNN's: oneDNN trains the lab's CNN up to 2.7x faster, but its sums round
# differently, and a three-seed run with it changed 5 of 15 verdicts (README, *Default scale*). Set
# TF_ENABLE_ONEDNN_OPTS=1 to use it; records name the kernels either way (labkit.records.tensorflow_kernels).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from labkit import quiet  # noqa: E402
from labkit.errors import LabkitError, show_in_one_line  # noqa: E402

quiet.silence()
if "IPython" in sys.modules:  # in a notebook: a LabkitError shows as its one line, not a traceback
    from IPython import get_ipython

    if (shell := get_ipython()) is not None:
        show_in_one_line(shell)

if "LABKIT_RUN_LOCK" in os.environ:  # a kernel started by `python -m labkit run` joins its run's lock
    from labkit.lock import join_run

    join_run()

__all__ = ["LabkitError"]
__version__ = "0.1.0"
