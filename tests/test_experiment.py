"""Keras experiment steps that need no training."""

import pytest


@pytest.mark.parametrize("steps", [1, 5, 100])
def test_warmup_cosine_rises_to_its_peak_then_falls_to_zero_by_the_last_step(steps):
    import labkit  # noqa: F401  (legacy Keras before TensorFlow)
    from labkit.models.keras_models import warmup_cosine

    rate = warmup_cosine(3e-3, steps)
    rates = [float(rate(step)) for step in range(steps + 1)]
    rise = steps // 10
    assert rates[rise] == pytest.approx(3e-3) and max(rates) == pytest.approx(3e-3)
    assert rates[0] == (0.0 if rise else pytest.approx(3e-3)) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert rates[rise:] == sorted(rates[rise:], reverse=True)
