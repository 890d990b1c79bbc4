"""The student edition of the lab: nbgrader's release of the notebooks, and grading of submissions at a small scale.

One source: the notebooks under notebooks/ are the instructor's edition. Each graded task of the course is a
solution region (`### BEGIN SOLUTION` … `### END SOLUTION`) followed by a test cell that carries its points, with
the checks that would give the answer away between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`; the four
questions are answer cells graded by hand; cells tagged `instructor-only` (the lab's own computed answers) are left
out of the student edition.

nbgrader works in a course folder, `assignment/`, laid out as `<step>/<student>/<assignment>/<notebook>.ipynb`
with its settings in `nbgrader_config.py` and its gradebook in `gradebook.db`. `release` copies the notebooks into
its `source/` step and runs `nbgrader generate_assignment`, which writes `release/`. `autograde` copies each
student's notebooks into `submitted/` with the parameters cell of the instructor's edition at a small scale and a
results folder of the student's own, and runs `nbgrader autograde`; `feedback` (also after hand grading) runs
`generate_feedback` and writes `grades.csv`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError
from labkit.paths import ROOT, resolve, shown

ASSIGNMENT = "l03_pruning_clustering"
COURSE = ROOT / "assignment"
NOTEBOOKS = ("01_clustering", "02_pruning", "03_structured_pruning", "04_summary")
INSTRUCTOR_ONLY = "instructor-only"  # the tag of cells the student edition leaves out
# What no released file may hold: the calls a task asks for, and nbgrader's markers of what it removes.
GIVEAWAYS = ("cluster_weights(", "prune_low_magnitude(", "ModelSpeedup", "ActivationAPoZRankPruner",
             "BEGIN SOLUTION", "BEGIN HIDDEN TESTS")
# The scale of grading: every check holds at any scale, so a small one grades a class in reasonable time.
SMALL = {"train_samples": 600, "base_epochs": 2, "test_dataset_fraction": 0.1, "training_batches": 200,
         "clusters": [4, 16], "sparsities": [0.5], "combined": [], "netron_live": False,
         "quantize_int8": False, "tp_criteria": [], "deployed": [],  # INT8, Torch-Pruning, QAT: reading, no points
         "hidden_units": 64}  # a 4 MB PyTorch base, not the course's 63 MB


def _course(course: Path) -> Path:
    """A course folder with nbgrader's settings (those of the project's `assignment/` folder)."""
    course = Path(course)
    course.mkdir(parents=True, exist_ok=True)
    if not (course / "nbgrader_config.py").is_file():
        shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    return course


def _nbgrader(course: Path, log_name: str, *args: str) -> None:
    """Run one nbgrader command in the course folder; its log goes to `logs/<log_name>.log`."""
    log_file = course / "logs" / f"{log_name}.log"
    log_file.parent.mkdir(exist_ok=True)
    # nbgrader runs `alembic` (its gradebook's migrations) from PATH: the one installed beside this Python.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    with log_file.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, stdout=out,
                              stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        raise LabkitError(f"nbgrader {args[0]} failed (exit code {done.returncode}): see {shown(log_file)}")


def release(course: Path = COURSE, log: Callable[[str], None] = print) -> Path:
    """Write the student edition into `<course>/release/<assignment>/` and return that folder.

    The notebooks, without their instructor-only cells, become nbgrader's source; `generate_assignment` replaces
    each solution region by `raise NotImplementedError()`, drops the hidden tests and records every graded cell in
    the gradebook. A release that still holds a giveaway stops with one line naming it.
    """
    course = _course(course)
    source = course / "source" / ASSIGNMENT
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for name in NOTEBOOKS:
        notebook = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        notebook["cells"] = [c for c in notebook["cells"] if INSTRUCTOR_ONLY not in c["metadata"].get("tags", [])]
        (source / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    _nbgrader(course, "generate_assignment", "generate_assignment", ASSIGNMENT, "--force")
    folder = course / "release" / ASSIGNMENT
    if found := giveaways(folder):
        raise LabkitError(f"the release gives answers away: {'; '.join(found)}")
    log(f"student edition in {shown(folder)}: {', '.join(p.name for p in sorted(folder.glob('*.ipynb')))}")
    return folder


def giveaways(folder: Path) -> list[str]:
    """Each file under `folder` that holds a solution call or a marker of removed content, with what it holds."""
    return [f"{shown(path)} holds {', '.join(found)}" for path in sorted(Path(folder).rglob("*")) if path.is_file()
            and (found := [text for text in GIVEAWAYS if text in path.read_text(errors="replace")])]


def with_parameters(source: str, values: dict[str, Any]) -> str:
    """A parameters cell's code with `values` in place of the defaults it names (their comments kept); names the
    cell does not hold are left out."""
    for name, value in values.items():
        line = f"{name} = {value!r}"
        source = re.sub(rf"^{name} = [^#\n]*?(\s*#|$)", lambda m, line=line: line + m.group(1), source, flags=re.M)
    return source


def _parameters_index(notebook: dict) -> int | None:
    return next((i for i, cell in enumerate(notebook["cells"]) if "parameters" in cell["metadata"].get("tags", [])),
                None)


def scaled(submitted: dict, source: dict, values: dict[str, Any]) -> dict:
    """A submitted notebook whose parameters cell is the source notebook's (the course's settings, whatever the
    student set) with `values` in place; a submission that lost the cell gets it back where the source has it."""
    index = _parameters_index(source)
    cell = {**source["cells"][index], "source": with_parameters("".join(source["cells"][index]["source"]), values)}
    cells = list(submitted["cells"])
    if (found := _parameters_index(submitted)) is None:
        cells.insert(min(index, len(cells)), cell)
    else:
        cells[found] = {**cells[found], "source": cell["source"]}
    return {**submitted, "cells": cells}


def collect(submissions: Path, course: Path, values: dict[str, Any]) -> list[str]:
    """Copy every student's notebooks (`<submissions>/<student>/` or `<submissions>/<student>/<assignment>/`) into
    the course's `submitted/` step at the scale of `values`, each student's results in `work/<student>/` and the
    base models shared in `work/models/` (or the `models_dir` of `values`); return the students."""
    source = course / "source" / ASSIGNMENT
    students = []
    for folder in sorted(p for p in Path(submissions).iterdir() if p.is_dir()):
        own = folder / ASSIGNMENT if (folder / ASSIGNMENT).is_dir() else folder
        notebooks = {name: json.loads((own / f"{name}.ipynb").read_text()) for name in NOTEBOOKS
                     if (own / f"{name}.ipynb").is_file()}
        if not notebooks:
            continue
        work = course / "work"
        student = {"models_dir": str(work / "models"), **values, "results_dir": str(work / folder.name / "results")}
        target = course / "submitted" / folder.name / ASSIGNMENT
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name, notebook in notebooks.items():
            copy = scaled(notebook, json.loads((source / f"{name}.ipynb").read_text()), student)
            (target / f"{name}.ipynb").write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n")
        students.append(folder.name)
    return students


def autograde(submissions: Path, course: Path = COURSE, params: dict[str, Any] | None = None,
              log: Callable[[str], None] = print) -> Path:
    """Grade the notebooks of every student in `submissions` at the small scale (SMALL, updated by `params`); write
    each student's feedback (HTML) and the grade table; return the table (`<course>/grades.csv`).

    Each student's notebooks run on a results folder of their own, emptied first, so nothing another submission
    (or an earlier one) computed is reused; the base models, which no answer touches, are trained once for all.
    """
    submissions, course = resolve(submissions), _course(course)
    if not submissions.is_dir():
        raise LabkitError(f"no folder {submissions}: put each student's notebooks in <folder>/<student>/")
    if not (course / "gradebook.db").is_file() or not (course / "source" / ASSIGNMENT).is_dir():
        release(course, log)
    students = collect(submissions, course, {**SMALL, **(params or {})})
    if not students:
        raise LabkitError(f"no submitted notebooks in {submissions}: put each student's notebooks in "
                          f"{submissions}/<student>/ (named as the release names them)")
    for i, student in enumerate(students, 1):
        log(f"[{i}/{len(students)}] grading {student}")
        shutil.rmtree(course / "work" / student, ignore_errors=True)
        _nbgrader(course, f"autograde-{student}", "autograde", ASSIGNMENT, f"--student={student}", "--force")
    return feedback(course, log)


def feedback(course: Path = COURSE, log: Callable[[str], None] = print) -> Path:
    """Write every graded student's feedback (HTML, `feedback/<student>/<assignment>/`) and the grade table from
    the gradebook, with the hand-graded answers so far; return the table."""
    _nbgrader(course, "generate_feedback", "generate_feedback", ASSIGNMENT, "--force")
    table = write_grades(course)
    for row in grades(course):
        log(f"{row['student']}: {row['autograded']:g} of {row['autograded max']:g} autograded points; "
            f"{row['to grade by hand']} answer(s) to grade by hand; feedback in "
            f"{shown(course / 'feedback' / row['student'] / ASSIGNMENT)}")
    log(f"grades in {shown(table)}")
    return table


def tasks(course: Path = COURSE) -> list[tuple[str, float]]:
    """Every graded cell of the assignment, in the notebooks' order: its grade id and points."""
    found = []
    for name in NOTEBOOKS:
        for cell in json.loads((course / "source" / ASSIGNMENT / f"{name}.ipynb").read_text())["cells"]:
            if (meta := cell["metadata"].get("nbgrader", {})).get("grade"):
                found.append((meta["grade_id"], float(meta["points"])))
    return found


