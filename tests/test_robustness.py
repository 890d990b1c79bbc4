"""A stopped run loses nothing, and every failure the user can meet is one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEBIAN_FASHION, ROOT

from labkit import LabkitError, records
from labkit.data import fashion_mnist, load_fashion_mnist
from labkit.deploy import tflite
from labkit.models.keras_models import load_model

TINY = ["--test-dataset-fraction", "0.05", "-p", "train_samples=300"]
TINY_KERAS = [*TINY, "-p", "base_epochs=1", "-p", "fine_tune_epochs=1"]
TINY_STRUCTURED = [*TINY, "-p", "training_batches=200", "-p", "netron_live=False", "-p", "hidden_units=64"]
needs_fashion = pytest.mark.skipif(not DEBIAN_FASHION.exists(), reason="Debian dataset-fashion-mnist not installed")


def labkit_run(tasks: list[str], results: Path, models: Path, tiny: list[str] = TINY_KERAS) -> subprocess.Popen:
    """`python -m labkit run` at tiny scale in a process group of its own (as a terminal would start it)."""
    cmd = [sys.executable, "-m", "labkit", "run", "--tasks", *tasks, "--results-path", str(results), *tiny,
           "-p", f"models_dir={models}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(condition, proc: subprocess.Popen, what: str, timeout_s: float = 600, printed=None) -> None:
    """Poll `condition` until it holds; fail if the run ends first or the (generous) deadline passes.

    The failure shows what the run printed: `printed()` where threads read its pipes (communicate would race them),
    else the pipes themselves once it has ended.
    """
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}: "
                                 f"{printed() if printed else proc.communicate()}")
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s" + (f": {printed()}" if printed else "")
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the kernels a run started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def files_state(paths) -> dict[str, tuple[int, int]]:
    """Inode and modification time of each file: an atomic rewrite changes the inode."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


