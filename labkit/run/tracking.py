"""Experiment tracking: every variant record an MLflow run, the runs of one lab run under one parent run.

Each record becomes one run right after the notebook that wrote it: its key (data, selection, seed, base, settings,
libraries) as parameters, every number it holds as metrics (the headline ones under the names users search by:
`accuracy`, `accuracy_ci_low`, `delta_pp`, `zipped_bytes`, `latency_ms`), tags that say what it is and where it
ran, its files as artifacts, and its fine-tuning and evaluation time as the run's duration. The lab summary goes on
the parent run. Without configuration the runs go to a local store in the results folder (`<results>/mlflow/`: an
SQLite database with the artifacts beside it); MLFLOW_TRACKING_URI or --tracking-uri send them to any tracking
server, or to a database whose new experiments keep their artifacts beside the results too (never in the caller's
`./mlruns`).

Logging never costs a result. A tracker that is down or refuses costs one warning line and is not tried again in
that run (MLflow's own retries are bounded to seconds); records and reports are written as always, and
`python -m labkit track <results>` logs later what is missing. Every run carries the digest of its record (tag
`labkit.record`, set last, once the run is complete) and of its key (`labkit.key`): a record already logged is
never logged twice, and one made again (--force) is a new run.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import labkit
from labkit.files import read_json
from labkit.paths import shown
from labkit.records import Record, digest, family, fingerprint, load_records, read_record
from labkit.results.stats import MARGIN_PP

STORE = "mlflow"  # the default store's folder in the results folder
RECORD_TAG, KEY_TAG = "labkit.record", "labkit.key"
# Defaults for MLflow, unless the environment sets them. It retries a request 7 times over minutes, each with a
# 120 s timeout: a tracker that is down must cost seconds. It sends usage data to its makers: not from the lab.
ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10", "MLFLOW_DISABLE_TELEMETRY": "true"}
# MLflow's UI opens an experiment of this kind on its runs (the default kind opens on GenAI traces).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development",
                   "mlflow.note.content": "Every variant of the labkit lab as a run, under the lab run that made it."}
PARAM_LENGTH, NAME_LENGTH = 6000, 250  # MLflow's limits: a parameter's value, a name
NOT_LOGGED = ("name", "method", "params", "files", "created", "key", "dataset",  # logged as tags, settings, key
              "micro")  # TFLM's measurement: beside the record, not in it (load_records attaches it)
# A record's headline numbers under the names users search for; the other numbers of these groups lose the group's
# prefix (`size.zipped_bytes` -> `zipped_bytes`), latency's gain `latency_`; every other number keeps its path.
RENAMED = {"accuracy_interval.low": "accuracy_ci_low", "accuracy_interval.high": "accuracy_ci_high",
           "vs_control.low_pp": "delta_ci_low_pp", "vs_control.high_pp": "delta_ci_high_pp",
           "vs_control.a_only": "only_variant_correct", "vs_control.b_only": "only_control_correct",
           "latency.median_ms": "latency_ms"}
UNPREFIXED = ("metrics.", "size.", "vs_control.")
SERVERS = ("http", "https", "databricks")  # tracking URIs whose server decides where artifacts go


@dataclass
class Tracker:
    """Where runs are logged (an MLflow tracking URI, and the artifact root of an experiment it creates), the parent
    run of the lab run, where the records were made ("local", "ray"), and the first failure: once that is set,
    nothing more is tried."""

    uri: str
    artifacts: str | None = None
    where: str = "local"
    results: str = "<results>"  # the results folder, as `labkit track` is told it
    parent: str | None = None
    failed: str = ""
    warned: bool = False
    experiments: dict[str, str] = field(default_factory=dict)

    def attempt(self, what: str, step: Callable[[], Any]) -> Any:
        """Run one step unless the tracker failed before; a failure turns it off for the rest of the run."""
        if self.failed:
            return None
        try:
            return step()
        except Exception as err:  # a tracker that is down, refuses or answers nonsense: the run goes on
            self.failed = f"could not {what} at {self.uri} ({_reason(err)})"
            return None

    def tell(self, log: Callable[[str], Any]) -> None:
        """Log the one warning line of a failed tracker, the first time only."""
        if self.failed and not self.warned:
            self.warned = True
            log(f"tracking: {self.failed}; nothing more is logged in this run, its records and reports are written "
                f"as always: `python -m labkit track {self.results}` logs them later")

    def adopt(self, failure: str, log: Callable[[str], Any]) -> None:
        """Take on the failure met by a copy of this tracker (in a Ray unit), and warn once."""
        self.failed = self.failed or failure
        self.tell(log)

    def start(self, dataset: str, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        """Open the lab run's parent run, in the lab's experiment for the dataset."""
        def step() -> str:
            client = _client(self.uri)
            run = client.create_run(self.experiment(dataset), run_name=name,
                                    tags={**tags, "labkit.version": labkit.__version__, "labkit.where": self.where})
            client.log_batch(run.info.run_id, params=_params(params))
            return run.info.run_id

        self.parent = self.attempt("start the lab run's parent run", step)

    def log(self, folder: Path, found: list[Record]) -> int:
        """Log each record of `folder` that the tracker does not hold yet as a run (under the parent run, if any);
        return how many were logged."""
        def step() -> int:
            missing = [record for record in found if not self.logged(record)]
            for record in missing:
                self._log_one(Path(folder), record)
            return len(missing)

        return self.attempt("log a variant's run", step) or 0

    def summarise(self, results_dir: Path, seeds: list[int], summary_dir: Path, margin_pp: float) -> None:
        """Log the lab summary on the parent run: each variant's numbers over the seeds (see summary_metrics) and
        the summary's files (its README, pictures and HTML reports)."""
        def step() -> None:
            from labkit.results import seeds as runs

            client = _client(self.uri)
            numbers = summary_metrics(runs.load(results_dir, seeds), margin_pp)
            client.log_batch(self.parent, metrics=_metrics(numbers, int(time.time() * 1000)))
            for path, folder in summary_files(summary_dir):
                client.log_artifact(self.parent, str(path), folder)

        if self.parent:
            self.attempt("log the lab run's summary", step)

    def end(self, status: str) -> None:
        """Close the parent run: FINISHED, FAILED, or KILLED for a stopped run."""
        def step() -> None:
            _client(self.uri).set_terminated(self.parent, status)

        if self.parent:
            self.attempt("close the lab run's parent run", step)

    def experiment(self, dataset: str) -> str:
        """The id of the lab's experiment for a dataset ($MLFLOW_EXPERIMENT_NAME, else `labkit-<dataset>`)."""
        from mlflow.exceptions import MlflowException

        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or f"labkit-{dataset}"
        if name not in self.experiments:
            client = _client(self.uri)
            try:
                found = client.get_experiment_by_name(name)
                self.experiments[name] = (found.experiment_id if found else
                                          client.create_experiment(name, self.artifacts, EXPERIMENT_TAGS))
            except MlflowException:  # made meanwhile by another unit of the run
                self.experiments[name] = client.get_experiment_by_name(name).experiment_id
        return self.experiments[name]

    def logged(self, record: Record) -> bool:
        """Whether the tracker holds a complete run of this record (one that carries its digest)."""
        return bool(_client(self.uri).search_runs([self.experiment(record["key"]["dataset"]["name"])],
                                                  f"tags.`{RECORD_TAG}` = '{fingerprint(record)}'", max_results=1))

    def _log_one(self, folder: Path, record: Record) -> None:
        client, key = _client(self.uri), record["key"]
        tags = {"method": record["method"], "variant": record["name"], "seed": str(key["seed"]),
                "dataset": key["dataset"]["name"], "labkit.version": labkit.__version__, "labkit.where": self.where,
                "labkit.host": socket.gethostname(), KEY_TAG: digest(key)}
        if self.parent:
            tags["mlflow.parentRunId"] = self.parent
        start, end = span(record)
        run = client.create_run(self.experiment(key["dataset"]["name"]), start_time=start, tags=tags,
                                run_name=f"{record['name']} · seed {key['seed']}")
        numbers, described = measurements(record)
        client.log_batch(run.info.run_id, metrics=_metrics(numbers, end), params=_params({**described, **key}))
        for path in artifacts(folder, record):
            client.log_artifact(run.info.run_id, str(path))
        client.set_tag(run.info.run_id, RECORD_TAG, fingerprint(record))  # last: the run is complete
        client.set_terminated(run.info.run_id, "FINISHED", end_time=end)


