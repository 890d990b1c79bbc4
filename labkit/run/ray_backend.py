"""Sweeps on Ray: every seed's notebooks split into units of one variant each, run as Ray tasks.

A unit is the same notebook executed by papermill with parameters that select its variant, so executed notebooks
stay the product. Per seed, the first Keras unit trains (or loads) the base and writes the base and control records;
the other Keras units start after it and only read them. Once a notebook's units are done, the whole notebook runs
once more over the finished records (nothing is trained again) as the seed's report, named as in a sequential run.
Structured-pruning units of one seed run one after another (they share the PyTorch base and control files); the last
is the seed's report, its sparsity curve holding every point.

Every task reads and writes the results and models folders by path, as a sequential run does: on a cluster of
several machines they must be shared storage (NFS or similar) mounted at the same path on every node, with the
project at the same path too. A task checks that first and stops with one line if not. Ray retries a task whose
worker or node is lost (`max_retries`); a failed notebook is not retried, its unit is reported and its partly
executed notebook kept.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError, UnitFailed
from labkit.methods import collaborative
from labkit.paths import pythonpath, resolve
from labkit.records import record_path
from labkit.run.execution import Job, execute, stale_lines
from labkit.run.tracking import Tracker, job_records

KERAS = ("01_clustering", "02_pruning")
MAX_RETRIES = 3  # a unit whose worker or node dies is run again this many times
MARKER = ".labkit-ray-run-"  # + run id: the driver's mark in the results and models folders; every task checks it


@dataclass
class Unit:
    """One Ray task: a notebook execution producing some variants of one seed, after the units named in `after`."""

    job: Job
    after: list[str] = field(default_factory=list)
    report: bool = False  # the whole notebook over finished records: the seed's report notebook

    @property
    def name(self) -> str:
        return f"{self.job.folder.name}/{self.job.output or self.job.notebook}"

    def kept(self) -> Path:
        """Where the partly executed notebook of a failed unit stays."""
        return self.job.folder / "notebooks" / f"{self.job.output or self.job.notebook}.running.ipynb"


def split(job: Job) -> list[Job]:
    """A Keras notebook job as jobs of one variant each: 01 per cluster count (INT8 with the first), 02 per sparsity
    (the pruned-then-clustered variant with the first, a collaborative-optimization variant with its pruned parent,
    or with the first when its parent is not one of them). A job that does not split is returned as it is."""
    p = job.parameters
    if job.notebook == "01_clustering":
        parts = [({"clusters": [k], "quantize_int8": p["quantize_int8"] and i == 0},
                  [f"clustered-{k}-fp32"] + (["quantized-int8"] if p["quantize_int8"] and i == 0 else []))
                 for i, k in enumerate(p["clusters"])]
    else:
        combined = [v for v in job.variants if "-clustered-" in v and not collaborative.is_deployment(v)]
        pruned = [f"pruned-{s:g}-fp32" for s in p["sparsities"]]
        parents = {d: collaborative.parse(d).parent for d in p.get("deployed", [])}
        parts = []
        for i, s in enumerate(p["sparsities"]):
            mine = [d for d, up in parents.items() if up == pruned[i] or (i == 0 and up not in pruned)]
            parts.append(({"sparsities": [s], "combined": p["combined"] if i == 0 else [], "deployed": mine},
                          [pruned[i], *(combined if i == 0 else []), *mine]))
    if len(parts) < 2:
        return [job]
    return [replace(job, parameters={**p, **changed}, variants=[v for v in names if v in job.variants],
                    output=f"{job.notebook}.{names[0]}") for changed, names in parts]


def units_for(jobs: list[Job]) -> list[Unit]:
    """The units of the seeds' jobs, each after the units it needs (dependencies come first in the list)."""
    units: list[Unit] = []
    for folder in dict.fromkeys(job.folder for job in jobs):
        first: str | None = None
        for job in (j for j in jobs if j.folder == folder and j.notebook in KERAS):
            parts = [Unit(part) for part in split(job)]
            for unit in parts:
                unit.after = [first] if first else []
                first = first or unit.name
            for unit in parts:  # a variant built on a parent another unit makes (CQAT on 01's clustering) waits for it
                parents = _parents(unit.job)
                unit.after += [other.name for other in units if not other.report and other.job.folder == folder
                               and parents & set(other.job.variants) and other.name not in unit.after]
            units += parts
            if len(parts) > 1:
                units.append(Unit(job, [u.name for u in parts], report=True))
        previous: list[str] = []
        for job in (j for j in jobs if j.folder == folder and j.notebook not in KERAS):
            units.append(Unit(job, previous))  # named by the runner: the last one is the seed's report
            previous = [units[-1].name]
    return units


def _parents(job: Job) -> set[str]:
    """The parents of a job's collaborative-optimization variants."""
    return {collaborative.parse(v).parent for v in job.variants if collaborative.is_deployment(v)}


