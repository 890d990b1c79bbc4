"""Shared fixtures: small generated datasets, and the real data on the machine (skipped when absent)."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import labkit  # noqa: F401  (TF_USE_LEGACY_KERAS before any TensorFlow import)

ROOT = Path(__file__).resolve().parents[1]
SHARED_PETS = ROOT.parent / "shared" / "data" / "oxford-iiit-pet-sample"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

# The runs the tests start and then stop with Ctrl-C (SIGINT) must start as from a terminal. A shell that puts the
# suite in the background without job control (`make test &`, some CI runners) makes it ignore SIGINT, every child
# inherits that, and a run meant to stop on Ctrl-C ran on to the end instead.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def idx_folder(root: Path, classes: int = 3, size: int = 28, gz: bool = True, n: int = 150) -> Path:
    """MNIST-format files of learnable images: each class is bright in its own band of rows."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("t10k", n // 3)):
        labels = np.arange(count) % classes
        images = rng.integers(0, 40, (count, size, size))
        for i, label in enumerate(labels):
            band = size // classes
            images[i, label * band:(label + 1) * band] += 180
        suffix = ".gz" if gz else ""
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", labels)
    return root


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A folder with the four Fashion-MNIST file names holding small random images and labels."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("t10k", 20)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return tmp_path


@pytest.fixture
def pets_dir(tmp_path: Path) -> Path:
    """An Oxford-IIIT Pet folder in the official layout with the real data's quirks.

    Class ids 1, 2, 6 (not contiguous); one '.jpg' that is a GIF and one that is a PNG; a stray .mat
    file; one listed image that cannot be decoded.
    """
    root = tmp_path / "pets"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    breeds = [("Abyssinian", 1, 1), ("american_bulldog", 2, 2), ("Bengal", 6, 1)]
    rows = []
    for breed, class_id, species in breeds:
        for i in range(1, 5):
            name = f"{breed}_{i}"
            pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
            fmt = "GIF" if name == "Abyssinian_1" else "PNG" if name == "Abyssinian_2" else "JPEG"
            Image.fromarray(pixels).save(root / "images" / f"{name}.jpg", format=fmt)
            rows.append(f"{name} {class_id} {species} {i}")
    (root / "images" / "Bengal_4.jpg").write_bytes(b"not an image")
    (root / "images" / "Abyssinian_1.mat").write_bytes(b"MATLAB 5.0")
    header = "#Image CLASS-ID SPECIES BREED ID\n"
    (root / "annotations" / "list.txt").write_text(header + "\n".join(rows) + "\n")
    (root / "annotations" / "trainval.txt").write_text("\n".join(rows[0::2]) + "\n")
    (root / "annotations" / "test.txt").write_text("\n".join(rows[1::2]) + "\n")
    return root


@pytest.fixture
def no_data_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hide the Debian copy, $LABKIT_DATA and the user cache, as on a machine without the dataset."""
    from labkit.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LABKIT_DATA", raising=False)
    return tmp_path


@contextmanager
def jupyterlab(root: Path, *options: str, token: str = "labkit-test", base_url: str = "/") -> Iterator[dict]:
    """A headless JupyterLab on a free loopback port serving `root`, its files (runtime, log) in `root`."""
    from labkit.deploy.netron import free_port

    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "PYTHONPATH": str(ROOT)}
    with (root / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", f"--ServerApp.base_url={base_url}", f"--ServerApp.root_dir={root}",
             "--allow-root", *options], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            api = f"http://127.0.0.1:{port}{base_url}api"
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{api}/status?token={token}", timeout=5):
                        break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, (root / "server.log").read_text()
                    time.sleep(0.5)
            yield {"port": port, "pid": server.pid, "api": api, "token": token, "runtime": root / "runtime"}
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:  # Jupyter's shutdown hangs when stopped while a kernel starts
                server.kill()
                server.wait()


# Tests that must never share the machine's two cores with a like test at once: they stop runs with signals, wait on
# servers or drive a browser. Under pytest-xdist (`make test`) each of these groups runs on one worker, one test at a
# time; the tests that read the shared tiny lab run on one worker too, so it is built once (the Ray runs compared
# with its records among them: they too run one at a time).
ONE_WORKER = ("browser", "server", "ray", "kill")


def pytest_report_header(config: pytest.Config) -> str:
    """Name the CPU at the top of every run: the slowest-ten figures below mean nothing without it."""
    from labkit.deploy.tflite import cpu

    about = cpu()
    vectors = ", ".join(about["vector_extensions"]) or "no vector extensions"
    return f"cpu: {about['model']} ({about['arch']}; {vectors}), {os.cpu_count()} cores"


def pytest_itemcollected(item: pytest.Item) -> None:
    """Group the test for pytest-xdist as it is collected, before any collection_modifyitems hook (xdist's reads
    the groups there)."""
    if "tiny_lab" in item.fixturenames:
        item.add_marker(pytest.mark.notebook)  # the shared lab is notebooks run once
        item.add_marker(pytest.mark.xdist_group("tiny-lab"))
    elif any(item.get_closest_marker(name) for name in ONE_WORKER):
        item.add_marker(pytest.mark.xdist_group("one-worker"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The guard against regrowth: a test marked `notebook` either reads the shared `tiny_lab` or carries
    `@pytest.mark.own_lab(reason=...)`, one line on why it cannot (a stopped run, a used folder, other data …)."""
    unexplained = [item.nodeid for item in items if item.get_closest_marker("notebook")
                   and "tiny_lab" not in item.fixturenames
                   and not ((own := item.get_closest_marker("own_lab")) and own.kwargs.get("reason"))]
    if unexplained:
        raise pytest.UsageError("notebook tests that neither read the shared tiny_lab nor say why they run their own "
                                "lab (@pytest.mark.own_lab(reason=...)): " + ", ".join(unexplained))


