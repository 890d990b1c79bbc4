"""The task runner: the course's task names in, executed notebooks (papermill) and records out.

Tasks: all, clustered-all, pruned-all, clustered-<k>-fp32, pruned-<s>-fp32, quantized-int8,
pruned-<s>-clustered-<k>-fp32, qat-int8, pruned-<s>-pqat-int8, clustered-<k>-cqat-int8,
pruned-<s>-clustered-<k>-pcqat-int8, structured-all, structured-<s>, tp-all, tp-<criterion>-<s>, structured-curve,
summary.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from labkit import parameters
from labkit.data import describe
from labkit.errors import LabkitError, NotWritten
from labkit.lock import hold_folder
from labkit.methods import collaborative
from labkit.methods.compress import check_clusters, check_sparsity
from labkit.methods.tp_pruning import check_criterion
from labkit.models import user_files
from labkit.paths import ROOT, resolve, shown
from labkit.results import book
from labkit.results.scale import QUICK, QUICK_TASKS, QUICK_TEST_FRACTION
from labkit.results.scale import check as check_scale
from labkit.run import tracking
from labkit.run.execution import COURSE_OUTPUTS, Job, execute, notebook_parameters, remove_partial_files

SUMMARY = ROOT / "summaries" / "l03_pruning_clustering"
CLUSTERS = [2, 4, 8, 16, 32]
SPARSITIES = [0.2, 0.4, 0.5]
COMBINED = [0.5, 16]
DEPLOYED = [collaborative.Deployment(clusters=16), collaborative.Deployment(*COMBINED)]  # `all`'s INT8 (CQAT, PCQAT)
DEMO_SPARSITY = 0.5  # what 02 prunes step by step when only a variant built on other parents is asked for
STRUCTURED = [0.25, 0.5, 0.75]  # the sparsity curve of structured pruning, both libraries
LAB_STRUCTURED = 0.5  # the one structured sparsity of `all` (the course's), shown in the executed 03 notebook
TP_CRITERIA = ["magnitude", "taylor"]
SEED = 42  # the notebooks' default seed
NAMED_TASKS = {
    "all": "every task below at its lab scale (structured pruning of both libraries at 0.5 only: the curve's other "
           "points are structured-curve; of the INT8 training paths, CQAT at 16 clusters and PCQAT at 0.5 and 16), "
           "then the summary",
    "clustered-all": "clustered-<k>-fp32 for k in " + ", ".join(map(str, CLUSTERS)),
    "pruned-all": "pruned-<s>-fp32 for s in " + ", ".join(map(str, SPARSITIES)),
    "clustered-<k>-fp32": "weight clustering to k clusters (k >= 2), FP32 TFLite",
    "pruned-<s>-fp32": "magnitude pruning to sparsity s in (0, 1), FP32 TFLite",
    "quantized-int8": "INT8 post-training quantization of the base",
    "pruned-<s>-clustered-<k>-fp32": "pruning then sparsity-preserving clustering",
    "qat-int8": "quantization-aware training of the base, INT8 TFLite (the control of the preserving paths below)",
    "pruned-<s>-pqat-int8": "pruned-<s>-fp32, then quantization-aware training that keeps its zeros (PQAT), INT8",
    "clustered-<k>-cqat-int8": "clustered-<k>-fp32, then quantization-aware training that keeps its centroids "
                               "(CQAT), INT8",
    "pruned-<s>-clustered-<k>-pcqat-int8": "pruned-<s>-clustered-<k>-fp32, then quantization-aware training that "
                                           "keeps both (PCQAT), INT8: TFMOT's deployment tree",
    "structured-all": "structured-<s> for s in " + ", ".join(map(str, STRUCTURED)),
    "structured-<s>": "NNI APoZ structured pruning of the PyTorch CNN to sparsity s, ONNX and TFLite",
    "tp-all": "tp-<c>-<s> for c in " + ", ".join(TP_CRITERIA) + " and s in " + ", ".join(map(str, STRUCTURED)),
    "tp-<c>-<s>": "Torch-Pruning structured pruning with criterion c (magnitude: L2 group norm; taylor: first-order "
                  "Taylor) to sparsity s; runs beside structured-<s>, which it is compared with: the same widths, "
                  "training budget and control",
    "structured-curve": "the sparsity curve of both libraries: structured-all and tp-all",
    "summary": "the lab summary over the records of the run's seeds",
}


@dataclass
class Plan:
    """What to execute: per notebook, the variant parameters it must produce."""

    clusters: list[int] = field(default_factory=list)
    quantize_int8: bool = False
    sparsities: list[float] = field(default_factory=list)
    combined: list[float] = field(default_factory=list)
    structured: list[float] = field(default_factory=list)
    tp: list[tuple[str, float]] = field(default_factory=list)  # (criterion, sparsity); each sparsity in `structured`
    deployed: list[str] = field(default_factory=list)  # collaborative optimization (02), each parent in the plan
    summary: bool = False

    def clustering_names(self) -> list[str]:
        """Variants of 01_clustering."""
        return [f"clustered-{k}-fp32" for k in self.clusters] + (["quantized-int8"] if self.quantize_int8 else [])

    def pruning_names(self) -> list[str]:
        """Variants of 02_pruning."""
        names = [f"pruned-{s:g}-fp32" for s in self.sparsities]
        return names + ([combined_name(*self.combined)] if self.combined else []) + self.deployed

    def structured_names(self, sparsity: float) -> list[str]:
        """Variants of one 03_structured_pruning execution: NNI's at `sparsity`, then Torch-Pruning's."""
        return [f"structured-{sparsity:g}"] + [tp_name(c, s) for c, s in self.tp if s == sparsity]

    def variant_names(self) -> list[str]:
        return (self.clustering_names() + self.pruning_names()
                + [name for s in self.structured for name in self.structured_names(s)])


def lab_tasks() -> list[str]:
    """What `all` stands for: every notebook task at its lab scale, then the summary."""
    return ["clustered-all", "quantized-int8", "pruned-all", combined_name(*COMBINED), *(how.name for how in DEPLOYED),
            f"structured-{LAB_STRUCTURED:g}", *(tp_name(c, LAB_STRUCTURED) for c in TP_CRITERIA), "summary"]


def tp_name(criterion: str, sparsity: float) -> str:
    """The name of a Torch-Pruning variant."""
    return f"tp-{criterion}-{sparsity:g}"


def combined_name(sparsity: float, clusters: int) -> str:
    """The course-style name of a pruned-then-clustered variant."""
    return f"pruned-{sparsity:g}-clustered-{clusters}-fp32"


def _add(items: list, value) -> None:
    if value not in items:
        items.append(value)


def plan_tasks(tasks: list[str]) -> Plan:
    """Turn task names into a plan; an unknown or out-of-range name is a LabkitError before anything runs."""
    plan = Plan()
    for task in (t.strip() for spec in tasks for t in spec.split(",") if t.strip()):
        if task == "all":
            plan = plan_tasks(lab_tasks())
        elif task == "clustered-all":
            for k in CLUSTERS:
                _add(plan.clusters, k)
        elif task == "pruned-all":
            for s in SPARSITIES:
                _add(plan.sparsities, s)
        elif task == "structured-all":
            for s in STRUCTURED:
                _add(plan.structured, s)
        elif task in ("tp-all", "structured-curve"):
            for s in STRUCTURED:
                _add(plan.structured, s)
                for c in TP_CRITERIA:
                    _add(plan.tp, (c, s))
        elif task == "quantized-int8":
            plan.quantize_int8 = True
        elif task == "summary":
            plan.summary = True
        elif collaborative.is_deployment(task):
            _plan_deployment(plan, collaborative.parse(task))
        elif m := re.fullmatch(r"clustered-(-?\d+)-fp32", task):
            _add(plan.clusters, check_clusters(int(m[1])))
        elif m := re.fullmatch(r"pruned-(-?[\d.]+)-clustered-(-?\d+)-fp32", task):
            plan.combined = [check_sparsity(float(m[1])), check_clusters(int(m[2]))]
        elif m := re.fullmatch(r"pruned-(-?[\d.]+)-fp32", task):
            _add(plan.sparsities, check_sparsity(float(m[1])))
        elif m := re.fullmatch(r"structured-(-?[\d.]+)", task):
            _add(plan.structured, check_sparsity(float(m[1])))
        elif m := re.fullmatch(r"tp-([^-]+)-(-?[\d.]+)", task):
            sparsity = check_sparsity(float(m[2]))
            _add(plan.structured, sparsity)
            _add(plan.tp, (check_criterion(m[1]), sparsity))
        else:
            raise LabkitError(f"unknown task {task!r}: see `python -m labkit run --help` for the task names")
    return plan


def _plan_deployment(plan: Plan, how: collaborative.Deployment) -> None:
    """Plan a collaborative-optimization variant with its parent, which the notebooks show before it."""
    if how.sparsity and how.clusters:
        plan.combined = [how.sparsity, how.clusters]
    elif how.sparsity:
        _add(plan.sparsities, how.sparsity)
    elif how.clusters:
        _add(plan.clusters, how.clusters)
    _add(plan.deployed, how.name)


def seeds_of(params: dict[str, Any], seeds: list[int] | None) -> list[int]:
    """The seeds to run: `seeds` (the --seeds option), else `-p seeds=[...]`, else `-p seed=N`, else the default."""
    given, seed = params.pop("seeds", None), params.pop("seed", SEED)
    chosen = seeds or given or [seed]
    chosen = chosen if isinstance(chosen, (list, tuple)) else [chosen]
    if not all(isinstance(s, int) and s >= 0 for s in chosen) or len(set(chosen)) < len(chosen):
        raise LabkitError(f"seeds {chosen!r} must be distinct whole numbers >= 0: use e.g. --seeds 42 43 44")
    return list(chosen)


def jobs_for(plan: Plan, common: dict[str, Any], seeds: list[int], dataset_sha256: str = "") -> list[Job]:
    """The notebook executions a plan needs: the lab's order per seed, one seed after another, then the summary of
    those seeds."""
    from labkit.results.seeds import (
        folder,  # here, not at the top: it imports the plotting stack, the runner starts fast
    )

    jobs, results_dir = [], resolve(common["results_dir"])
    for seed in seeds:
        where, each = folder(results_dir, seed), {**common, "seed": seed}
        if names := plan.clustering_names():
            jobs.append(Job("01_clustering", {**each, "clusters": plan.clusters or [16],
                                              "quantize_int8": plan.quantize_int8}, names, where, "", dataset_sha256))
        if names := plan.pruning_names():
            pruned = plan.sparsities or plan.combined[:1] or [DEMO_SPARSITY]  # 02 prunes one step by step
            jobs.append(Job("02_pruning", {**each, "sparsities": pruned, "combined": plan.combined,
                                           "deployed": plan.deployed}, names, where, "", dataset_sha256))
        jobs += structured_jobs(plan, each, where, dataset_sha256)
    if plan.summary:
        jobs.append(Job("04_summary", {**common, "seeds": seeds}, [], results_dir))
    return jobs


def structured_jobs(plan: Plan, parameters: dict[str, Any], where: Path, dataset_sha256: str) -> list[Job]:
    """One 03_structured_pruning execution per sparsity, Torch-Pruning's criteria beside NNI. The last one is the
    seed's executed notebook (its curve then holds every point): the course's sparsity when planned. The others are
    named after their variant, write none of the course's files, and only add their points."""
    order = sorted(plan.structured, key=lambda s: (s == LAB_STRUCTURED, s))
    jobs = []
    for s in order:
        last = s == order[-1]
        own = {} if last else dict.fromkeys(COURSE_OUTPUTS)
        criteria = [c for c, at in plan.tp if at == s]
        names = plan.structured_names(s)
        jobs.append(Job("03_structured_pruning", {**parameters, **own, "sparsity": s, "tp_criteria": criteria}, names,
                        where, "" if last else f"03_structured_pruning.{names[0]}", dataset_sha256))
    return jobs


