"""Task names and parameters are checked before anything runs."""

import pytest

from labkit import LabkitError
from labkit.parameters import parse_params
from labkit.run.cli import main
from labkit.run.runner import jobs_for, plan_tasks, seeds_of


def test_all_expands_to_every_course_variant():
    plan = plan_tasks(["all"])
    names = plan.variant_names()
    for name in ("clustered-2-fp32", "clustered-32-fp32", "pruned-0.2-fp32", "pruned-0.5-fp32", "quantized-int8",
                 "pruned-0.5-clustered-16-fp32", "clustered-16-cqat-int8", "pruned-0.5-clustered-16-pcqat-int8",
                 "structured-0.5"):
        assert name in names
    assert [job.notebook for job in jobs_for(plan, {"results_dir": "r"}, [42])] == [
        "01_clustering", "02_pruning", "03_structured_pruning", "04_summary"]


def test_all_runs_both_structured_pruners_at_the_courses_sparsity_in_one_execution():
    jobs = [job for job in jobs_for(plan_tasks(["all"]), {"results_dir": "r"}, [42])
            if job.notebook == "03_structured_pruning"]
    assert [(job.variants, job.parameters["sparsity"], job.parameters["tp_criteria"], job.output) for job in jobs] == [
        (["structured-0.5", "tp-magnitude-0.5", "tp-taylor-0.5"], 0.5, ["magnitude", "taylor"], "")]


def test_the_curve_runs_each_sparsity_once_and_reports_the_courses_last():
    common = {"results_dir": "r", "final_model": "/tmp/final.pth"}
    jobs = jobs_for(plan_tasks(["structured-curve"]), common, [42])
    assert [(job.parameters["sparsity"], job.output, job.parameters["final_model"]) for job in jobs] == [
        (0.25, "03_structured_pruning.structured-0.25", None), (0.75, "03_structured_pruning.structured-0.75", None),
        (0.5, "", "/tmp/final.pth")]  # the report: the course's sparsity, its curve complete; it alone writes files
    assert jobs[0].variants == ["structured-0.25", "tp-magnitude-0.25", "tp-taylor-0.25"]
    assert plan_tasks(["tp-all"]).variant_names() == plan_tasks(["structured-curve"]).variant_names()
    assert plan_tasks(["structured-all"]).tp == []


def test_a_torch_pruning_task_runs_beside_nni_at_its_sparsity():
    plan = plan_tasks(["tp-taylor-0.3"])
    assert plan.structured == [0.3] and plan.variant_names() == ["structured-0.3", "tp-taylor-0.3"]
    job = jobs_for(plan, {"results_dir": "r"}, [1])[0]
    assert job.parameters["tp_criteria"] == ["taylor"] and job.output == ""


def test_a_collaborative_variant_brings_its_parent_and_runs_in_02():
    plan = plan_tasks(["pruned-0.4-pqat-int8", "clustered-8-cqat-int8", "pruned-0.5-clustered-16-pcqat-int8",
                       "qat-int8"])
    assert (plan.sparsities, plan.clusters, plan.combined) == ([0.4], [8], [0.5, 16])
    jobs = jobs_for(plan, {"results_dir": "r"}, [42])
    assert [(job.notebook, job.variants) for job in jobs] == [
        ("01_clustering", ["clustered-8-fp32"]),  # 01 runs before 02: CQAT's parent is made there
        ("02_pruning", ["pruned-0.4-fp32", "pruned-0.5-clustered-16-fp32", "pruned-0.4-pqat-int8",
                        "clustered-8-cqat-int8", "pruned-0.5-clustered-16-pcqat-int8", "qat-int8"])]
    assert jobs[1].parameters["deployed"] == plan.deployed
    alone = jobs_for(plan_tasks(["qat-int8"]), {"results_dir": "r"}, [42])
    assert [(job.notebook, job.parameters["sparsities"]) for job in alone] == [("02_pruning", [0.5])]  # its demo


@pytest.mark.parametrize("task, why", [("clustered-1-cqat-int8", "cluster count 1"),
                                       ("pruned-1.5-pqat-int8", "sparsity 1.5"),
                                       ("pruned-0.5-cqat-int8", "unknown task")])
def test_a_bad_collaborative_task_is_one_line_before_anything_runs(task, why):
    with pytest.raises(LabkitError, match=why):
        plan_tasks([task])


def test_each_seed_runs_the_lab_in_its_own_folder_then_one_summary():
    jobs = jobs_for(plan_tasks(["clustered-2-fp32", "structured-0.5", "summary"]), {"results_dir": "r"}, [7, 8])
    assert [(job.notebook, job.folder.name, job.parameters.get("seed")) for job in jobs] == [
        ("01_clustering", "seed-7", 7), ("03_structured_pruning", "seed-7", 7),
        ("01_clustering", "seed-8", 8), ("03_structured_pruning", "seed-8", 8), ("04_summary", "r", None)]


