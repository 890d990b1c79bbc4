"""The student edition: nbgrader's release of the notebooks, and autograding submissions at tiny scale.

One autograding run grades three students: the instructor's own notebooks, the release submitted untouched, and a
student who handed in only the clustering notebook with its clustering task done (and a wrong answer to the
TFLite task).
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil

import pytest
from conftest import ROOT, TINY_LAB, answered

from labkit.course import assignment, checks
from labkit.course.assignment import ASSIGNMENT
from labkit.errors import WrongAnswer

# The tiny lab, with one variant per sweep: what grading needs, in a few minutes.
TINY_GRADING = {**TINY_LAB, "test_dataset_fraction": 0.05, "clusters": [4], "sparsities": [0.5], "combined": []}
CODE_TASKS = {"tflite-inference": 2, "clustering": 4, "zip-deflation": 2, "pruning": 4, "traced-optimizer": 1,
              "config-list": 1, "exclude-output": 1, "pruner": 1, "compress": 1, "speedup": 2, "fine-tuning": 3,
              "onnx-export": 2, "tflite-export": 2, "netron-view": 1, "summary-before": 1, "summary-log": 1,
              "summary-pruned": 1, "summary-fine-tuned": 1}
QUESTIONS = {f"question-{i}": 1 for i in range(1, 5)}
# A wrong answer to the TFLite task: the model's outputs, not the classes.
WRONG_TFLITE = '''def tflite_classes(model_path, images):
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0])
    return np.array(outputs)'''


def test_the_release_holds_no_answer_and_every_task(release):
    folder = release / "release" / ASSIGNMENT
    assert sorted(p.name for p in folder.iterdir()) == [f"{n}.ipynb" for n in assignment.NOTEBOOKS]
    for path in folder.iterdir():
        text = path.read_text()
        for giveaway in ("cluster_weights(", "prune_low_magnitude(", "ModelSpeedup", "ActivationAPoZRankPruner",
                         "SOLUTION", "HIDDEN TESTS", "instructor-only"):
            assert giveaway not in text, (path.name, giveaway)
        notebook = json.loads(text)
        assert notebook["metadata"]["kernelspec"]["name"] == "labkit"
        for cell in notebook["cells"]:
            assert not cell.get("outputs") and not cell.get("execution_count")
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("solution") and cell["cell_type"] == "code":
                assert "raise NotImplementedError()" in "".join(cell["source"]), meta["grade_id"]
            if meta.get("solution") and cell["cell_type"] == "markdown":
                assert "".join(cell["source"]) == "YOUR ANSWER HERE", meta["grade_id"]
    assert dict(assignment.tasks(release)) == {**CODE_TASKS, **QUESTIONS}
    assert sum(CODE_TASKS.values()) == 31  # the course's points: 16 for TFMOT (with the questions), 19 for NNI


def test_a_solution_left_in_the_release_is_found(tmp_path):
    (tmp_path / "01_clustering.ipynb").write_text(json.dumps({"cells": [{"source": "cluster_weights(model)"}]}))
    (tmp_path / "notes.txt").write_text("nothing to see")
    assert assignment.giveaways(tmp_path) == [f"{tmp_path / '01_clustering.ipynb'} holds cluster_weights("]


def test_grading_scale_replaces_the_parameters_cell_whatever_the_student_set():
    source = json.loads((ROOT / "notebooks" / "01_clustering.ipynb").read_text())
    submitted = json.loads(json.dumps(source))
    cell = next(c for c in submitted["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = "clusters = [2]\nseed = 7\n"
    copy = assignment.scaled(submitted, source, {"clusters": [4], "results_dir": "/tmp/r", "sparsities": [0.5]})
    text = "".join(next(c for c in copy["cells"] if "parameters" in c["metadata"].get("tags", []))["source"])
    assert "clusters = [4]  # cluster counts to compare" in text and "results_dir = '/tmp/r'  #" in text
    assert "seed = 42" in text and "sparsities" not in text
    submitted["cells"].remove(cell)
    lost = assignment.scaled(submitted, source, {"clusters": [4]})
    assert len(lost["cells"]) == len(source["cells"]) and "clusters = [4]" in "".join(
        next(c for c in lost["cells"] if "parameters" in c["metadata"].get("tags", []))["source"])


def test_a_failed_check_is_one_line_naming_the_task():
    with pytest.raises(WrongAnswer, match=r"^clustering: dense holds 9 values$"):
        with checks.task("clustering"):
            kernels = {"dense": 9}
            assert kernels["dense"] <= 4, "dense holds 9 values\nand more"
    with pytest.raises(WrongAnswer, match=r"^pruning: name 'stripped' is not defined: run your cell above"):
        with checks.task("pruning"):
            stripped  # noqa: B018, F821
    with pytest.raises(WrongAnswer, match=r"^ZIP: TypeError: "):
        with checks.task("ZIP"):
            len(3)


@pytest.fixture(scope="module")
def graded(release, tiny_lab, tmp_path_factory):
    """One autograding run over three students' submissions, at tiny scale, on the tiny lab's base models: the
    instructor's notebooks, the release untouched, and the clustering notebook alone with only that task done."""
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(release, course, dirs_exist_ok=True)
    released = course / "release" / ASSIGNMENT
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(ROOT / "notebooks", submissions / "instructor")
    shutil.copytree(released, submissions / "untouched")
    (submissions / "clustering-only").mkdir()  # a notebook not handed in scores 0 on its tasks
    notebook = json.loads((released / "01_clustering.ipynb").read_text())
    notebook = answered(notebook, {"clustering-answer": None, "tflite-inference-answer": WRONG_TFLITE})
    (submissions / "clustering-only" / "01_clustering.ipynb").write_text(json.dumps(notebook))
    log: list[str] = []
    table = assignment.autograde(submissions, course, {**TINY_GRADING, "models_dir": str(tiny_lab["tmp"] / "models")},
                                 log=log.append)
    with table.open() as rows:
        return {"course": course, "rows": {row["student"]: row for row in csv.DictReader(rows)}, "log": log,
                "grades": {row["student"]: row for row in assignment.grades(course)}}