def grades(course: Path = COURSE) -> list[dict[str, Any]]:
    """Per graded student: the points of every task (None for an answer still to grade by hand), the sum of the
    autograded tasks and its maximum, how many answers wait for a human grader, and the total so far."""
    from nbgrader.api import Gradebook, MissingEntry

    graded, rows = tasks(course), []
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}") as gradebook:
        for student in sorted(s.id for s in gradebook.students):
            try:
                submission = gradebook.find_submission(ASSIGNMENT, student)
            except MissingEntry:
                continue
            found = {g.name: g for notebook in submission.notebooks for g in notebook.grades}
            by_hand = [g for g in found.values() if g.needs_manual_grade and g.manual_score is None]
            tests = [g for g in found.values() if g.cell.cell_type == "code"]
            row: dict[str, Any] = {"student": student}
            row.update({task: None if found.get(task) in by_hand else float(found[task].score) if task in found
                        else 0.0 for task, _ in graded})
            row.update({"autograded": sum(float(g.score) for g in tests),
                        "autograded max": sum(float(g.max_score) for g in tests), "to grade by hand": len(by_hand),
                        "total": float(submission.score), "max": float(submission.max_score)})
            rows.append(row)
    return rows


def write_grades(course: Path = COURSE) -> Path:
    """The grade table as CSV: one row per student, one column per task (its points in the header), an empty cell
    for an answer still to grade by hand."""
    points, rows = dict(tasks(course)), grades(course)
    path = Path(course) / "grades.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        columns = list(rows[0]) if rows else ["student"]
        writer.writerow([f"{c} ({points[c]:g} pt)" if c in points else c for c in columns])
        writer.writerows([["" if row[c] is None else row[c] for c in columns] for row in rows])
    return path


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The command line's `assignment` and `autograde` commands."""
    commands.add_parser("assignment", help=f"write the student edition (nbgrader's release) into "
                        f"{shown(COURSE)}/release/{ASSIGNMENT}/").set_defaults(func=_release)
    grade = commands.add_parser("autograde", help="grade a folder of submitted notebooks at a small scale: a grade "
                                f"table ({shown(COURSE)}/grades.csv) and feedback per student")
    grade.add_argument("submissions", nargs="?", default=str(COURSE / "submissions"),
                       help="one folder per student holding the notebooks (default: assignment/submissions)")
    grade.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                       help="change the grading scale, e.g. -p train_samples=3000 (defaults: "
                            f"{', '.join(f'{k}={v}' for k, v in SMALL.items())})")
    grade.set_defaults(func=_autograde)
    commands.add_parser("grades", help="after grading answers by hand (nbgrader's formgrader): feedback and grade "
                        "table again, from the gradebook").set_defaults(func=_grades)


def _release(args: argparse.Namespace) -> int:
    release()
    return 0


def _autograde(args: argparse.Namespace) -> int:
    from labkit.parameters import parse_params

    autograde(Path(args.submissions), params=parse_params(args.param))
    return 0


def _grades(args: argparse.Namespace) -> int:
    feedback()
    return 0