def default_store(results_dir: Path) -> tuple[str, str]:
    """The local store of a results folder, as URIs: an SQLite database, `<results>/mlflow/mlflow.db`, and the
    artifact root beside it, `<results>/mlflow/artifacts/`."""
    store = Path(results_dir).resolve() / STORE
    return f"sqlite:///{store / 'mlflow.db'}", (store / "artifacts").as_uri()


def tracker_for(results_dir: Path, uri: str | None = None, where: str = "local") -> Tracker:
    """Where a run's records are logged: `uri`, else $MLFLOW_TRACKING_URI, else the results folder's local store.
    An experiment the lab creates in a database (not on a tracking server, which keeps artifacts where it is told)
    keeps its artifacts in `<results>/mlflow/artifacts/`: MLflow's default is `./mlruns` of whatever folder the run
    started in. An experiment that exists keeps the artifact location it was made with (name yours with
    MLFLOW_EXPERIMENT_NAME)."""
    local_uri, local_artifacts = default_store(results_dir)
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or local_uri
    on_server = uri.partition(":")[0].lower() in SERVERS
    return Tracker(uri, None if on_server else local_artifacts, where=where, results=shown(results_dir))


@contextmanager
def lab_run(tracker: Tracker | None, dataset: str, params: dict[str, Any], tags: dict[str, str],
            log: Callable[[str], Any]) -> Iterator[Tracker | None]:
    """A lab run's parent run around the block: opened first, closed when the block ends (FINISHED; KILLED when the
    run was stopped; else FAILED). The warning of a tracker that fails is logged once."""
    if tracker is None:
        yield None
        return
    tracker.start(dataset, f"lab run {time.strftime('%Y-%m-%d %H:%M:%S')}", params, tags)
    tracker.tell(log)
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.end(status)
        tracker.tell(log)