def critical_path(units: list[Unit], seconds: dict[str, float]) -> tuple[float, list[str]]:
    """The longest chain of dependent units by measured time: no number of nodes finishes the run faster."""
    best: dict[str, tuple[float, list[str]]] = {}
    for unit in units:  # dependencies come first
        before = max((best[name] for name in unit.after), default=(0.0, []))
        best[unit.name] = (before[0] + seconds.get(unit.name, 0.0), [*before[1], unit.name])
    return max(best.values(), default=(0.0, []))


def run_unit(job: Job, rerun: bool, report: bool, setting: dict[str, Any], queue: Any,
             *needed: tuple[str | None, float, str]) -> tuple[str | None, float, str]:
    """In a Ray worker: execute one unit's notebook and log its records (labkit.run.tracking) from here; return the
    executed notebook (None if skipped), its time, and the tracker's failure ("" when it logged, or was off).

    `needed` are the results of the units it runs after; a report unit runs again when any of them ran.
    """
    import papermill as pm
    import ray
    from nbclient.exceptions import DeadKernelError

    start = time.monotonic()
    queue.put((job.folder.name, job.output or job.notebook, ray.get_runtime_context().get_node_id()))
    for folder in (setting["results"], setting["models"]):
        if not (Path(folder) / f"{MARKER}{setting['run']}").is_file():
            raise LabkitError(f"{folder} on node {ray.util.get_node_ip_address()} is not the driver's folder: put "
                              "the project, results and models on storage shared by every node, at the same path")
    # Ray sets OMP_NUM_THREADS=1 in its workers: the kernel gets the driver's setting back, so that a unit computes
    # exactly what the same notebook computes in a sequential run.
    if setting["threads"] is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = setting["threads"]
    try:
        output = execute(job, rerun or (report and any(result[0] for result in needed)), print)
    except pm.PapermillExecutionError as err:
        raise UnitFailed(f"{err.ename}: {err.evalue} (notebook cell {err.exec_count})") from None
    except DeadKernelError:
        raise UnitFailed("the notebook kernel died (killed, or out of memory)") from None
    if tracker := setting["tracker"]:
        tracker.log(job.folder, job_records(job.folder, job.variants))
    return (str(output) if output else None), time.monotonic() - start, tracker.failed if tracker else ""


def connect(address: str) -> str:
    """Start a local Ray instance ("local") or join the cluster at `address`; say where the units will run.

    A local instance keeps Ray's token authentication on and listens on the loopback interface only.
    """
    env = {"PYTHONPATH": pythonpath()}
    if lock := os.environ.get("LABKIT_RUN_LOCK"):
        env["LABKIT_RUN_LOCK"] = lock  # kernels join the run's lock, as in a sequential run
    if address == "local":
        if os.environ.setdefault("RAY_AUTH_MODE", "token") != "token":
            raise LabkitError(f"RAY_AUTH_MODE={os.environ['RAY_AUTH_MODE']}: labkit starts Ray only with token "
                              "authentication; unset RAY_AUTH_MODE")
        # Ray advertises (and binds) the loopback address only when it is not set up as a cluster; read at import.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    stop = signal.getsignal(signal.SIGTERM)  # ray.init makes SIGTERM exit the driver at once: keep the run's stop
    try:
        _init(ray, address, env)
    except Exception as err:  # Ray raises a bare Exception when its node does not start within 30 s
        why = str(err).splitlines()[0]
        if address == "local":
            raise LabkitError(f"a local Ray instance did not start ({why}): see /tmp/ray/session_latest/logs") from None
        raise LabkitError(f"cannot reach Ray at {address} ({why}): start the cluster (`ray start --head`) or check "
                          "--ray-address") from None
    finally:
        signal.signal(signal.SIGTERM, stop)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    cpus = int(ray.cluster_resources().get("CPU", 0))
    where = "a local Ray instance" if address == "local" else f"the Ray cluster at {address}"
    return f"on {where}: {len(nodes)} node{'s' * (len(nodes) != 1)}, {cpus} CPUs"


def _init(ray: Any, address: str, env: dict[str, str]) -> None:
    """ray.init; a local instance that times out gets a second try: Ray gives its node a fixed 30 s to start, and a
    busy laptop can need more."""
    options = {"include_dashboard": False, "runtime_env": {"env_vars": env}, "log_to_driver": False,
               "logging_level": "WARNING", **({"object_store_memory": 128 * 2**20} if address == "local" else {})}
    try:
        ray.init(address=address, **options)
    except Exception as err:
        if address != "local" or "timed out during startup" not in str(err):
            raise
        ray.shutdown()
        ray.init(address=address, **options)


