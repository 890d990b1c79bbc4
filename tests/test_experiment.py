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


@pytest.mark.parametrize("steps", [1, 5, 100])
def test_warmup_cosine_rises_to_its_peak_then_falls_to_zero_by_the_last_step(steps):
    import labkit  # noqa: F401  (legacy Keras before TensorFlow)
    from labkit.keras_models import warmup_cosine

    rate = warmup_cosine(3e-3, steps)
    rates = [float(rate(step)) for step in range(steps + 1)]
    rise = steps // 10
    assert rates[rise] == pytest.approx(3e-3) and max(rates) == pytest.approx(3e-3)
    assert rates[0] == (0.0 if rise else pytest.approx(3e-3)) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert rates[rise:] == sorted(rates[rise:], reverse=True)