def log_job(tracker: Tracker | None, folder: Path, variants: list[str], log: Callable[[str], Any]) -> None:
    """Right after a notebook execution (or its skip): log the records it stands for that are not logged yet."""
    if tracker is not None:
        tracker.log(folder, job_records(folder, variants))
        tracker.tell(log)


def log_summary(tracker: Tracker | None, results_dir: Path, seeds: list[int], summary_dir: Path,
                margin_pp: float | None, log: Callable[[str], Any]) -> None:
    """Once the summary is written: log it on the lab run's parent run (see Tracker.summarise)."""
    if tracker is not None:
        tracker.summarise(results_dir, seeds, summary_dir, MARGIN_PP if margin_pp is None else margin_pp)
        tracker.tell(log)


def job_records(folder: Path, variants: list[str]) -> list[Record]:
    """The records a notebook execution stands for: its variants and their INT8 twins (structured pruning's), each
    after the base and the controls it was measured against (the control its key names and, for a variant fine-tuned
    to recovery, the control after as many steps). Records without a key (an older labkit's) are left out: a run
    makes them again."""
    names: list[str] = []
    twins = [name.removesuffix("-fp32") + "-int8" for name in variants]
    for name in [*variants, *(twin for twin in twins if read_record(folder, twin))]:
        record = read_record(folder, name) or {}
        controls = [((record.get("key") or {}).get("control") or {}).get("name"),
                    (record.get("vs_control") or {}).get("control")]
        base = "torch-base-fp32" if record and family(record) == "torch" else "base-fp32"
        names += [base, *filter(None, controls), name]
    found = [read_record(folder, name) for name in dict.fromkeys(names)]
    return [r for r in found if r and r.get("key")]