def report_names(results_dir: Path, jobs: list[Job], seeds: list[int]) -> list[str]:
    """The HTML reports the run leaves beside the summary: one per executed notebook."""
    from labkit.results.html import reported

    stems = {p.stem for p in reported(results_dir, seeds)} | {job.notebook for job in jobs}
    return [f"{stem}.html" for stem in sorted(stems)]


def export_reports(results_dir: Path, seeds: list[int], summary_dir: Path, log) -> list[Path]:
    """Export the reported notebooks to self-contained HTML files in summary_dir, as part of its summary."""
    from labkit.results.html import export_html, reported
    from labkit.results.summary import claim

    written = []
    for notebook in reported(results_dir, seeds):
        written.append(export_html(notebook, summary_dir / f"{notebook.stem}.html"))
        log(f"report {written[-1]}")
    claim(summary_dir, written)
    return written


def check_params(params: dict[str, Any], jobs: list[Job]) -> None:
    """Every -p NAME must be a parameter of at least one notebook the run executes, and every job's values must pass
    its notebook's schema (labkit.parameters), before anything runs."""
    known = {name for job in jobs for name in notebook_parameters(job.notebook)}
    if unknown := sorted(set(params) - known):
        raise LabkitError(f"unknown parameter {', '.join(unknown)}: the notebooks of this run take "
                          f"{', '.join(sorted(known))}")
    for job in jobs:
        parameters.check(job.notebook, job.parameters)


