"""Every record an MLflow run: in the results folder's own store by default or on a tracking server, under one parent
run per lab run, never logged twice, and never at the cost of a result when the tracker is down."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import DEBIAN_FASHION, TINY_KERAS_LAB, TINY_LAB, TINY_TASKS, needs, notebook_tasks

from labkit import records
from labkit.deploy.netron import free_port
from labkit.run import runner, tracking

# The Keras notebooks' tiny scale: TINY_LAB less the structured notebook's parameters, which a run of Keras tasks
# refuses as unknown.
TINY = TINY_KERAS_LAB


def runs_in(uri: str) -> list:
    """Every run a tracker holds, in every experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, max_results=1000)


def complete(runs: list) -> dict[str, object]:
    """The complete runs of records (those that carry the record's digest), by digest; a digest twice fails."""
    digests = [r.data.tags[tracking.RECORD_TAG] for r in runs if tracking.RECORD_TAG in r.data.tags]
    assert len(digests) == len(set(digests)), "a record was logged twice"
    return {r.data.tags[tracking.RECORD_TAG]: r for r in runs if tracking.RECORD_TAG in r.data.tags}


def carries(run, record: records.Record, where: str = "local") -> None:
    """The run is the record's: its numbers as metrics, its key and settings as parameters, its tags."""
    numbers, described = tracking.measurements(record)
    for name, value in numbers.items():
        if not isinstance(value, list):
            assert run.data.metrics[name] == pytest.approx(value), (record["name"], name)
    metrics = run.data.metrics  # the headline numbers under the names users search by
    assert metrics["accuracy"] == record["metrics"]["accuracy"]
    assert metrics["accuracy_ci_low"] == pytest.approx(record["accuracy_interval"][0])
    assert metrics["zipped_bytes"] == record["size"]["zipped_bytes"]
    assert metrics["latency_ms"] == pytest.approx(record["latency"]["median_ms"])
    if record["vs_control"]:
        for name, part in [("delta_pp", "delta_pp"), ("delta_ci_low_pp", "low_pp"), ("delta_ci_high_pp", "high_pp"),
                           ("p_value", "p_value")]:
            assert metrics[name] == pytest.approx(record["vs_control"][part])
    # the run lasts what its record measured of its making: fine-tuning (when there was one) and evaluation
    seconds = record.get("fine_tuning", {}).get("seconds", 0) + record["eval_seconds"]
    assert run.info.end_time - run.info.start_time == round(1000 * seconds) > 0
    key = record["key"]
    params = run.data.params
    assert params["dataset.sha256"] == key["dataset"]["sha256"] and params["seed"] == str(key["seed"])
    assert params["base.sha256"] == key["base"]["sha256"]
    assert params["selection.train_samples"] == str(key["selection"]["train_samples"])
    assert all(params[f"versions.{name}"] == version for name, version in key["versions"].items())
    assert all(params[f"variant.{name}"] == str(value) for name, value in key["variant"].items())
    assert params["latency.runtime.engine"] == record["latency"]["runtime"]["engine"]
    tags = run.data.tags
    assert (tags["method"], tags["variant"], tags["seed"], tags["labkit.where"]) == (
        record["method"], record["name"], str(key["seed"]), where)
    assert tags[tracking.KEY_TAG] == records.digest(key) and tags[tracking.RECORD_TAG] == records.fingerprint(record)


def artifact_names(uri: str, run, folder: str | None = None) -> set[str]:
    from mlflow import MlflowClient

    return {Path(a.path).name for a in MlflowClient(uri).list_artifacts(run.info.run_id, folder)}


def copy_results(tiny_lab: dict, to: Path) -> Path:
    """The tiny lab's results without its store: a run there starts a store of its own."""
    shutil.copytree(tiny_lab["root"], to, ignore=shutil.ignore_patterns("*.lock", tracking.STORE))
    return to


def rerun(folder: Path, tiny_lab: dict) -> list[str]:
    """The tiny lab's notebooks run again in `folder`, with the tiny lab's settings; what the run said."""
    said: list[str] = []
    runner.run(notebook_tasks(), results_path=str(folder), test_dataset_fraction=0.05, log=said.append,
               params={**TINY_LAB, "models_dir": str(tiny_lab["tmp"] / "models")})
    return said


