"""Keras runs several training steps per graph call (steps_per_execution): the same arithmetic, bit for bit, and the
recovery checks still see every interval's step."""

from __future__ import annotations

import numpy as np
import pytest

from labkit import LabkitError
from labkit.data import tf_dataset
from labkit.methods import compress
from labkit.methods.experiment import FineTuning
from labkit.models import keras_models, recovery

INTERVAL = 5


@pytest.fixture(scope="module")
def small():
    """A small CNN on 320 random images (5 batches an epoch) and 64 validation images."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.random((384, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 384)
    tf.keras.utils.set_random_seed(0)
    return keras_models.fashion_cnn(), x[:320], y[:320], x[320:], y[320:]


def _fine_tune(small, steps_per_execution: int, wrap=None, interval: int = INTERVAL):
    import tensorflow as tf

    base, x, y, x_val, y_val = small
    tf.keras.utils.set_random_seed(1)
    model = compress.copy_model(base)
    model = wrap(model) if wrap else model
    keras_models.compile_model(model, 1e-3, steps_per_execution=steps_per_execution)
    watch = recovery.keras_watch(recovery.Rule(interval, 10, 3 * interval), x_val, y_val)
    model.fit(tf_dataset(x, y, 64, shuffle=True, seed=1), epochs=3, callbacks=[watch], verbose=0)
    return [w.copy() for w in model.get_weights()], watch.curve


@pytest.mark.parametrize("wrap", [None, lambda m: compress.cluster(m, 4)], ids=["plain", "clustered"])
def test_steps_per_execution_changes_no_weight_and_no_check(small, wrap):
    one, curve_one = _fine_tune(small, 1, wrap)
    many, curve_many = _fine_tune(small, INTERVAL, wrap)
    assert curve_one.steps == curve_many.steps == [0, 5, 10, 15]
    assert curve_one.accuracy == curve_many.accuracy
    assert all(np.array_equal(a, b) for a, b in zip(one, many, strict=True))


def test_a_call_that_would_skip_a_check_is_refused(small):
    with pytest.raises(LabkitError, match="ran steps 1–3 in one call: compile with a steps_per_execution that "
                                          "divides 2"):
        _fine_tune(small, 3, interval=2)


def test_the_lab_runs_as_many_steps_per_call_as_fit_between_checks_and_epoch_ends():
    def tuning(interval: int, per_epoch: int) -> FineTuning:
        return FineTuning(recovery.Rule(interval, 3, 4 * interval), 1e-4, 64, per_epoch)

    assert tuning(211, 844).steps_per_execution == 211  # the lab: four checks an epoch
    assert tuning(6, 8).steps_per_execution == 2  # a check and an epoch's end two steps apart
