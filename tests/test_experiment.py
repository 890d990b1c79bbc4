"""Keras experiment steps that need no training."""

import pytest

from labkit import LabkitError, experiment


def test_a_variant_is_only_compared_with_a_control_of_the_same_budget():
    control = {"name": "control-1-epochs-fp32", "params": {"epochs": 1, "learning_rate": 1e-4, "batch_size": 64}}
    experiment.check_budget(control, {"epochs": 1, "learning_rate": 1e-4, "batch_size": 64})
    with pytest.raises(LabkitError, match="control-1-epochs-fp32 was fine-tuned 1 epochs at 0.0001 in batches of 64, "
                                          "the variant 2 epochs"):
        experiment.check_budget(control, {"epochs": 2, "learning_rate": 1e-4, "batch_size": 64})
    for other in ({"learning_rate": 1e-3}, {"batch_size": 128}):
        with pytest.raises(LabkitError, match="pass the control with the same budget"):
            experiment.check_budget(control, {"epochs": 1, "learning_rate": 1e-4, "batch_size": 64, **other})
