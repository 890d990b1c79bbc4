"""One run per results folder: a second run waits for the first (or its kernels), then says so in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import LabkitError
from labkit.lock import LOCK_NAME, RUN_LOCK, hold_folder

# Each script takes the lock, says so on stdout, and lets go when its stdin closes.
HOLD = ("import sys\nfrom labkit.lock import hold_folder\n"
        "with hold_folder({folder!r}):\n    print('held', flush=True)\n    sys.stdin.read()")
JOIN = "import sys\nimport labkit\nprint('joined', flush=True)\nsys.stdin.read()"  # a kernel joins at import


def holder(code: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a lock-holding script and wait until it holds the lock."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout.readline().strip() in ("held", "joined")
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


def test_a_second_run_on_the_same_folder_is_one_line(tmp_path):
    first = holder(HOLD.format(folder=str(tmp_path)))
    try:
        start = time.monotonic()
        with pytest.raises(LabkitError) as err, hold_folder(tmp_path, wait_s=0.5):
            pass
        assert time.monotonic() - start >= 0.5  # it waited before giving up
        message = str(err.value)
        assert f"pid {first.pid}" in message and "--results-path" in message and "\n" not in message
    finally:
        release(first)
    with hold_folder(tmp_path, wait_s=0.5):  # free again once the first run ended
        pass


def test_a_kernel_of_a_stopped_run_holds_the_folder_until_it_ends(tmp_path):
    with hold_folder(tmp_path, wait_s=0) as lock:
        kernel = holder(JOIN, {RUN_LOCK: str(lock)})  # joins in shared mode while its run holds the lock
    try:
        with pytest.raises(LabkitError, match="is in use by another labkit run"), hold_folder(tmp_path, wait_s=0.3):
            pass
    finally:
        release(kernel)
    with hold_folder(tmp_path, wait_s=0.5):
        pass


def test_kernels_started_inside_the_run_are_told_the_lock_and_others_are_not(tmp_path):
    assert RUN_LOCK not in os.environ
    with hold_folder(tmp_path) as lock:
        assert os.environ[RUN_LOCK] == str(lock) == str(Path(tmp_path) / LOCK_NAME)
    assert RUN_LOCK not in os.environ
