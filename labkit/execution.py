"""Notebook executions: one notebook run by papermill with its parameters, into a results folder.

The runner plans them (labkit.runner) and runs them one after another; labkit.ray_backend runs them as Ray tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.paths import ROOT

NOTEBOOKS = ROOT / "notebooks"


@dataclass
class Job:
    """One notebook execution: which notebook, its parameters, the variants it must produce and the folder that
    holds them (one seed's folder, or the results folder for the summary)."""

    notebook: str
    parameters: dict[str, Any]
    variants: list[str]
    folder: Path
    output: str = ""  # the executed notebook's name when not the notebook's own (a unit of a Ray run)


def notebook_parameters(notebook: str) -> list[str]:
    """The names in a notebook's `parameters` cell."""
    import papermill as pm

    return list(pm.inspect_notebook(str(NOTEBOOKS / f"{notebook}.ipynb")))


def execute(job: Job, force: bool, log) -> Path | None:
    """Run one notebook with papermill into its folder's notebooks/, unless all its variants are done."""
    import papermill as pm

    from labkit.evaluate import record_path

    source = NOTEBOOKS / f"{job.notebook}.ipynb"
    output = job.folder / "notebooks" / f"{job.output or job.notebook}.ipynb"
    done = [v for v in job.variants if record_path(job.folder, v).is_file()]
    if job.variants and len(done) == len(job.variants) and output.is_file() and not force:
        log(f"skip {job.notebook} ({job.folder.name}): {', '.join(done)} already done (use --force to redo)")
        return None
    known = notebook_parameters(job.notebook)
    parameters = {k: v for k, v in job.parameters.items() if k in known}
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.stem + ".running.ipynb")
    # An immediate shutdown kills the kernel when the notebook ends or the run stops: a graceful one asks a kernel
    # that may be mid-cell to quit, and it prints tracebacks from its closed sockets.
    pm.execute_notebook(str(source), str(partial), parameters=parameters, cwd=str(NOTEBOOKS),
                        progress_bar={"desc": output.stem, "leave": False}, log_output=False,
                        shutdown_kernel="immediate")
    partial.replace(output)
    return output


def remove_partial_files(results_dir: Path) -> int:
    """Delete the temporary files of interrupted atomic writes; no finished file ends in .part."""
    stale = [p for pattern in ("*.part", "*.part.*") for p in results_dir.rglob(pattern)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
