"""Library noise is silenced at its source: importing the stack through labkit prints nothing."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_stack_after_labkit_prints_nothing():
    code = ("import labkit, torch\n"
            "from nni.compression.pytorch.pruning import ActivationAPoZRankPruner\n"  # imports TensorFlow
            "import tensorflow as tf, tf_keras, litert_torch\n"
            "from labkit.deploy import export, tflite\n"
            "print(tf.constant(2).numpy())\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (run.stdout, run.stderr) == ("2\n", "")


def test_a_user_error_still_reaches_stderr_after_a_quiet_import():
    code = "import labkit, sys, tensorflow\nprint('seen', file=sys.stderr)\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stderr == "seen\n"