def run_on_ray(jobs: list[Job], results_dir: Path, force: bool, address: str, log,
               tracker: Tracker | None = None) -> tuple[str, list[Path]]:
    """Run the seeds' jobs as Ray units with progress per unit; return where they ran and the executed notebooks.
    Each unit logs its records to `tracker` (under its parent run) where it runs.

    Raises UnitFailed naming every failed unit, once every unit that could run has run.
    """
    units = units_for(jobs)
    run = uuid.uuid4().hex
    models = resolve(jobs[0].parameters["models_dir"]) if jobs else results_dir
    marks = [results_dir / f"{MARKER}{run}", models / f"{MARKER}{run}"]
    if force:
        redo(units)
    try:
        for mark in marks:
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        where = connect(address)
        import ray  # after connect: it sets what Ray reads when imported

        try:
            log(f"running {len(units)} unit{'s' * (len(units) != 1)} {where}")
            return where, _follow(units, force, run, results_dir, models, log, tracker)
        finally:
            ray.shutdown()
    finally:
        for mark in marks:
            mark.unlink(missing_ok=True)


def redo(units: list[Unit]) -> None:
    """--force on Ray: remove the Keras records the units will write again (their variants, each seed's base and
    controls), so that the units that share them do not all rewrite them. Structured units redo their stages."""
    for unit in units:
        if unit.job.notebook in KERAS:
            names = [*unit.job.variants, "base-fp32", *(p.stem for p in unit.job.folder.glob("control-*-fp32.json"))]
            for name in names:
                record_path(unit.job.folder, name).unlink(missing_ok=True)
            unit.job = replace(unit.job, parameters={**unit.job.parameters, "force": False})


def _follow(units: list[Unit], force: bool, run: str, results_dir: Path, models: Path, log,
            tracker: Tracker | None) -> list[Path]:
    """Submit every unit, then report each one as it starts, finishes or fails."""
    import ray
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})  # lives with the driver
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(run_unit)
    setting = {"threads": os.environ.get("OMP_NUM_THREADS"), "run": run, "results": str(results_dir),
               "models": str(models), "tracker": tracker}
    refs: dict[str, Any] = {}
    for unit in units:
        refs[unit.name] = task.options(name=unit.name).remote(unit.job, force, unit.report, setting, queue,
                                                              *(refs[name] for name in unit.after))
    named = {ref: unit for unit, ref in zip(units, refs.values(), strict=True)}
    state = dict.fromkeys(refs, "waiting")
    starts: dict[str, int] = {}
    outputs, seconds, failed = [], {}, {}
    pending = list(refs.values())
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
        for folder, output, node in queue.get_nowait_batch(queue.qsize()):
            name = f"{folder}/{output}"
            starts[name] = starts.get(name, 0) + 1
            state[name] = "running"
            again = " (again: its worker was lost)" if starts[name] > 1 else ""
            log(f"running {name} on node {node[:8]}{again} [{_counts(state)}]")
        for ref in done:
            unit = named[ref]
            try:
                output, seconds[unit.name], failure = ray.get(ref)
            except ray.exceptions.RayError as err:
                # an upstream failure reaches its dependents too, and may be reported before the upstream's own
                upstream = [n for n in unit.after if state[n] == "failed" or _failed(refs[n])]
                state[unit.name] = "failed"
                failed[unit.name] = _reason(unit, err, upstream)
                log(f"failed {unit.name}: {failed[unit.name]} [{_counts(state)}]")
                continue
            state[unit.name] = "done"
            if failure and tracker:
                tracker.adopt(failure, log)
            outputs += [Path(output)] if output else []
            for line in stale_lines(Path(output)) if output else []:
                log(line)
            said = f"in {seconds[unit.name]:.0f} s" if output else "already done, skipped"
            log(f"done {unit.name} {said} [{_counts(state)}]")
    if failed:
        raise UnitFailed("; ".join(f"{name}: {failed[name]}" for name in refs if name in failed))
    from labkit.run.execution import remove_partial_files

    remove_partial_files(results_dir)  # left by the kernel of a lost worker
    total, path = critical_path(units, seconds)
    log(f"critical path {total:.0f} s: " + " -> ".join(f"{name} ({seconds.get(name, 0):.0f} s)" for name in path))
    return outputs


def _counts(state: dict[str, str]) -> str:
    values = list(state.values())
    return ", ".join(f"{values.count(s)} {s}" for s in ("done", "running", "waiting", "failed") if values.count(s))


def _failed(ref: Any) -> bool:
    """Whether a unit's result is an error already (it is, for the upstream of a unit that failed through it)."""
    import ray

    if not ray.wait([ref], timeout=0)[0]:
        return False
    try:
        ray.get(ref)
    except ray.exceptions.RayError:
        return True
    return False


def _reason(unit: Unit, err: BaseException, upstream: list[str]) -> str:
    import ray

    if upstream:
        return f"not run, it needs {', '.join(upstream)}"
    if not isinstance(err, ray.exceptions.RayTaskError):  # lost more often than it is retried
        return f"lost its worker {MAX_RETRIES + 1} times ({type(err).__name__})"
    cause = err.cause
    if isinstance(cause, LabkitError):
        return str(cause)
    what = str(cause) if isinstance(cause, UnitFailed) else f"{type(cause).__name__}: {cause}"
    return f"{what}; its notebook is kept as {unit.kept()}"