@pytest.mark.parametrize("params, option, expected", [
    ({}, None, [42]), ({"seed": 7}, None, [7]), ({"seeds": [1, 2, 3]}, None, [1, 2, 3]),
    ({"seeds": 5}, None, [5]), ({"seeds": [1, 2]}, [3, 4], [3, 4]),
])
def test_seeds_come_from_the_option_or_the_parameters(params, option, expected):
    assert seeds_of(params, option) == expected
    assert "seed" not in params and "seeds" not in params  # each job gets its own seed


@pytest.mark.parametrize("seeds", [[1, 1], [-1], ["a"], 0.5])
def test_bad_seeds_are_one_line_errors(seeds):
    with pytest.raises(LabkitError, match="distinct whole numbers"):
        seeds_of({"seeds": seeds}, None)


def test_single_tasks_and_comma_lists():
    plan = plan_tasks(["clustered-16-fp32,pruned-0.4-fp32", "clustered-16-fp32"])
    assert plan.clusters == [16] and plan.sparsities == [0.4] and not plan.summary
    job = jobs_for(plan, {"results_dir": "r"}, [1])[0]
    assert job.parameters["clusters"] == [16] and job.parameters["seed"] == 1 and job.variants == ["clustered-16-fp32"]


@pytest.mark.parametrize("task, message", [
    ("clustered-1-fp32", "cluster count 1 is invalid"),
    ("pruned-0-fp32", "sparsity 0.0 is outside"),
    ("pruned-1.2-fp32", "sparsity 1.2 is outside"),
    ("structured-1", "sparsity 1.0 is outside"),
    ("tp-l1-0.5", "unknown Torch-Pruning criterion 'l1'"),
    ("tp-taylor-0", "sparsity 0.0 is outside"),
    ("quantised", "unknown task 'quantised'"),
])
def test_bad_tasks_are_one_line_errors(task, message):
    with pytest.raises(LabkitError, match=message):
        plan_tasks([task])


def test_params_are_literals_or_strings():
    assert parse_params(["train_samples=600", "clusters=[2, 4]", "dataset_root=/data", "x=None"]) == {
        "train_samples": 600, "clusters": [2, 4], "dataset_root": "/data", "x": None}
    with pytest.raises(LabkitError, match="NAME=VALUE"):
        parse_params(["oops"])


@pytest.mark.parametrize("argv, message", [
    (["run", "--tasks", "clustered-0-fp32"], "cluster count 0"),
    (["run", "--test-dataset-fraction", "1.5"], "outside (0, 1]"),
    (["run", "--tasks", "pruned-all", "-p", "train_sample=3"], "unknown parameter train_sample"),
    (["run", "--seeds", "3", "3"], "distinct whole numbers"),
])
def test_cli_rejects_bad_input_before_running(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_elapsed_time_keeps_its_hours():
    from labkit.run.runner import clock

    assert clock(425.9) == "07:05" and clock(5200) == "1:26:40"


def test_a_quick_look_takes_less_data_fewer_variants_and_a_folder_of_its_own(monkeypatch, tmp_path):
    """--scale quick, planned through the real run with the notebooks' executions left out."""
    from labkit.run import runner

    ran = []
    monkeypatch.setattr(runner, "execute", lambda job, force, log: ran.append(job))
    monkeypatch.setattr(runner, "export_reports", lambda *args: None)
    monkeypatch.setattr(runner.book, "build", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    runner.run(params={"fine_tune_epochs": 2}, log=lambda *_: None, track=False, scale="quick")
    assert [(job.notebook, job.variants) for job in ran] == [
        ("01_clustering", ["clustered-4-fp32", "clustered-16-fp32", "quantized-int8"]),
        ("02_pruning", ["pruned-0.5-fp32", "pruned-0.5-clustered-16-fp32"]),
        ("03_structured_pruning", ["structured-0.5", "tp-magnitude-0.5", "tp-taylor-0.5"]), ("04_summary", [])]
    assert {job.folder.parent for job in ran[:3]} == {tmp_path / "results" / "fashion-mnist-quick"}
    for job in ran:
        assert (job.parameters["train_samples"], job.parameters["test_dataset_fraction"]) == (10000, 0.5)
        assert job.parameters["fine_tune_epochs"] == 2  # the user's settings win over the preset's
    assert ran[-1].parameters["scale"] == "quick"
    with pytest.raises(LabkitError, match="unknown scale 'fast': use --scale full"):
        runner.run(log=lambda *_: None, track=False, scale="fast")
