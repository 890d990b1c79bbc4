"""The pinned stack imports in one process (pip check alone has missed broken installs)."""

import subprocess
import sys

from labkit.stack import check_stack


def test_whole_stack_imports_with_legacy_keras():
    versions = check_stack()
    assert versions["nni"] == "2.10.1"
    assert versions["tensorflow"].startswith("2.")
    import tensorflow as tf

    assert "tf_keras" in tf.keras.__name__


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True, check=True)
    assert "check" in out.stdout and "data" in out.stdout


def test_torch_pruning_is_the_pinned_release():
    """The 1.6.1 wheel's own __version__ says 1.6.0: the check and the records read the package's metadata."""
    from labkit.records import versions

    assert check_stack()["torch_pruning"] == versions(("torch-pruning",))["torch-pruning"] == "1.6.1"
