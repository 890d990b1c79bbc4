"""Fine-tuning to recovery: the stopping rule on scripted curves, and the pairing of each variant with the control
after as many steps, on a real (tiny) Keras fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import idx_folder

from labkit import LabkitError
from labkit.methods import experiment
from labkit.models import recovery
from labkit.results.evaluate import load_correct


def run(rule: recovery.Rule, accuracies: list[float]) -> recovery.Curve:
    """Feed a scripted accuracy per check until the rule stops."""
    curve = recovery.Curve(rule)
    for i, accuracy in enumerate(accuracies):
        curve.add(min(i * rule.interval, rule.max_steps), accuracy)
        if curve.done():
            break
    return curve


def test_fine_tuning_stops_at_the_plateau_and_keeps_the_best_check():
    rule = recovery.Rule(interval=10, patience=2, max_steps=100)
    curve = run(rule, [0.50, 0.60, 0.70, 0.70, 0.69, 0.90])
    assert curve.steps == [0, 10, 20, 30, 40]  # the 0.90 never came: two checks without a gain stopped it
    assert (curve.best_step, curve.best_accuracy) == (20, 0.70)
    assert curve.as_record()["stopped"] == "plateau" and not curve.still_recovering()


def test_fine_tuning_stopped_by_the_maximum_while_gaining_is_still_recovering():
    rule = recovery.Rule(interval=10, patience=2, max_steps=40)
    curve = run(rule, [0.5, 0.6, 0.61, 0.62, 0.63, 0.64])
    assert curve.steps == [0, 10, 20, 30, 40] and curve.best_step == 40
    record = curve.as_record()
    assert record["stopped"] == "maximum" and record["still_recovering"] and record["steps"] == 40


def test_a_gain_smaller_than_the_minimum_is_no_gain():
    rule = recovery.Rule(interval=5, patience=2, max_steps=100, min_gain=0.01)
    curve = run(rule, [0.80, 0.805, 0.808, 0.9])
    assert curve.steps == [0, 5, 10] and curve.best_step == 0 and curve.stalled()


def test_compression_that_costs_nothing_keeps_the_weights_of_step_0():
    curve = run(recovery.Rule(1, 1, 10), [0.9, 0.9, 0.85])
    assert curve.steps == [0, 1] and curve.best_step == 0


def test_the_rule_in_epochs_and_bad_rules():
    rule = recovery.Rule.per_epoch(steps_per_epoch=422, checks_per_epoch=4, patience=3, max_epochs=3)
    assert (rule.interval, rule.max_steps) == (106, 1272)  # 3 epochs of 422 steps, rounded up to 12 checks
    assert recovery.Rule.per_epoch(5, 4, 3, 1).interval == 1
    assert recovery.Rule.per_epoch(141, 4, 3, 1).max_steps == 175  # one epoch: 5 checks of 35, not 141 steps
    control = rule.to_the_maximum()
    assert run(control, [0.9] * 20).steps[-1] == rule.max_steps  # never stops before the maximum
    for bad in ({"interval": 0}, {"patience": 0}, {"max_steps": 5}, {"max_steps": 105}):
        with pytest.raises(LabkitError, match="use an interval ≥ 1, patience ≥ 1 and a maximum of whole intervals"):
            recovery.Rule(**{"interval": 10, "patience": 2, "max_steps": 100, **bad})


def test_a_variant_is_only_compared_with_a_control_fine_tuned_the_same_way():
    tuning = experiment.FineTuning(recovery.Rule(10, 3, 100), 1e-4, 64, 50)
    control = {"name": "control-fp32", "params": {**tuning.params(), "trajectory_steps": 200}}
    experiment.check_budget(control, tuning)
    other = experiment.FineTuning(recovery.Rule(10, 3, 100), 1e-3, 64, 50)
    with pytest.raises(LabkitError, match=r"control-fp32 was fine-tuned otherwise than the variant \(control → "
                                          r"variant: learning_rate 0.0001 → 0.001\): pass the control made"):
        experiment.check_budget(control, other)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> dict:
    """A tiny Keras experiment on generated images: its control and a clustered variant fine-tuned to recovery."""
    tmp = tmp_path_factory.mktemp("recovery")
    exp = experiment.prepare("idx", str(idx_folder(tmp / "data", n=400)), train_samples=None,
                             batch_size=32, results_dir=tmp / "results", models_dir=tmp / "models")
    base = experiment.base_model(exp, epochs=1)
    reference = experiment.reference(exp, base)
    tuning = experiment.fine_tuning(exp, max_epochs=2, learning_rate=3e-3, checks_per_epoch=3, patience=2)
    control = experiment.control_variant(exp, base, reference, tuning)
    variant = experiment.clustered_variant(exp, base, 2, reference, control, tuning)
    return {"exp": exp, "base": base, "reference": reference, "tuning": tuning, "control": control,
            "variant": variant}


def test_the_control_keeps_its_weights_at_every_check_of_the_longest_chain(tuned):
    tuning, control = tuned["tuning"], tuned["control"]  # prune, cluster, then QAT: three maxima
    tuned_steps = control["fine_tuning"]["curve"]["steps"]
    assert tuned_steps[0] == 0 and tuned_steps[-1] == 3 * tuning.rule.max_steps == experiment.CONTROL_TIMES * (
        tuning.rule.max_steps)
    assert experiment.snapshots(tuned["exp"]).steps() == tuned_steps
    assert control["params"]["trajectory_steps"] == 3 * tuning.rule.max_steps


def test_a_variant_is_compared_with_the_control_after_as_many_steps(tuned):
    exp, variant, control = tuned["exp"], tuned["variant"], tuned["control"]
    steps = variant["fine_tuning"]["steps"]
    assert steps in variant["fine_tuning"]["curve"]["steps"] and steps <= tuned["tuning"].rule.max_steps
    paired = variant["vs_control"]["control"]
    assert paired == recovery.paired_name(control, steps)
    assert paired == "control-fp32" or paired == f"control-{steps}-steps-fp32"
    # the paired control is the control's own weights after those steps, measured like every variant
    model = experiment.snapshots(exp).load_into(experiment.compress.copy_model(tuned["base"]), steps)
    predicted = model.predict(exp.x_test, verbose=0).argmax(1)
    assert (load_correct(exp.results_dir, paired) == (predicted == exp.y_test)).mean() > 0.99
    assert variant["key"]["control"]["name"] == control["name"]  # its key names the control's whole trajectory


def test_the_kept_weights_are_the_best_checks(tuned):
    exp, tuning = tuned["exp"], tuned["tuning"]
    model = experiment.compress.cluster(tuned["base"], 2)
    curve = experiment.fine_tune(model, exp, tuning)
    accuracy = float((model.predict(exp.x_val, verbose=0).argmax(1) == exp.y_val).mean())
    assert accuracy == pytest.approx(curve.best_accuracy)
    assert np.all(np.diff(curve.steps) > 0) and all(s % tuning.rule.interval == 0 or s == tuning.rule.max_steps
                                                    for s in curve.steps)


def test_a_pytorch_fine_tuning_keeps_its_best_check_and_the_control_its_weights_at_every_check(tmp_path):
    """03's loop on random images: the checks fall on the rule's steps, every check's weights are kept, the model
    ends with its best check's (the control after n steps is exactly what was kept at step n)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from labkit.models import torch_models

    torch.manual_seed(0)
    images, labels = torch.rand(48, 1, 28, 28), torch.randint(0, 10, (48,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(images[:32], labels[:32]), batch_size=32)
    model, kept = torch_models.FashionClassifier(hidden=8), torch_models.Snapshots(tmp_path / "steps")
    rule = recovery.Rule(interval=2, patience=1, max_steps=8)
    curve = torch_models.fine_tune(model, loader, torch_models.adam(model, 1e-2), rule.to_the_maximum(), val,
                                   kept.keep)
    assert curve.steps == [0, 2, 4, 6, 8] == kept.steps()  # three batches an epoch: epochs run on to the maximum
    best = kept.load_into(torch_models.FashionClassifier(hidden=8), curve.best_step)
    assert all(torch.equal(a, b) for a, b in zip(best.state_dict().values(), model.state_dict().values(), strict=True))
    scores, truth = torch_models.predict(model, val)
    assert float((scores.argmax(1) == truth).mean()) == curve.best_accuracy
    assert recovery.paired_name({"name": "torch-control-fp32", "fine_tuning": {"steps": curve.best_step}}, 4) == (
        "torch-control-fp32" if curve.best_step == 4 else "torch-control-4-steps-fp32")