def one_line(err: str, prefix: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


STOPS = {  # how the run is stopped -> (signal, whom, exit code of the runner, its last word on stderr)
    "runner SIGKILL": (signal.SIGKILL, "runner", -signal.SIGKILL, None),
    "runner SIGTERM": (signal.SIGTERM, "runner", 130, "stopped: finished variants are kept"),
    "Ctrl-C": (signal.SIGINT, "runner", 130, "stopped: finished variants are kept"),
    "kernel SIGKILL": (signal.SIGKILL, "kernel", 1, "error: the notebook kernel died"),
}


@pytest.mark.notebook
@pytest.mark.kill
@pytest.mark.own_lab(reason="a run stopped by a signal after its first record, then resumed")
@needs_fashion
@pytest.mark.parametrize("stop", list(STOPS))
def test_stopped_run_resumes_without_redoing_finished_variants(tmp_path, stop):
    sig, whom, code, said = STOPS[stop]
    results, models = tmp_path / "results", tmp_path / "models"
    seed = results / "seed-42"  # the default seed's folder
    tasks = ["clustered-2-fp32", "clustered-4-fp32"]
    proc = labkit_run(tasks, results, models)
    base = seed / "base-fp32.json"
    # Stopped once the base is measured: the control and both variants, about 20 s of work at this scale, are
    # still to come. (Stopped after the first variant, the run had 10 s left, and a loaded CI machine missed it.)
    wait_for(base.is_file, proc, "the base's record")
    kernels = children(proc.pid)
    assert kernels, "the run has no kernel"
    late = time.time() - base.stat().st_mtime
    os.kill(kernels[0] if whom == "kernel" else proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, f"{err}\n(stopped {late:.1f} s after the base's record was written)"
    if said:
        assert said in one_line(err, said.split(":")[0] + ":")
    finished = files_state(seed.glob("*.json"))
    assert "base-fp32.json" in finished and not set(finished) >= {f"{t}.json" for t in tasks}, finished

    rerun = labkit_run(tasks, results, models)  # at once: it must wait for a kernel that is still ending
    deadline = time.monotonic() + 30
    while any(alive(k) for k in kernels):
        assert time.monotonic() < deadline, f"the kernel of the stopped run still runs 30 s after: {stop}"
        time.sleep(0.1)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    after = files_state(seed.glob("*.json"))
    assert {f"{t}.json" for t in tasks} <= set(after)
    assert {name: after[name] for name in finished} == finished  # kept, not redone
    assert not list(seed.glob("*.part")) and not list(seed.glob("*.part.*"))
    for task in tasks:
        tflite.load(seed / f"{task}.tflite")
        assert (seed / f"{task}-confusion-matrix.png").stat().st_size > 0


def base_training_started(notebook: Path) -> bool:
    """Whether papermill has marked the cell that trains (or loads) the base model as running."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError):
        return False  # not written yet, or caught mid-write
    return any("experiment.base_model(" in "".join(c["source"]) and
               c["metadata"].get("papermill", {}).get("status") in ("running", "completed") for c in cells)


@pytest.mark.notebook
@pytest.mark.kill
@pytest.mark.own_lab(reason="killed while its base trains: no cached base may be there")
@needs_fashion
def test_kill_during_base_training_leaves_no_half_written_model(tmp_path):
    results, models = tmp_path / "results", tmp_path / "models"
    seed = results / "seed-42"  # the default seed's folder
    proc = labkit_run(["clustered-2-fp32"], results, models)
    wait_for(lambda: base_training_started(seed / "notebooks" / "01_clustering.running.ipynb"), proc,
             "base model training")
    kernels = children(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while any(alive(k) for k in kernels):
        assert time.monotonic() < deadline, "the kernel of the killed run still runs 30 s after"
        time.sleep(0.1)
    for path in models.glob("[!.]*.keras"):  # whatever looks finished must load
        load_model(path)
    rerun = labkit_run(["clustered-2-fp32"], results, models)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert len(list(models.glob("[!.]*.keras"))) == 1


@pytest.mark.notebook
@pytest.mark.kill
@pytest.mark.own_lab(reason="killed after the fine-tuned checkpoint, then resumed from its stages")
@needs_fashion
def test_structured_pruning_resumes_after_fine_tuning_without_retraining(tmp_path):
    results, models = tmp_path / "results", tmp_path / "models"
    seed = results / "seed-42"  # the default seed's folder
    proc = labkit_run(["structured-0.5"], results, models, TINY_STRUCTURED)
    checkpoints = seed / "structured-0.5-checkpoints.json"
    wait_for(lambda: checkpoints.is_file() and "fine-tuned" in json.loads(checkpoints.read_text())["done"], proc,
             "fine-tuned checkpoint")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = [*models.glob("*-classifier-*.pt"), *(seed / f"structured-0.5-{stage}.pt"
                                                        for stage in ("pruned", "fine-tuned")),
            seed / "structured-0.5-compress.log"]
    before = files_state(kept)

    rerun = labkit_run(["structured-0.5"], results, models, TINY_STRUCTURED)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert files_state(kept) == before  # base not retrained, not re-pruned, not re-fine-tuned
    record = json.loads((seed / "structured-0.5.json").read_text())
    assert record["stages"]["fine-tuned"] == json.loads(checkpoints.read_text())["measured"]["fine-tuned"]
    assert json.loads(checkpoints.read_text())["done"] == ["base", "pruned", "fine-tuned", "control", "exported"]


@pytest.mark.notebook
@pytest.mark.own_lab(reason="a damaged cached base: the run stops before any training")
@needs_fashion
def test_corrupt_cached_base_model_stops_the_run_with_one_line(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    kernels = "-onednn" if records.tensorflow_kernels() == "oneDNN" else ""
    cached = f"fashion-mnist-1cb5a4cf-base-28x28-n270-b64-e1-cos-lr0.003-s42{kernels}.keras"  # data tag, settings
    (models / cached).write_bytes(b"this is not a model")
    results = tmp_path / "results"
    seed = results / "seed-42"
    seed.mkdir(parents=True)
    (seed / "keep.json").write_text("{}")
    proc = labkit_run(["clustered-2-fp32"], results, models)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    line = [e for e in err.splitlines() if e.startswith("error:")]
    assert len(line) == 1 and f"{cached} cannot be loaded" in line[0]
    assert (seed / "keep.json").read_text() == "{}"
    assert (seed / "notebooks" / "01_clustering.running.ipynb").is_file()


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
