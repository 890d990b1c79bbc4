"""One run per results folder, and no rerun that overlaps with a kernel of an earlier run.

A run holds `<results>/.labkit.lock` for its whole life. It takes the lock exclusively first (so it waits
for any earlier run or kernel still holding it, then gives up with one line), then keeps it shared, and every
kernel it starts joins in shared mode. jupyter_client starts kernels in a session of their own, so a killed
run does not take its kernel with it: ipykernel's parent poller ends an orphaned kernel within about a
second, and until then the kernel still holds the lock, so a rerun waits for it instead of writing beside it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labkit.errors import LabkitError

LOCK_NAME = ".labkit.lock"
RUN_LOCK = "LABKIT_RUN_LOCK"
_held: list[int] = []  # file descriptors this process keeps open for its lifetime


@contextmanager
def hold_folder(folder: Path, wait_s: float = 30.0) -> Iterator[Path]:
    """Hold the results folder for a run and the kernels it starts inside the block.

    Waits up to `wait_s` for an earlier run or kernel to let go, then stops with a one-line LabkitError.
    Kernels inherit this process's environment, which names the lock they join.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    saved = os.environ.get(RUN_LOCK)
    try:
        if not _lock_exclusive(fd, wait_s):
            raise LabkitError(f"{folder} is in use by another labkit run ({_holder(fd)}): wait for it to finish, "
                              "stop it, or choose another --results-path")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        fcntl.flock(fd, fcntl.LOCK_SH)  # the kernels of this run join in shared mode
        os.environ[RUN_LOCK] = str(path)
        yield path
    finally:
        if saved is None:
            os.environ.pop(RUN_LOCK, None)
        else:
            os.environ[RUN_LOCK] = saved
        os.close(fd)


def join_run() -> None:
    """In a kernel started by a run: hold the run's lock, shared, for the kernel's lifetime.

    Does nothing in a kernel started any other way (JupyterLab, plain papermill).
    """
    lock_path = os.environ.get(RUN_LOCK)
    if not lock_path or _held:
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _held.append(fd)


def _lock_exclusive(fd: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def _holder(fd: int) -> str:
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return text or "a notebook kernel"


@contextmanager
def one_maker(lock_file: Path) -> Iterator[None]:
    """Inside the block, this process alone holds `lock_file`: units side by side on Ray that need the same record
    (a control after as many steps as two variants took) make it once, and the second one reads it."""
    Path(lock_file).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
