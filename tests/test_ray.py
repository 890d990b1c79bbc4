"""Sweeps on Ray: the same records as a sequential run (the shared tiny lab's, made at the same scale), lost workers
retried, stopped drivers resumed, failed units named, and a local instance that keeps token authentication and
listens on loopback only."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import ROOT, TINY_KERAS_LAB, steady, tiny_lab_options
from test_robustness import files_state, needs_fashion, wait_for
from test_tracking import complete, runs_in

from labkit import records
from labkit.data.fashion_mnist import FILES
from labkit.errors import LabkitError
from labkit.run import runner, tracking
from labkit.run.ray_backend import connect, critical_path, units_for

LOCAL_RAY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}  # loopback, token auth on
CLUSTERED = ["clustered-2-fp32", "clustered-4-fp32", "clustered-8-fp32"]
CLUSTER_TOKEN = secrets.token_hex(32)  # the two-node test cluster's, for the whole session


class Run:
    """`python -m labkit run` in a process group of its own, its stdout lines collected as they come."""

    def __init__(self, tasks: list[str], results: Path, models: Path, *options: str) -> None:
        cmd = [sys.executable, "-m", "labkit", "run", "--tasks", *tasks, "--results-path", str(results),
               *tiny_lab_options(TINY_KERAS_LAB), "-p", f"models_dir={models}", *options]
        # A local instance is labkit's to set up; a driver joining the test cluster needs what the cluster has.
        env = {k: v for k, v in os.environ.items() if k not in LOCAL_RAY or "--ray-address" in options}
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, env=env)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [threading.Thread(target=lambda out=out, into=into: into.extend(iter(out.readline, "")))
                         for out, into in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors))]
        for reader in self._readers:
            reader.start()

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def printed(self) -> str:
        """What the run printed so far (all of it once the run has ended)."""
        if self.proc.poll() is not None:
            for reader in self._readers:
                reader.join()
        return "\n" + "".join(self.lines) + self.err

    def finish(self, timeout_s: float = 900) -> int:
        self.proc.wait(timeout=timeout_s)
        for reader in self._readers:
            reader.join()
        return self.proc.returncode

    @property
    def err(self) -> str:
        return "".join(self.errors)


def same_records(reference: Path, folder: Path) -> None:
    """The run made the clustering plan's records (and the controls its variants stopped at), each one as the
    sequential reference made it: the same metrics and the same prediction per test image."""
    made = {p.name for p in folder.glob("*.json") if not p.name.endswith("-micro.json")}  # not TFLM's measurements
    assert steady(p.removesuffix(".json") for p in made) == {"base-fp32", "control-fp32", *CLUSTERED}
    assert made <= {p.name for p in reference.glob("*.json")}
    for path in map(reference.joinpath, made):
        ours, theirs = json.loads((folder / path.name).read_text()), json.loads(path.read_text())
        for key in ("metrics", "accuracy_before_fine_tuning", "vs_control", "kernels"):
            assert ours.get(key) == theirs.get(key), (path.name, key)
        with np.load(folder / f"{path.stem}-predictions.npz") as a, np.load(reference / a.fid.name) as b:
            assert (a["predicted"] == b["predicted"]).all(), path.name


def no_leftovers(seed: Path, notebooks: set[str]) -> None:
    """Each unit's notebook once, nothing half-written."""
    assert {p.name for p in (seed / "notebooks").iterdir()} == notebooks
    assert not [p for pattern in ("*.part", "*.part.*", "*.running.ipynb") for p in seed.rglob(pattern)]


def test_units_split_per_variant_after_the_base_unit():
    plan = runner.plan_tasks([*CLUSTERED[:2], "quantized-int8", "pruned-0.2-fp32", "pruned-0.5-clustered-16-fp32",
                              "structured-0.5", "structured-0.3"])
    units = units_for(runner.jobs_for(plan, {"results_dir": "results/x", "models_dir": "models"}, [42, 43]))
    first = "seed-42/01_clustering.clustered-2-fp32"
    by_name = {u.name: u for u in units}
    assert len(by_name) == len(units) == 12  # distinct notebooks per unit
    assert by_name[first].after == [] and by_name[first].job.variants == ["clustered-2-fp32", "quantized-int8"]
    assert by_name["seed-42/01_clustering.clustered-4-fp32"].after == [first]
    assert by_name["seed-42/01_clustering.clustered-4-fp32"].job.parameters["quantize_int8"] is False
    pruning = by_name["seed-42/02_pruning"]  # one sparsity: the notebook is its own unit, the combined one with it
    assert pruning.after == [first] and pruning.job.parameters["combined"] == [0.5, 16]
    report = by_name["seed-42/01_clustering"]
    assert report.report and set(report.after) == {first, "seed-42/01_clustering.clustered-4-fp32"}
    # structured units one after another, the course's sparsity last: its notebook is the report, its curve complete
    assert by_name["seed-42/03_structured_pruning"].after == ["seed-42/03_structured_pruning.structured-0.3"]
    assert not by_name["seed-43/01_clustering.clustered-2-fp32"].after  # seeds are independent
    seconds = {first: 10, "seed-42/01_clustering.clustered-4-fp32": 5, "seed-42/01_clustering": 3,
               "seed-42/03_structured_pruning": 30}
    assert critical_path(units, seconds) == (30, ["seed-42/03_structured_pruning.structured-0.3",
                                                  "seed-42/03_structured_pruning"])


