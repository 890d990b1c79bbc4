"""Self-contained HTML reports of executed notebooks: every image inline, no script or font from a CDN, and no
part that only works beside a running kernel.

A cell tagged `live-view` (the live Netron view) shows a frame served by the kernel; in a report that is a dead
frame, so its output is left out and the static picture the notebook renders below it stands in.

A report reads as the lab, not as the course's answer key: the autograder's test cells (nbgrader marks them
`grade` without `solution`) are left out, and nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` lines are
dropped from the code around them. The notebooks themselves keep both: the student edition is made from them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import Preprocessor

from labkit.files import atomic_write_text
from labkit.results.seeds import folder

TEMPLATES = Path(__file__).parents[1] / "templates"
LIVE_VIEW = "live-view"  # the tag of cells whose output needs the running kernel
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)[ \t]*(\n|$)", re.MULTILINE)


def reported(results_dir: Path, seeds: list[int]) -> list[Path]:
    """The executed notebooks that become HTML reports: the summary's, and those of the run's first seed (the other
    seeds' notebooks run the same code and stay in their folders)."""
    folders = [results_dir, folder(results_dir, seeds[0])]
    found = [p for where in folders for p in (where / "notebooks").glob("0*.ipynb")]
    return sorted((p for p in found if "." not in p.stem), key=lambda p: p.name)  # not *.running, not units


def grader_test(cell: Any) -> bool:
    """Whether a cell is one of the autograder's test cells (nbgrader's metadata: graded, not a solution)."""
    grading = cell.get("metadata", {}).get("nbgrader", {})
    return bool(grading.get("grade")) and not grading.get("solution")


class LabView(Preprocessor):
    """Leaves out the autograder's test cells and nbgrader's marker lines (see the module's docstring)."""

    def preprocess(self, nb: Any, resources: dict) -> tuple[Any, dict]:
        nb.cells = [cell for cell in nb.cells if not grader_test(cell)]
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = MARKER.sub("", cell.source)
        return nb, resources


def lab_view(nb: Any) -> Any:
    """The notebook as a reader sees it: no autograder test cells, no solution markers, no live-view output."""
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb, _ = TagRemovePreprocessor(remove_all_outputs_tags={LIVE_VIEW}).preprocess(nb, {})
    nb, _ = LabView().preprocess(nb, {})
    return nb


def export_html(notebook: Path, html_path: Path) -> Path:
    """Convert an executed notebook to one offline HTML file (nbconvert, images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)], embed_images=True)
    body, _ = exporter.from_notebook_node(lab_view(nbformat.read(str(notebook), as_version=4)))
    return atomic_write_text(Path(html_path), body)
