"""Keras experiment steps that need no training."""

import pytest

from labkit import LabkitError, experiment


def test_a_variant_is_only_compared_with_a_control_of_the_same_budget():
    control = {"name": "control-1-epochs-fp32", "params": {"epochs": 1, "learning_rate": 1e-4}}
    experiment.check_budget(control, 1, 1e-4)
    with pytest.raises(LabkitError, match="control-1-epochs-fp32 was fine-tuned 1 epochs at 0.0001, the variant 2"):
        experiment.check_budget(control, 2, 1e-4)
    with pytest.raises(LabkitError, match="pass the control with the same budget"):
        experiment.check_budget(control, 1, 1e-3)