def track(results_dir: Path, tracker: Tracker) -> tuple[int, int]:
    """Log every record under a results folder (in its seed folders, or in the folder itself) that the tracker does
    not hold yet, under one parent run of its own; return how many were logged and how many records there are.
    A failure leaves `tracker.failed` set."""
    folders = [f for f in (Path(results_dir), *sorted(Path(results_dir).glob("seed-*"))) if f.is_dir()]
    found = {folder: [r for r in load_records(folder) if r.get("key")] for folder in folders}
    total = sum(map(len, found.values()))
    missing = tracker.attempt("look for the runs it holds", lambda: [
        r for records in found.values() for r in records if not tracker.logged(r)])
    if not missing:
        return 0, total
    tracker.start(missing[0]["key"]["dataset"]["name"], f"labkit track {time.strftime('%Y-%m-%d %H:%M:%S')}",
                  {"results": shown(results_dir), "records": total, "missing": len(missing)},
                  {"labkit.logged_by": "track"})
    count = sum(tracker.log(folder, records) for folder, records in found.items())
    tracker.end("FAILED" if tracker.failed else "FINISHED")
    return count, total


def summary_metrics(records: list[Record], margin_pp: float) -> dict[str, float]:
    """Per variant of the summary (records combined over the seeds): accuracy and its spread over the seeds, zipped
    size reduction, batch-1 latency, and the comparison with its control: Δ with its 95 % interval and whether it
    is within the non-inferiority margin (1 or 0). Named `<variant>/<number>`."""
    from labkit.results import report

    tests, numbers = report.tested(records, margin_pp), {}
    for r in records:
        name = r["name"]
        numbers.update({f"{name}/accuracy": r["metrics"]["accuracy"],
                        f"{name}/times_smaller": r["size"]["times_smaller"],
                        f"{name}/latency_median_ms": r["latency"]["median_ms"]})
        if "by_seed" in r:
            numbers[f"{name}/accuracy_std"] = r["by_seed"]["accuracy_std"]
        if test := tests.get(name):
            numbers.update({f"{name}/delta_pp": test["delta_pp"], f"{name}/delta_low_pp": test["low_pp"],
                            f"{name}/delta_high_pp": test["high_pp"],
                            f"{name}/within_margin": float(test["within_margin"])})
    return numbers


def summary_files(summary_dir: Path) -> list[tuple[Path, str]]:
    """The files the last summary wrote in its folder (its README, pictures and HTML reports), each with the
    artifact folder it goes to on the parent run."""
    from labkit.results.summary import MANIFEST

    manifest = Path(summary_dir) / MANIFEST
    listed = read_json(manifest)["files"] if manifest.is_file() else []
    return [(Path(summary_dir) / name, str(Path("summary") / Path(name).parent)) for name in listed
            if (Path(summary_dir) / name).is_file()]


def measurements(record: Record) -> tuple[dict[str, float | list[float]], dict[str, Any]]:
    """A record's numbers as metrics (the base's training history as series, one step per epoch) and its other
    values as parameters: its settings (`settings.*`), the runtimes of its timings, its notes. Its key is
    logged apart, as parameters under their own names."""
    params = record.get("params") or {}
    measured = {k: v for k, v in record.items() if k not in NOT_LOGGED}
    if interval := record.get("accuracy_interval"):
        measured["accuracy_interval"] = {"low": interval[0], "high": interval[1]}
    measured["history"] = params.get("history", {})
    numbers, described = {}, {f"settings.{k}": v for k, v in _leaves(params) if not k.startswith("history.")}
    for name, value in _leaves(measured):
        series = name.startswith("history.") and isinstance(value, list) and all(map(_number, value))
        if ".runtime." not in f".{name}." and (_number(value) or series):
            numbers[metric_name(name)] = value
        elif value not in (None, [], {}):
            described[name] = value
    return numbers, described