@pytest.mark.notebook
def test_the_instructors_notebooks_autograde_to_full_marks(graded):
    grades = graded["grades"]["instructor"]
    assert {task: grades[task] for task in CODE_TASKS} == {task: float(p) for task, p in CODE_TASKS.items()}
    assert grades["autograded"] == grades["autograded max"] == 31
    assert grades["to grade by hand"] == 4 and all(grades[q] is None for q in QUESTIONS)


@pytest.mark.notebook
def test_the_untouched_release_scores_zero_on_every_code_task_and_grades_whole(graded):
    grades = graded["grades"]["untouched"]
    assert all(grades[task] == 0 for task in CODE_TASKS) and grades["autograded"] == 0
    assert grades["to grade by hand"] == 0  # unanswered questions score 0 without a grader
    autograded = graded["course"] / "autograded" / "untouched" / ASSIGNMENT
    assert sorted(p.stem for p in autograded.glob("*.ipynb")) == list(assignment.NOTEBOOKS)
    feedback = graded["course"] / "feedback" / "untouched" / ASSIGNMENT
    assert sorted(p.stem for p in feedback.glob("*.html")) == list(assignment.NOTEBOOKS)


@pytest.mark.notebook
def test_only_the_clustering_task_done_scores_exactly_its_points(graded):
    grades = graded["grades"]["clustering-only"]
    assert grades["clustering"] == 4 and grades["autograded"] == 4
    assert all(grades[task] == 0 for task in CODE_TASKS if task != "clustering")


@pytest.mark.notebook
def test_a_wrong_answer_gets_a_one_line_reason_in_the_feedback(graded):
    feedback = graded["course"] / "feedback" / "clustering-only" / ASSIGNMENT / "01_clustering.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", feedback.read_text()))
    reason = "WrongAnswer: running a TensorFlow Lite model: tflite_classes gave shape (100, 10) for 100 images"
    assert reason in text
    autograded = json.loads((graded["course"] / "autograded" / "clustering-only" / ASSIGNMENT /
                             "01_clustering.ipynb").read_text())
    tests = [c for c in autograded["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
             and c["cell_type"] == "code"]
    for cell in tests:
        for output in cell["outputs"]:
            assert output["output_type"] == "error" and len(output["traceback"]) == 1, output
            assert output["ename"] == "WrongAnswer" and "\n" not in output["evalue"]
    assert sum(bool(c["outputs"]) for c in tests) == 2  # the TFLite and ZIP tasks fail, clustering passes
    untouched = (graded["course"] / "feedback" / "untouched" / ASSIGNMENT / "01_clustering.html").read_text()
    for reason in ("running a TensorFlow Lite model: not answered yet: write the code of the task in its cell above",
                   "clustering: name 'stripped' is not defined: run your cell above and keep the names it asks for"):
        assert f"WrongAnswer: {reason}" in html.unescape(re.sub(r"<[^>]+>", "", untouched))


@pytest.mark.notebook
def test_the_grade_table_has_a_column_per_task_with_its_points(graded):
    course = graded["course"]
    with (course / "grades.csv").open() as table:
        header = next(csv.reader(table))
    assert header[0] == "student" and "clustering (4 pt)" in header and "question-4 (1 pt)" in header
    assert header[-5:] == ["autograded", "autograded max", "to grade by hand", "total", "max"]
    assert sorted(graded["rows"]) == ["clustering-only", "instructor", "untouched"]
    assert graded["rows"]["instructor"]["question-1 (1 pt)"] == ""  # still to grade by hand
    assert any(line.startswith("clustering-only: 4 of 31 autograded points") for line in graded["log"])


def test_a_stage_summary_time_is_checked_for_its_unit_not_for_the_machines_load():
    measured = {"shapes": {"fc": [10, 4]}, "accuracy": 0.5, "latency": {"median_ms": 0.117}}
    summary = {"shapes": {"fc": (10, 4)}, "accuracy": 0.5}
    checks.describes({**summary, "latency (ms)": 46.0}, measured, 100)  # a busy machine's default threads
    with pytest.raises(WrongAnswer, match="by your count, 0.117 ms by the lab's: give the median time"):
        checks.describes({**summary, "latency (ms)": 0.000117}, measured, 100)  # seconds
    course = {**measured, "latency": {"median_ms": 1.5}}
    with pytest.raises(WrongAnswer, match="a batch-1 inference takes 1.5e\\+03 ms by your count"):
        checks.describes({**summary, "latency (ms)": 1500.0}, course, 100)  # microseconds