def clock(seconds: float) -> str:
    """Elapsed time as a clock: 07:05, or 1:26:40 past an hour (a three-seed run takes that long)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def run(tasks: list[str] | None = None, dataset: str | None = None, dataset_root: str | None = None,
        download_dataset: bool = False, results_path: str | None = None, test_dataset_fraction: float = 1.0,
        force: bool = False, params: dict[str, Any] | None = None, summary_path: str | None = None,
        seeds: list[int] | None = None, model_path: str | None = None,
        course_files: dict[str, str | None] | None = None, log=tqdm.write, ray: str | None = None,
        tracking_uri: str | None = None, track: bool = True, scale: str = "full") -> list[Path]:
    """Execute the notebooks the tasks need, once per seed; return the executed notebooks. Validates everything
    first, the user's files included (see labkit.models.user_files).

    The dataset is `dataset`, or recognised from the layout under dataset_root, and described once
    (labkit.data.describe). `model_path` is the user's Keras classifier, the base of the Keras tasks; `course_files`
    holds the course's structured-pruning files (input_model, backup_model, final_model, onnx_model,
    tflite_model), each written by the run or the run fails naming it. Without tasks: all, or structured-0.5 when
    course files are named. Each seed's records go to `<results>/seed-<seed>/`; a record is reused only when its
    key matches this run (labkit.records), else it is computed again and a line says what differed. With the
    summary task, the lab summary (over the run's seeds) and HTML reports of the executed notebooks (the first
    seed's) go to summary_path: by default the committed summary for the lab's default run only, `<results>/summary`
    for any other. With `ray` ("local" for a Ray instance started for the run, else a cluster's address) every
    seed's variants run as Ray tasks (see labkit.run.ray_backend); the summary follows here. Unless `track` is False,
    every record becomes an MLflow run right after the notebook that wrote it, under a parent run that gets the
    summary: at `tracking_uri`, else $MLFLOW_TRACKING_URI, else the results folder's own store (labkit.run.tracking).
    `scale` "quick" is a first look (labkit.results.scale): less data, a short fine-tuning, fewer variants by
    default, its own results folder, and a summary that says its verdicts are not the methods'; the user's settings
    still win.
    """
    quick = check_scale(scale) == "quick"
    course_files = {k: _absolute(v) for k, v in (course_files or {}).items() if v}
    tasks = tasks or ([f"structured-{LAB_STRUCTURED:g}"] if course_files else QUICK_TASKS if quick else ["all"])
    plan = plan_tasks(tasks)
    if not 0 < test_dataset_fraction <= 1:
        raise LabkitError(f"--test-dataset-fraction {test_dataset_fraction} is outside (0, 1]: use e.g. 0.5")
    default = not quick and _is_default(dataset, dataset_root, results_path, test_dataset_fraction, params, model_path,
                                        course_files)
    if quick and test_dataset_fraction == 1.0:
        test_dataset_fraction = QUICK_TEST_FRACTION
    dataset_root, model_path = _absolute(dataset_root), _absolute(model_path)  # the notebooks run in notebooks/
    params = dict(params or {})
    if params.get("weights") not in (None, "none", "imagenet"):
        params["weights"] = _absolute(str(params["weights"]))
    options = {"dataset_root": dataset_root, "model_path": model_path, **course_files}
    parameters.check_given({**{name: value for name, value in options.items() if value}, **params})
    data = describe(dataset, dataset_root, download_dataset)
    if plan.structured and (problem := user_files.structured_problem(data)):
        if any(t.startswith(("structured-", "tp-")) for spec in tasks for t in spec.split(",")) or _outputs(
                course_files):
            raise LabkitError(problem)
        log(f"structured pruning left out of this run: {problem}")
        plan.structured, plan.tp = [], []
    results_dir = Path(results_path or ROOT / "results" / (f"{data.kind}-quick" if quick else data.kind)).resolve()
    summary_dir = Path(summary_path or (SUMMARY if default else results_dir / "summary")).resolve()
    seeds = seeds_of(params, seeds)
    common = {"dataset": data.kind, "dataset_root": dataset_root, "download_dataset": download_dataset,
              "test_dataset_fraction": test_dataset_fraction, "results_dir": shown(results_dir),
              "summary_dir": shown(summary_dir), "models_dir": "models", "force": force,
              "model_path": model_path, **course_files, **(QUICK if quick else {}), **params}
    jobs = jobs_for(plan, common, seeds, data.sha256)
    check_params(params, jobs)
    keras = bool(plan.clustering_names() or plan.pruning_names())
    user_files.check(data, model_path, course_files, keras, bool(plan.structured), params.get("image_size", 128))
    tracker = tracking.tracker_for(results_dir, tracking_uri, "local" if ray is None else "ray") if track else None
    about = {"tasks": tasks, "seeds": seeds, "dataset": data.kind, "dataset.sha256": data.sha256,
             "test_dataset_fraction": test_dataset_fraction, "force": force, **params}
    started = time.time()
    with hold_folder(results_dir), tracking.lab_run(tracker, data.kind, about, {"labkit.results": shown(results_dir)},
                                                    log):
        if stale := remove_partial_files(results_dir):
            log(f"removed {stale} partial file(s) left by a stopped run")
        for job in jobs:
            if job.notebook == "04_summary":
                job.parameters["reports"] = report_names(results_dir, jobs, seeds)
        start, outputs, on_ray = time.monotonic(), [], None
        if ray is not None and (seed_jobs := [j for j in jobs if j.folder != results_dir]):
            from labkit.run.ray_backend import run_on_ray

            on_ray, outputs = run_on_ray(seed_jobs, results_dir, force, ray, log, tracker)
            jobs = [j for j in jobs if j.folder == results_dir]
            for job in jobs:  # the summary says where the seeds ran
                job.parameters["executed_on"] = on_ray
        for i, job in enumerate(jobs, 1):
            elapsed = clock(time.monotonic() - start)
            todo = ", ".join(job.variants) or "all records"
            where = f", {job.folder.name}" if job.folder != results_dir else ""
            log(f"[{i}/{len(jobs)}] {job.notebook}{where}: {todo} (elapsed {elapsed}; then {len(jobs) - i} more)")
            if out := execute(job, force, log):
                outputs.append(out)
            tracking.log_job(tracker, job.folder, job.variants, log)
        if plan.summary:
            export_reports(results_dir, seeds, summary_dir, log)
            book.build(results_dir, seeds, log=log)
            tracking.log_summary(tracker, results_dir, seeds, summary_dir, params.get("margin_pp"), log)
    log(f"done in {clock(time.monotonic() - start)}" + (f" {on_ray}" if on_ray else ""))
    log(produced(results_dir, seeds, summary_dir if plan.summary else None, plan.variant_names()))
    check_written(course_files, started)
    return outputs


def _is_default(dataset: str | None, dataset_root: str | None, results_path: str | None, test_fraction: float,
                params: dict[str, Any] | None, model_path: str | None, course_files: dict[str, str]) -> bool:
    """Whether this is the lab's own default run (`make lab`, at any seeds: the summary names them): the only run
    that writes the committed summary."""
    return (dataset in (None, "fashion-mnist") and not (dataset_root or results_path or params or model_path
                                                         or course_files) and test_fraction == 1.0)


def _outputs(course_files: dict[str, str]) -> list[str]:
    return [name for name in user_files.COURSE_OUTPUTS if course_files.get(name)]


def check_written(course_files: dict[str, str], since: float) -> None:
    """Every output file the user named was written by this run; one that was not ends the run with its name."""
    missing = [f"--{name.replace('_', '-')} {course_files[name]}" for name in _outputs(course_files)
               if not Path(course_files[name]).is_file() or Path(course_files[name]).stat().st_mtime < since - 1]
    if missing:
        raise NotWritten(f"not written: {', '.join(missing)}; the structured-pruning notebook did not produce "
                         "them (see its executed notebook in the results folder)")


def _absolute(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def produced(results_dir: Path, seeds: list[int], summary_dir: Path | None, variants: list[str]) -> str:
    """The closing table of a run: each seed's variants with their record and files, the reports, the summary."""
    from labkit.records import record_path
    from labkit.results.seeds import folder

    lines = [f"results in {results_dir}:"]
    for seed in seeds:
        where = folder(results_dir, seed)
        for name in variants:
            path = record_path(where, name)
            state = f"{len(list(where.glob(name + '*')))} files" if path.is_file() else "not produced"
            lines.append(f"  {where.name}/{name:34s} {state}")
    if summary_dir:
        lines.append(f"summary and HTML reports in {summary_dir}:")
        lines += [f"  {p.name:34s} {p.stat().st_size / 1024:8.0f} KB" for p in sorted(summary_dir.glob("*.*"))
                  if not p.name.startswith(".")]
    return "\n".join(lines)