def test_a_collaborative_unit_runs_with_its_pruned_parent_and_after_a_parent_made_in_01():
    plan = runner.plan_tasks(["clustered-2-fp32", "clustered-16-cqat-int8", "pruned-0.2-fp32", "pruned-0.5-pqat-int8",
                              "qat-int8"])
    units = {u.name: u for u in units_for(runner.jobs_for(plan, {"results_dir": "r", "models_dir": "m"}, [42]))}
    first, half = "seed-42/02_pruning.pruned-0.2-fp32", "seed-42/02_pruning.pruned-0.5-fp32"
    assert units[first].job.variants == ["pruned-0.2-fp32", "clustered-16-cqat-int8", "qat-int8"]
    assert units[half].job.variants == ["pruned-0.5-fp32", "pruned-0.5-pqat-int8"]
    assert units[half].job.parameters["deployed"] == ["pruned-0.5-pqat-int8"]
    assert "seed-42/01_clustering.clustered-16-fp32" in units[first].after  # CQAT waits for its parent
    assert "seed-42/01_clustering.clustered-16-fp32" not in units[half].after


class SlowRay(types.SimpleNamespace):
    """A stand-in for Ray whose local node times out `slow` times, and whose init sets its own SIGTERM handler as
    Ray's does. Importing the real one here would fix its settings for the tests after this one."""

    def __init__(self, slow: int) -> None:
        super().__init__(slow=slow, inits=0, shutdowns=0)

    def init(self, **_) -> None:  # what Ray 2.60 raises when its raylet does not register within 30 s
        self.inits += 1
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(signal.SIGTERM))
        if self.inits <= self.slow:
            raise Exception("The current node timed out during startup. This could happen because some of the "
                            "raylet failed to startup or the GCS has become overloaded.")

    def shutdown(self) -> None:
        self.shutdowns += 1

    def nodes(self) -> list[dict]:
        return [{"Alive": True}]

    def cluster_resources(self) -> dict:
        return {"CPU": 2}


@pytest.fixture
def slow_ray(monkeypatch):
    def install(slow: int) -> SlowRay:
        ray = SlowRay(slow)
        monkeypatch.setitem(sys.modules, "ray", ray)
        return ray

    for name, value in LOCAL_RAY.items():  # connect sets them; the test's environment gets them back
        monkeypatch.setenv(name, value)
    stop = signal.getsignal(signal.SIGTERM)
    yield install
    signal.signal(signal.SIGTERM, stop)


def test_a_local_ray_that_does_not_start_twice_stops_the_run_in_one_line(slow_ray):
    ray = slow_ray(slow=2)
    with pytest.raises(LabkitError, match=r"^a local Ray instance did not start \(The current node timed out"):
        connect("local")
    assert (ray.inits, ray.shutdowns) == (2, 1)


def test_a_slow_local_ray_gets_a_second_try_and_the_run_keeps_its_stop(slow_ray):
    ray = slow_ray(slow=1)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    assert connect("local") == "on a local Ray instance: 1 node, 2 CPUs"
    assert ray.inits == 2
    assert signal.getsignal(signal.SIGTERM) is stop  # `kill` still stops the run cleanly (exit 130), as Ctrl-C


@pytest.fixture
def sequential(tiny_lab) -> Path:
    """The reference: the tiny lab, whose 01 ran every cluster count sequentially, without Ray, at the scale the
    Ray runs are given (a record does not depend on which other variants its kernel ran)."""
    return tiny_lab["results"]


@pytest.fixture
def two_nodes(monkeypatch):
    """A two-node Ray cluster on this machine, one CPU each; the driver joins the head.

    Unlike ray.init, Cluster does not make the token that token authentication needs: without one (a fresh
    machine has no ~/.ray/auth_token) its GCS server exits and the start times out. The session's own token
    goes to the nodes and the driver through the environment, leaving the user's home alone. One token per test
    session: Ray reads it once per process, so a second cluster with a new token would refuse this driver.
    """
    for name, value in {**LOCAL_RAY, "RAY_AUTH_TOKEN": CLUSTER_TOKEN}.items():
        monkeypatch.setenv(name, value)
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()


