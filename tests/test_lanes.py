"""A run's Keras and PyTorch notebooks side by side (labkit.run.lanes): both lanes at once, each in its order, the
summary after both, a failure stopping everything, and the same numbers as one notebook after another."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from labkit.run import lanes
from labkit.run.execution import Job


def job(notebook: str, seed: int = 42) -> Job:
    return Job(notebook, {}, [notebook], Path(f"/results/seed-{seed}"))


PLAN = [job("01_clustering"), job("02_pruning"), job("03_structured_pruning"), job("01_clustering", 43),
        job("02_pruning", 43), job("03_structured_pruning", 43), Job("04_summary", {}, [], Path("/results"))]


def test_the_keras_and_pytorch_notebooks_run_side_by_side_each_in_order_then_the_summary():
    both_started = threading.Barrier(2, timeout=10)  # one lane after the other would time out here
    events = []

    def run_one(job: Job, lane: int) -> Path:
        if job is PLAN[0] or job is PLAN[2]:
            both_started.wait()
        events.append((job.notebook, job.folder.name, lane))
        return job.path

    assert lanes.run(PLAN, run_one) == [j.path for j in PLAN]
    keras = [(n, s) for n, s, lane in events if n != "03_structured_pruning" and n != "04_summary"]
    assert keras == [("01_clustering", "seed-42"), ("02_pruning", "seed-42"), ("01_clustering", "seed-43"),
                     ("02_pruning", "seed-43")]
    assert {lane for n, _, lane in events if n == "03_structured_pruning"} == {1}
    assert events[-1] == ("04_summary", "results", 0)


def test_one_lane_runs_its_jobs_here_in_order():
    seen = []
    assert lanes.run(PLAN[:2], lambda job, lane: seen.append((threading.current_thread(), lane))) == []
    assert seen == [(threading.main_thread(), 0)] * 2


def test_a_failed_job_kills_the_other_lanes_kernel_and_starts_nothing_more():
    started = []

    def run_one(job: Job, lane: int) -> None:
        started.append(job.notebook)
        if job.notebook == "03_structured_pruning":
            time.sleep(1)
            raise ValueError("a cell failed")
        kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        assert kernel.wait(timeout=30) < 0  # killed by the other lane's failure, not ended by itself

    begun = time.monotonic()
    with pytest.raises(ValueError, match="a cell failed"):
        lanes.run(PLAN, run_one)
    assert time.monotonic() - begun < 20
    assert started.count("01_clustering") == 1 and "02_pruning" not in started and "04_summary" not in started
    assert not psutil.Process().children(recursive=True)


TRAIN = """
import hashlib, sys
import labkit
import numpy as np, tensorflow as tf
from labkit.models import keras_models
tf.keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x, y = rng.random((2048, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 2048)
model = keras_models.fashion_cnn()
keras_models.compile_model(model, 1e-3)
model.fit(x, y, batch_size=64, epochs=2, verbose=0)
print(hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
"""
HOG = "import torch; a = torch.randn(1024, 1024)\nwhile True: a @ a"


def test_a_notebook_beside_another_computes_the_same_bits():
    """Side by side, each framework keeps its thread count: the cores are shared, the sums are the same."""
    def weights_digest() -> str:
        return subprocess.run([sys.executable, "-c", TRAIN], capture_output=True, text=True, check=True,
                              timeout=300).stdout.split()[-1]

    alone = weights_digest()
    hog = subprocess.Popen([sys.executable, "-c", HOG])
    try:
        beside = weights_digest()
    finally:
        hog.kill()
        hog.wait()
    assert beside == alone