def needs(path: Path, what: str):
    """Skip marker for tests that read data found only on some machines."""
    return pytest.mark.skipif(not path.exists(), reason=f"{what} not on this machine ({path})")




@pytest.fixture(scope="session")
def release(tmp_path_factory) -> Path:
    """A course folder holding the student edition of the notebooks (nbgrader's release and gradebook)."""
    from labkit.course import assignment

    course = tmp_path_factory.mktemp("course")
    assignment.release(course, log=lambda _: None)
    return course


def answered(notebook: dict, answers: dict[str, str | None]) -> dict:
    """A released notebook with some tasks answered, by the grade id of their answer cell: with the code given, or
    (None) with the instructor's solution as a student would write it, without nbgrader's markers."""
    solutions = {cell["metadata"]["nbgrader"]["grade_id"]: "".join(cell["source"])
                 for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
                 for cell in json.loads(path.read_text())["cells"] if "nbgrader" in cell["metadata"]}
    cells = []
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            code = answers[grade_id] or "".join(line for line in solutions[grade_id].splitlines(keepends=True)
                                                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
            cell = {**cell, "source": code}
        cells.append(cell)
    return {**notebook, "cells": cells}


# what 01 and 02 take; TFLM checks 20 test images a model (its reference kernels cost ~4–15 ms an image on x86)
TINY_KERAS_LAB = {"train_samples": 300, "base_epochs": 1, "fine_tune_epochs": 1, "micro_samples": 20}
# 03's base with a 64-unit fc1 (4 MB instead of the course's 63 MB): every export, conversion and zip is quick.
TINY_LAB = {**TINY_KERAS_LAB, "training_batches": 200, "netron_live": False, "hidden_units": 64}
TINY_FRACTION = 0.05  # of the test set


def tiny_lab_options(params: dict = TINY_LAB) -> list[str]:
    """The tiny lab's scale as options of `labkit run` (`params`: those of the notebooks the run executes): a run
    given them makes the tiny lab's records."""
    params = (option for name, value in params.items() for option in ("-p", f"{name}={value}"))
    return ["--test-dataset-fraction", str(TINY_FRACTION), *params]


def steady(names) -> set[str]:
    """Record names without the controls after some steps (`control-<n>-steps-fp32`, and PyTorch's
    `torch-control-<n>-steps-fp32` and their INT8 twins): which of those exist depends on where each variant's
    fine-tuning stopped."""
    paired = r"(torch-)?control-\d+-steps-fp32|torch-control(-\d+-steps)?-int8"
    return {name for name in names if not re.fullmatch(paired, name)}


# The tiny lab: the whole lab (CQAT and PCQAT among it), and the two other collaborative-optimization paths beside
# it, on the lab's own variants
TINY_TASKS = ["all", "pruned-0.5-pqat-int8", "qat-int8"]


def notebook_tasks() -> list[str]:
    """The tiny lab's tasks without its summary: its notebooks, which a rerun in its results skips."""
    from labkit.run import runner

    return [task for task in [*runner.lab_tasks(), *TINY_TASKS[1:]] if task != "summary"]


@pytest.fixture(scope="session")
def tiny_lab(tmp_path_factory) -> dict:
    """The whole lab (`--tasks all`, and TINY_TASKS) at tiny scale, run once for every test that inspects its
    outputs."""
    if not DEBIAN_FASHION.exists():
        pytest.skip("Debian dataset-fashion-mnist not installed")
    from labkit.run import runner

    tmp = tmp_path_factory.mktemp("lab")
    log: list[str] = []
    outputs = runner.run(TINY_TASKS, results_path=str(tmp / "results"), summary_path=str(tmp / "summary"),
                         test_dataset_fraction=TINY_FRACTION, params={**TINY_LAB, "models_dir": str(tmp / "models")},
                         log=log.append)
    return {"root": tmp / "results", "results": tmp / "results" / "seed-42", "summary": tmp / "summary",
            "outputs": outputs, "log": log, "tmp": tmp}