def metric_name(path: str) -> str:
    """The metric name of a number at `path` in a record: `metrics.accuracy` -> `accuracy`,
    `accuracy_interval.low` -> `accuracy_ci_low`, `vs_control.delta_pp` -> `delta_pp`, `size.zipped_bytes` ->
    `zipped_bytes`, `latency.median_ms` -> `latency_ms`; any other number keeps its path (`stages.pruned.flops`)."""
    if path in RENAMED:
        return RENAMED[path]
    if path.startswith("latency."):
        return "latency_" + path.removeprefix("latency.")
    group = next((g for g in UNPREFIXED if path.startswith(g)), "")
    return path.removeprefix(group)


def span(record: Record) -> tuple[int, int]:
    """A record's run as MLflow times it, start and end in milliseconds: it ends when the record was written and
    lasts what the record measured of its making, its fine-tuning and its evaluation."""
    end = _millis(record.get("created"))
    seconds = (record.get("fine_tuning") or {}).get("seconds", 0.0) + record.get("eval_seconds", 0.0)
    return end - round(1000 * seconds), end


def artifacts(folder: Path, record: Record) -> list[Path]:
    """The files of a record that its run keeps: the model (.tflite, and the ONNX file beside it for the PyTorch
    models), the metrics markdown, the confusion matrix and the record itself."""
    tflite = [Path(name) for name in record.get("files", []) if name.endswith(".tflite")]
    names = [record["name"] + suffix for suffix in ("-metrics.md", "-confusion-matrix.png", ".json")]
    names += [p.name for p in tflite] + [p.with_suffix(".onnx").name for p in tflite]
    return [Path(folder) / name for name in dict.fromkeys(names) if (Path(folder) / name).is_file()]


@functools.cache
def _client(uri: str) -> Any:
    """One MLflow client per tracking URI, its retries bounded and its telemetry off first (see ENVIRONMENT)."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    from mlflow import MlflowClient

    return MlflowClient(uri)


def _reason(err: BaseException) -> str:
    """What went wrong, in a short line: the innermost OS error (a refused connection, a timeout) when there is one,
    else the error itself."""
    chain = [err]
    while (deeper := chain[-1].__cause__ or chain[-1].__context__) and len(chain) < 20:
        chain.append(deeper)
    err = next((e for e in reversed(chain) if isinstance(e, OSError)), err)
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:160]}{'…' * (len(text) > 160)}"


def _millis(created: str | None) -> int:
    """A record's creation time (local time, as records keep it) in milliseconds since the epoch."""
    if not created:
        return int(time.time() * 1000)
    return int(time.mktime(time.strptime(created, "%Y-%m-%dT%H:%M:%S")) * 1000)


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and (value or not prefix):  # an empty dict inside is a value; at the top, nothing
        for name, item in value.items():
            yield from _leaves(item, f"{prefix}{name}.")
    else:
        yield prefix.rstrip("."), value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _name(name: str) -> str:
    """A name as MLflow takes it: letters, digits, _ - . / : and spaces, at most 250 characters."""
    return re.sub(r"[^\w.\- /:]", "_", name)[:NAME_LENGTH]


def _params(values: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(_name(name), str(value)[:PARAM_LENGTH]) for name, value in _leaves(values)]


def _metrics(values: dict[str, float | list[float]], when: int) -> list[Any]:
    from mlflow.entities import Metric

    return [Metric(_name(name), float(number), when, step) for name, value in values.items()
            for step, number in enumerate(value if isinstance(value, list) else [value])]
