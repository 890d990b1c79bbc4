"""The TFLite runtime (FP32 and INT8) and the size measurements on small real models."""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from labkit import LabkitError
from labkit.deploy import size, tflite
from labkit.deploy.export import to_int8_tflite, to_tflite


@pytest.fixture(scope="module")
def keras_model():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(4, 3, activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10),
    ])
    return model


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(0).random((37, 8, 8, 1), dtype=np.float32)


def test_fp32_predictions_match_keras_in_any_batch(keras_model, inputs, tmp_path):
    path = tmp_path / "m.tflite"
    to_tflite(keras_model, path)
    interpreter = tflite.load(path)
    out = tflite.predict(interpreter, inputs, batch_size=16)  # 16 + 16 + 5
    np.testing.assert_allclose(out, keras_model.predict(inputs, verbose=0), atol=1e-5)


def test_int8_model_takes_float_inputs_and_agrees(keras_model, inputs):
    interpreter = tflite.load(to_int8_tflite(keras_model, inputs))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    out = tflite.predict(interpreter, inputs)
    ref = keras_model.predict(inputs, verbose=0)
    assert out.dtype == np.float32
    assert np.abs(out - ref).max() < 0.1 * np.abs(ref).max()
    assert (out.argmax(1) == ref.argmax(1)).mean() > 0.8


def test_latency_reports_median_and_spread(keras_model, inputs):
    stats = tflite.latency(tflite.load(to_tflite(keras_model)), inputs[0], warmup=2, runs=30)
    assert 0 < stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"] and stats["iqr_ms"] >= 0


def test_interleaved_latency_times_every_model(keras_model, inputs):
    calls = {"a": tflite.batch1_call(tflite.load(to_tflite(keras_model))),
             "b": tflite.batch1_call(tflite.load(to_int8_tflite(keras_model, inputs)), inputs[0])}
    stats = tflite.interleaved_latency(calls, rounds=3, runs=5, warmup=1)
    assert set(stats) == {"a", "b"} and all(s["median_ms"] > 0 and len(s["rounds_ms"]) == 3 for s in stats.values())


def test_corrupt_model_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(LabkitError, match="broken.tflite is not a valid TFLite model"):
        tflite.load(bad)


def test_deflation_matches_the_zip_on_disk(tmp_path):
    path = tmp_path / "model.tflite"
    rng = np.random.default_rng(0)
    path.write_bytes(rng.choice(np.float32([0.5, -0.25, 1.0, 0.0]), 20000).tobytes())
    result = size.deflation(path, reference_zipped=40000)
    zipped = path.with_name("model.tflite.zip")
    assert result["zipped_bytes"] == zipped.stat().st_size
    assert result["raw_bytes"] == 80000
    assert result["deflation_pct"] == pytest.approx(100 * (1 - result["zipped_bytes"] / 80000))
    assert result["times_smaller"] == pytest.approx(40000 / result["zipped_bytes"])
    with zipfile.ZipFile(zipped) as archive:
        assert archive.read("model.tflite") == path.read_bytes()


@pytest.mark.skipif(shutil.which("zip") is None, reason="no zip command")
def test_deflate_stream_is_the_zip_commands(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(np.random.default_rng(1).integers(0, 4, 50000, dtype=np.uint8).tobytes())
    ours = size.zip_model(path)
    theirs = tmp_path / "cmd.zip"
    subprocess.run(["zip", "-q", "-X", str(theirs), path.name], cwd=tmp_path, check=True)
    sizes = [zipfile.ZipFile(z).getinfo("w.bin").compress_size for z in (ours, theirs)]
    assert sizes[0] == sizes[1]


def test_bound_of_simple_tensors():
    n = 1024
    assert size.tensor_bound_bits(np.full(n, 0.5, np.float32)) == pytest.approx(32)  # one codebook entry
    assert size.tensor_bound_bits(np.zeros(n, np.float32)) == 0  # an all-zero map
    two = np.tile(np.float32([1.5, -2.0]), n // 2)
    assert size.tensor_bound_bits(two) == pytest.approx(n * 1 + 2 * 32)
    noise = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    assert size.tensor_bound_bits(noise) == pytest.approx(n * 32)
    sparse = noise.copy()
    sparse[: n // 2] = 0
    assert size.tensor_bound_bits(sparse) == pytest.approx(n * 1 + n / 2 * 32)


def test_entropy_bound_of_a_tflite_file(keras_model, tmp_path):
    path = tmp_path / "m.tflite"
    to_tflite(keras_model, path)
    tensors = size.weight_tensors(path)
    kernel_sizes = {w.size for w in keras_model.get_weights() if w.ndim > 1}
    assert kernel_sizes <= {t.size for t in tensors}
    zipped = size.deflation(path)["zipped_bytes"]
    bound = size.entropy_bound(path, zipped)
    assert 0 < bound["ideal_bytes"] <= path.stat().st_size
    assert 0 < bound["reached"] <= 1.2


def test_interleaved_rounds_visit_the_models_in_changing_orders_each_block_warmed():
    seen: list[str] = []
    calls = {name: tflite.Batch1Call(lambda n=name: seen.append(n), {}) for name in "abcd"}
    tflite.interleaved_latency(calls, rounds=6, runs=2, warmup=1, seed=3)
    blocks = [seen[i:i + 3] for i in range(0, len(seen), 3)]  # one warm-up call, then the two timed runs
    assert all(len(set(block)) == 1 for block in blocks) and len(blocks) == 24
    orders = {tuple(block[0] for block in blocks[r * 4:(r + 1) * 4]) for r in range(6)}
    assert len(orders) > 1 and all(sorted(order) == list("abcd") for order in orders)
    firsts = {blocks[r * 4][0] for r in range(6)}
    assert len(firsts) > 1  # no model always follows the previous round's last one