@pytest.mark.notebook
def test_a_lab_run_logs_every_record_as_a_run_under_one_parent_with_the_summary(tiny_lab):
    uri = tracking.default_store(tiny_lab["root"])[0]
    assert (tiny_lab["root"] / "mlflow" / "mlflow.db").is_file()  # nothing configured: the results folder's store
    runs = runs_in(uri)
    # Other tests run the lab again in this folder: each run is a parent run of its own, the lab's logged first.
    parents = sorted((r for r in runs if "mlflow.parentRunId" not in r.data.tags), key=lambda r: r.info.start_time)
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["tasks"] == str(TINY_TASKS)
    found = records.load_records(tiny_lab["results"])
    logged = complete(runs)
    assert len(runs) == len(found) + len(parents) and len(logged) == len(found)
    for record in found:
        run = logged[records.fingerprint(record)]
        carries(run, record)
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
    by_name = {r["name"]: logged[records.fingerprint(r)] for r in found}
    assert artifact_names(uri, by_name["clustered-16-fp32"]) == {
        "clustered-16-fp32.tflite", "clustered-16-fp32-metrics.md", "clustered-16-fp32-confusion-matrix.png",
        "clustered-16-fp32.json"}
    assert "structured-0.5-fp32.onnx" in artifact_names(uri, by_name["structured-0.5"])
    assert by_name["base-fp32"].data.params["settings.train_samples"] == "270"
    assert parent.data.params["tasks"] == str(TINY_TASKS) and parent.data.params["seeds"] == "[42]"
    for record in found:
        assert parent.data.metrics[f"{record['name']}/accuracy"] == record["metrics"]["accuracy"]
    assert {"clustered-16-fp32/delta_pp", "clustered-16-fp32/delta_low_pp"} <= set(parent.data.metrics)
    assert {"README.md", "04_summary.html", "images"} <= artifact_names(uri, parent, "summary")
    assert not [line for line in tiny_lab["log"] if line.startswith("tracking:")]


