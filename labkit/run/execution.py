"""Notebook executions: one notebook run by papermill with its parameters, into a results folder.

The runner plans them (labkit.run.runner) and runs them one after another; labkit.run.ray_backend runs them as Ray
tasks.
An executed notebook keeps, in its metadata, the settings it ran with and the keys of the records it left: a later
execution of the same job is skipped only when both still hold (same settings, records unchanged, and the data,
base model and libraries their keys name unchanged). Everything else runs the notebook, which recomputes what is
stale and says so in lines the runner relays.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import records
from labkit.files import atomic_write_text
from labkit.paths import ROOT, pythonpath, resolve

NOTEBOOKS = ROOT / "notebooks"
# Parameters that do not change what a notebook computes: where it writes, what it shows, which variants it lists
# (a job's variants are named by its records), and the course's output files (always written again).
UNRECORDED = {"force", "netron_live", "results_dir", "summary_dir", "reports", "executed_on", "clusters",
              "quantize_int8", "sparsities", "combined", "deployed", "tp_criteria", "backup_model", "final_model",
              "onnx_model", "tflite_model"}
COURSE_OUTPUTS = ("backup_model", "final_model", "onnx_model", "tflite_model")


@dataclass
class Job:
    """One notebook execution: which notebook, its parameters, the variants it must produce and the folder that
    holds them (one seed's folder, or the results folder for the summary)."""

    notebook: str
    parameters: dict[str, Any]
    variants: list[str]
    folder: Path
    output: str = ""  # the executed notebook's name when not the notebook's own (a unit of a Ray run)
    dataset_sha256: str = ""  # the checksum of the data it reads (labkit.data.Descriptor), to see it unchanged

    @property
    def path(self) -> Path:
        """Where the executed notebook goes."""
        return self.folder / "notebooks" / f"{self.output or self.notebook}.ipynb"


def notebook_parameters(notebook: str) -> dict[str, Any]:
    """The names in a notebook's `parameters` cell, with their default values."""
    import papermill as pm

    found = pm.inspect_notebook(str(NOTEBOOKS / f"{notebook}.ipynb"))
    return {name: ast.literal_eval(p["default"]) for name, p in found.items()}


def settings(job: Job) -> dict[str, Any]:
    """Every parameter the job's notebook runs with that shapes its results: its defaults, overridden by the job."""
    merged = {**notebook_parameters(job.notebook), **job.parameters}
    return records.plain({k: v for k, v in sorted(merged.items()) if k not in UNRECORDED})


def _stamp(job: Job) -> dict[str, Any]:
    """What an execution of the job left: its settings and the digest of each of its records' keys."""
    made = {v: records.read_record(job.folder, v) for v in job.variants}
    return {"settings": settings(job),
            "records": {v: records.digest(r["key"]) if r and r.get("key") else None for v, r in made.items()}}


def _base_file(job: Job, base: dict[str, str]) -> Path | None:
    """The file a record's key names as its base, where this job would read it."""
    given = {"--model-path": "model_path", "--input-model": "input_model"}.get(base.get("source", ""))
    if given:
        return Path(job.parameters[given]) if job.parameters.get(given) else None
    in_project = ROOT / base.get("file", "")
    return in_project if in_project.is_file() else resolve(job.parameters.get("models_dir", "models")) / base["file"]


def _inputs_unchanged(job: Job) -> bool:
    """The data, base model and library versions every record of the job names are still what is on disk."""
    for variant in job.variants:
        key = (records.read_record(job.folder, variant) or {}).get("key") or {}
        base, data = key.get("base") or {}, key.get("dataset") or {}
        if not base or data.get("sha256") != job.dataset_sha256:
            return False
        if key.get("versions") != records.versions(tuple(key["versions"])):
            return False
        path = _base_file(job, base)
        if path is None or not path.exists() or records.sha256_of(path) != base.get("sha256"):
            return False
    return True


def up_to_date(job: Job) -> bool:
    """Whether the job's last execution still stands: same settings, same records, same inputs. A job that writes
    the course's output files is never skipped: the files it names are written on every run."""
    if not job.variants or any(job.parameters.get(name) for name in COURSE_OUTPUTS) or not job.path.is_file():
        return False
    kept = json.loads(job.path.read_text()).get("metadata", {}).get("labkit")
    return kept == _stamp(job) and None not in kept["records"].values() and _inputs_unchanged(job)


def stale_lines(executed: Path) -> list[str]:
    """The lines in which an executed notebook said that records were stale and computed again."""
    cells = json.loads(Path(executed).read_text())["cells"]
    text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []) if o.get("name") == "stdout")
    return [line for line in text.splitlines() if line.startswith(records.STALE)]


def execute(job: Job, force: bool, log) -> Path | None:
    """Run one notebook with papermill into its folder's notebooks/, unless its last execution still stands."""
    import papermill as pm

    if not force and up_to_date(job):
        log(f"skip {job.notebook} ({job.folder.name}): {', '.join(job.variants)} already done with these settings "
            "(use --force to redo)")
        return None
    known = notebook_parameters(job.notebook)
    parameters = {k: v for k, v in job.parameters.items() if k in known}
    job.path.parent.mkdir(parents=True, exist_ok=True)
    partial = job.path.with_name(job.path.stem + ".running.ipynb")
    os.environ["PYTHONPATH"] = pythonpath()  # the kernel imports this checkout's labkit, as the runner did
    # An immediate shutdown kills the kernel when the notebook ends or the run stops: a graceful one asks a kernel
    # that may be mid-cell to quit, and it prints tracebacks from its closed sockets.
    pm.execute_notebook(str(NOTEBOOKS / f"{job.notebook}.ipynb"), str(partial), parameters=parameters,
                        cwd=str(NOTEBOOKS), progress_bar={"desc": job.path.stem, "leave": False}, log_output=False,
                        shutdown_kernel="immediate")
    executed = json.loads(partial.read_text())
    executed["metadata"]["labkit"] = _stamp(job)
    atomic_write_text(job.path, json.dumps(executed, indent=1, ensure_ascii=False) + "\n")
    partial.unlink()
    for line in stale_lines(job.path):
        log(line)
    return job.path


def remove_partial_files(results_dir: Path) -> int:
    """Delete the temporary files (and a book's build folder) of interrupted atomic writes; nothing finished ends in
    .part."""
    stale = [p for pattern in ("*.part", "*.part.*") for p in results_dir.rglob(pattern)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return len(stale)
