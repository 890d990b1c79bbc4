"""A stopped run loses nothing, and every failure the user can meet is one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEBIAN_FASHION, ROOT

from labkit import LabkitError, tflite
from labkit.data import fashion_mnist, load_fashion_mnist
from labkit.keras_models import load_model

TINY_ARGS = ["--test-dataset-fraction", "0.05", "-p", "train_samples=300", "-p", "base_epochs=1"]


def labkit_run(tasks: list[str], results: Path, models: Path, **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "labkit", "run", "--tasks", *tasks, "--results-path", str(results), *TINY_ARGS,
           "-p", f"models_dir={models}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)


@pytest.mark.notebook
@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_stopped_run_resumes_without_redoing_finished_variants(tmp_path):
    results, models = tmp_path / "results", tmp_path / "models"
    tasks = ["clustered-2-fp32", "clustered-4-fp32", "clustered-8-fp32"]
    proc = labkit_run(tasks, results, models)
    deadline = time.monotonic() + 300
    while not list(results.glob("clustered-*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no variant finished in time"
        time.sleep(0.5)
    time.sleep(2)  # now inside the next variant
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in results.glob("clustered-*.json")}
    assert 1 <= len(finished) < 3

    rerun = labkit_run(tasks, results, models)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    after = {p.name: p.stat().st_mtime_ns for p in results.glob("clustered-*.json")}
    assert set(after) == {f"{t}.json" for t in tasks}
    assert all(after[name] == mtime for name, mtime in finished.items())  # kept, not redone
    assert not list(results.glob("*.part")) and not list(results.glob("*.part.*"))
    for task in tasks:
        tflite.load(results / f"{task}.tflite")
        assert (results / f"{task}-confusion-matrix.png").stat().st_size > 0


@pytest.mark.notebook
@pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_corrupt_cached_base_model_stops_the_run_with_one_line(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "fashion-mnist-base-28x28-n270-e1-lr0.001-s42.keras").write_bytes(b"this is not a model")
    results = tmp_path / "results"
    results.mkdir()
    (results / "keep.json").write_text("{}")
    proc = labkit_run(["clustered-2-fp32"], results, models)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    line = [e for e in err.splitlines() if e.startswith("error:")]
    assert len(line) == 1 and "fashion-mnist-base-28x28-n270-e1-lr0.001-s42.keras cannot be loaded" in line[0]
    assert (results / "keep.json").read_text() == "{}"
    assert (results / "notebooks" / "01_clustering.running.ipynb").is_file()


def test_damaged_keras_file_is_a_labkit_error(tmp_path):
    path = tmp_path / "base.keras"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(LabkitError, match="base.keras cannot be loaded"):
        load_model(path)


def test_missing_dataset_without_network_is_one_line(no_data_anywhere, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "URL", "http://127.0.0.1:9/")
    with pytest.raises(LabkitError, match=r"could not download http://127.0.0.1:9/train-images") as err:
        load_fashion_mnist(download=True)
    assert "\n" not in str(err.value)
    assert not list((no_data_anywhere / "cache").rglob("*.part"))