@pytest.mark.notebook
def test_a_rerun_logs_what_is_missing_and_nothing_twice(tiny_lab, tmp_path):
    folder = copy_results(tiny_lab, tmp_path / "results")
    first = rerun(folder, tiny_lab)  # a store of its own, empty: the skipped notebooks' records are logged now
    assert sum(line.startswith("skip ") for line in first) == 3, first
    uri = tracking.default_store(folder)[0]
    found = records.load_records(folder / "seed-42")
    assert set(complete(runs_in(uri))) == {records.fingerprint(r) for r in found}
    rerun(folder, tiny_lab)
    runs = runs_in(uri)
    assert len(complete(runs)) == len(found) and len(runs) == len(found) + 2  # and a second parent, without runs
    parents = {r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert {r.data.tags.get("mlflow.parentRunId") for r in runs} - {None} < parents


@pytest.mark.parametrize("uri", ["http://127.0.0.1:{port}", "file:///{tmp}/mlruns", "nosuchscheme://tracker"])
def test_a_tracker_that_is_down_or_refuses_costs_one_warning_line_and_seconds(uri, tmp_path):
    uri = uri.format(port=free_port(), tmp=tmp_path)
    tracker, log = tracking.Tracker(uri, results="results/x"), []
    record = {"name": "base-fp32", "key": {"dataset": {"name": "fashion-mnist"}}}
    start = time.monotonic()
    with tracking.lab_run(tracker, "fashion-mnist", {"tasks": ["all"]}, {}, log.append):
        assert tracker.log(tmp_path, [record]) == 0
    assert time.monotonic() - start < 30
    assert len(log) == 1 and log[0].startswith(f"tracking: could not start the lab run's parent run at {uri} ("), log
    assert log[0].endswith("`python -m labkit track results/x` logs them later")


def test_logging_to_a_new_store_prints_nothing(tmp_path):
    code = f"""
import labkit
from pathlib import Path
from labkit.run import tracking
record = {{"name": "base-fp32", "method": "none", "metrics": {{"accuracy": 0.9}}, "created": "2026-01-02T03:04:05",
          "key": {{"dataset": {{"name": "fashion-mnist"}}, "seed": 42}}}}
tracker = tracking.tracker_for(Path({str(tmp_path)!r}))
with tracking.lab_run(tracker, "fashion-mnist", {{"tasks": ["all"]}}, {{}}, print):
    assert tracker.log(Path({str(tmp_path)!r}), [record]) == 1
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (run.stdout, run.stderr) == ("", "")  # no MLflow table lines, links or warnings
    logged = complete(runs_in(tracking.default_store(tmp_path)[0]))
    assert [run.data.metrics["accuracy"] for run in logged.values()] == [0.9]


def test_headline_numbers_go_by_the_names_users_search_for():
    record = {"name": "pruned-0.5-fp32", "metrics": {"accuracy": 0.91, "top_5": 0.99},
              "accuracy_interval": [0.90, 0.92],
              "vs_control": {"control": "control-fp32", "delta_pp": -0.3, "low_pp": -0.6, "high_pp": 0.0,
                             "a_only": 12, "b_only": 42, "p_value": 0.01},
              "size": {"zipped_bytes": 1000, "times_smaller": 1.6}, "latency": {"median_ms": 0.02, "iqr_ms": 0.001},
              "stages": {"pruned": {"flops": 5}}, "eval_seconds": 1.5}
    numbers, _ = tracking.measurements(record)
    assert numbers == {"accuracy": 0.91, "top_5": 0.99, "accuracy_ci_low": 0.90, "accuracy_ci_high": 0.92,
                       "delta_pp": -0.3, "delta_ci_low_pp": -0.6, "delta_ci_high_pp": 0.0, "p_value": 0.01,
                       "only_variant_correct": 12, "only_control_correct": 42, "zipped_bytes": 1000,
                       "times_smaller": 1.6, "latency_ms": 0.02, "latency_iqr_ms": 0.001, "stages.pruned.flops": 5,
                       "eval_seconds": 1.5}


def test_a_database_store_keeps_artifacts_beside_the_results_not_in_the_callers_folder(tmp_path, monkeypatch):
    results, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    results.mkdir()
    elsewhere.mkdir()
    (results / "base-fp32.json").write_text("{}")
    record = {"name": "base-fp32", "method": "none", "metrics": {"accuracy": 0.9}, "created": "2026-01-02T03:04:05",
              "eval_seconds": 2.0, "fine_tuning": {"steps": 10, "seconds": 60.0},
              "key": {"dataset": {"name": "fashion-mnist"}, "seed": 42}}
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'tracker.db'}")
    tracker = tracking.tracker_for(results)
    assert tracker.log(results, [record]) == 1, tracker.failed
    (run,) = runs_in(tracker.uri)
    assert run.info.artifact_uri.startswith((results / "mlflow" / "artifacts").as_uri())
    assert artifact_names(tracker.uri, run) == {"base-fp32.json"}
    assert not (elsewhere / "mlruns").exists()
    assert run.info.end_time - run.info.start_time == 62_000  # fine-tuning and evaluation, ending at `created`
    assert tracking.tracker_for(results, "http://tracker.example:5000").artifacts is None  # the server decides


class Server:
    """`mlflow server` on 127.0.0.1:port with an SQLite backend and its artifacts in `root`, while in the block."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.uri = root, f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true")  # no job runner
        with (root / "server.log").open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                 "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 300  # a loaded 2-core machine can take a minute
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=5):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("mlflow server did not start:\n" + (self.root / "server.log").read_text()[-3000:])
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server and the processes it started; return once they are all gone."""
        import psutil

        if self.process.poll() is None:
            started = psutil.Process(self.process.pid).children(recursive=True)
            self.process.terminate()
            for process in started:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.terminate()
            _, alive = psutil.wait_procs(started, timeout=60)
            for process in alive:
                process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=60)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.mark.notebook
@pytest.mark.server
@pytest.mark.own_lab(reason="an MLflow server stopped as the run's second notebook starts")
@needs(DEBIAN_FASHION, "Debian dataset-fashion-mnist")
def test_a_server_stopped_mid_run_costs_one_warning_and_labkit_track_catches_up(tmp_path):
    (store := tmp_path / "server").mkdir()
    folder = tmp_path / "results"
    port, said = free_port(), []
    with Server(store, port) as server:
        def log(line: str) -> None:  # the server goes down as the run starts its second notebook, 02_pruning
            said.append(line)
            if line.startswith("[2/2] 02_pruning"):
                server.stop()

        runner.run(["clustered-2-fp32", "pruned-0.2-fp32"], results_path=str(folder), test_dataset_fraction=0.05,
                   params={**TINY, "models_dir": str(tmp_path / "models")}, log=log, tracking_uri=server.uri)
        assert server.process.poll() is not None
    warnings = [line for line in said if line.startswith("tracking:")]
    assert len(warnings) == 1 and f"could not log a variant's run at {server.uri}" in warnings[0], said
    found = {r["name"]: r for r in records.load_records(folder / "seed-42")}
    # 01_clustering's, logged before the stop: with the control after as many steps as clustered-2-fp32 took
    first = {"base-fp32", "control-fp32", "clustered-2-fp32", found["clustered-2-fp32"]["vs_control"]["control"]}
    second = set(found) - first  # 02_pruning's records are written as always (its control too, unless 01 made it)
    assert "pruned-0.2-fp32" in second <= {"pruned-0.2-fp32", found["pruned-0.2-fp32"]["vs_control"]["control"]}
    with Server(store, port) as server:
        runs = runs_in(server.uri)
        logged = complete(runs)
        assert set(logged) == {records.fingerprint(found[name]) for name in first}
        for name in first:
            carries(logged[records.fingerprint(found[name])], found[name])
        parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
        assert {r.data.tags["mlflow.parentRunId"] for r in logged.values()} == {parent.info.run_id}
        tracker = tracking.tracker_for(folder, server.uri)
        assert tracking.track(folder, tracker) == (len(second), len(found)) and not tracker.failed
        assert set(complete(runs_in(server.uri))) == {records.fingerprint(r) for r in found.values()}
        assert tracking.track(folder, tracking.tracker_for(folder, server.uri)) == (0, len(found))