@pytest.mark.notebook
@pytest.mark.ray
@pytest.mark.kill
@pytest.mark.own_lab(reason="the same units split over two Ray nodes, one node lost mid-run")
@needs_fashion
def test_two_nodes_give_the_sequential_records_after_losing_a_worker(tmp_path, sequential, two_nodes):
    cluster, worker = two_nodes
    results = tmp_path / "results"
    seed = results / "seed-42"
    run = Run(CLUSTERED, results, tmp_path / "models", "--ray-address", cluster.address)
    # The two units after the base unit need both CPUs: one of them runs on the worker node.
    on_worker = f"on node {worker.node_id[:8]}"
    wait_for(lambda: run.said(on_worker) and list((seed / "notebooks").glob("*.running.ipynb")), run.proc,
             "a unit running on the worker node", printed=run.printed)
    cluster.remove_node(worker, allow_graceful=False)
    assert run.finish() == 0, run.err
    assert run.said("(again: its worker was lost)")
    assert run.said("on the Ray cluster at") and run.said("2 nodes, 2 CPUs")
    same_records(sequential, seed)
    no_leftovers(seed, {"01_clustering.ipynb", *(f"01_clustering.{t}.ipynb" for t in CLUSTERED)})


@pytest.mark.notebook
@pytest.mark.ray
@pytest.mark.kill
@pytest.mark.own_lab(reason="a Ray run stopped after its first unit, then resumed")
@needs_fashion
def test_stopped_ray_run_resumes_without_redoing_finished_units(tmp_path, sequential):
    results, models = tmp_path / "results", tmp_path / "models"
    seed = results / "seed-42"
    run = Run(CLUSTERED, results, models, "--ray")
    wait_for(lambda: run.said("done seed-42/01_clustering.clustered-2-fp32"), run.proc, "the base unit",
             printed=run.printed)
    os.kill(run.proc.pid, signal.SIGINT)
    assert run.finish() == 130, run.err
    finished = files_state(seed.glob("*.json"))
    assert {"base-fp32.json", "control-fp32.json", "clustered-2-fp32.json"} <= set(finished)

    rerun = Run([*CLUSTERED, "summary"], results, models, "--ray", "--summary-path", str(tmp_path / "summary"))
    assert rerun.finish() == 0, rerun.err
    assert rerun.said("done seed-42/01_clustering.clustered-2-fp32 already done, skipped")
    readme = (tmp_path / "summary" / "README.md").read_text()
    assert "The seeds' notebooks ran on a local Ray instance: 1 node" in readme
    after = files_state(seed.glob("*.json"))
    assert {name: after[name] for name in finished} == finished  # kept, not redone
    same_records(sequential, seed)
    logged = complete(runs_in(tracking.default_store(results)[0]))  # each record once, logged where its unit ran
    assert set(logged) == {records.fingerprint(r) for r in records.load_records(seed)}
    assert {run.data.tags["labkit.where"] for run in logged.values()} == {"ray"}
    no_leftovers(seed, {"01_clustering.ipynb", *(f"01_clustering.{t}.ipynb" for t in CLUSTERED)})


def listening(pids: set[int]) -> list[str]:
    """The local addresses the given processes listen on (TCP)."""
    return [f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def descendants(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


@pytest.mark.notebook
@pytest.mark.ray
@pytest.mark.own_lab(reason="a local Ray instance started for a run on damaged data")
@needs_fashion
def test_local_ray_listens_on_loopback_with_token_auth_and_names_a_failed_unit(tmp_path):
    results, damaged = tmp_path / "results", tmp_path / "damaged"
    damaged.mkdir()
    for stem in FILES:  # found, but not a dataset: the first unit's notebook fails
        (damaged / stem).write_bytes(b"not an IDX file")
    run = Run(CLUSTERED[:2], results, tmp_path / "models", "--ray", "-p", f"dataset_root={damaged}")
    wait_for(lambda: run.said("running seed-42/"), run.proc, "a running unit", printed=run.printed)
    ray_pids = descendants(run.proc.pid)
    addresses = listening(ray_pids)
    assert addresses and all(a.rsplit(":", 1)[0] in ("127.0.0.1", "::ffff:127.0.0.1") for a in addresses), addresses
    gcs = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "gcs_server" and p.pid in ray_pids]
    assert gcs and b"RAY_AUTH_MODE=token\0" in Path(f"/proc/{gcs[0]}/environ").read_bytes()  # set by labkit
    assert run.finish() == 1
    line = [e for e in run.err.splitlines() if e.startswith("error:")]
    assert len(line) == 1, run.err
    kept = results / "seed-42" / "notebooks" / "01_clustering.clustered-2-fp32.running.ipynb"
    assert "seed-42/01_clustering.clustered-2-fp32: LabkitError" in line[0] and str(kept) in line[0]
    assert "seed-42/01_clustering.clustered-4-fp32: not run, it needs seed-42/01_clustering.clustered-2-fp32" in line[0]
    assert kept.is_file()
