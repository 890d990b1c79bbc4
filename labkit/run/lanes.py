"""Two notebooks at once: a run's Keras notebooks in one lane, its PyTorch notebook in the other.

On a 2-core machine the lab's Keras CNN trains no faster on two cores than on one, while the PyTorch classifier's
matrix products use both (benchmarks/lanes.py measures both, and the two lanes against one). So the runner
executes the PyTorch notebook beside the Keras ones instead of after them. Each framework keeps its own thread
count, so every record is the same, bit for bit, as in a run that executes one notebook after another
(tests/test_lanes.py): only the wall time changes.

A lane runs its jobs in the order given (02 reads the base and control 01 wrote; a seed's jobs before the next
seed's); jobs of neither lane (the summary) run after both. A run whose jobs all sit in one lane runs them here,
one after another, as before. When a job fails, or the run is stopped (Ctrl-C, SIGTERM), the kernels still
running are killed, as a stopped run's kernel is, no new job starts, and the first error is raised: finished
variants are kept, and the same command resumes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from labkit.run.execution import Job

LANES = {"01_clustering": "keras", "02_pruning": "keras", "03_structured_pruning": "torch"}
KILLED_WAIT_S = 30.0  # how long a stopped run waits for a lane whose kernel was killed to end its papermill call


def lanes(jobs: list[Job]) -> tuple[list[list[Job]], list[Job]]:
    """The jobs of each lane that has any, in the given order, and the jobs that run after both."""
    found: dict[str, list[Job]] = {}
    for job in jobs:
        if lane := LANES.get(job.notebook):
            found.setdefault(lane, []).append(job)
    return list(found.values()), [job for job in jobs if job.notebook not in LANES]


def run(jobs: list[Job], run_one: Callable[[Job, int], Path | None]) -> list[Path]:
    """Execute `jobs` with `run_one(job, lane)`, the lanes side by side; return what each returned, in the jobs'
    order (None left out)."""
    side_by_side, after = lanes(jobs)
    done: dict[int, Path | None] = {}
    if len(side_by_side) < 2:
        for job in jobs:
            done[id(job)] = run_one(job, 0)
    else:
        _side_by_side(side_by_side, run_one, done)
        for job in after:
            done[id(job)] = run_one(job, 0)
    return [path for job in jobs if (path := done.get(id(job))) is not None]


def _side_by_side(side_by_side: list[list[Job]], run_one: Callable[[Job, int], Path | None],
                  done: dict[int, Path | None]) -> None:
    stop, errors = threading.Event(), []

    def lane(index: int, jobs: list[Job]) -> None:
        for job in jobs:
            if stop.is_set():
                return
            try:
                done[id(job)] = run_one(job, index)
            except BaseException as err:  # noqa: BLE001  (handed to the main thread, raised there)
                if not stop.is_set():
                    errors.append(err)
                    stop.set()
                    _kill_kernels()
                return

    threads = [threading.Thread(target=lane, args=(i, jobs), daemon=True) for i, jobs in enumerate(side_by_side)]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(0.2)  # a short wait: Ctrl-C reaches this thread between two
    except BaseException:
        stop.set()
        _kill_kernels()
        for thread in threads:
            thread.join(KILLED_WAIT_S)
        raise
    if errors:
        raise errors[0]


def _kill_kernels() -> None:
    """Kill this process's children and theirs (the notebooks' kernels): a lane's papermill call then ends."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
