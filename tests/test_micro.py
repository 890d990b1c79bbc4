"""TensorFlow Lite for Microcontrollers on tiny real models: the ops it lacks, the arena, the outputs against LiteRT,
look-up-table compression, the kept measurements, and which board a model fits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labkit import LabkitError
from labkit.deploy import boards, micro
from labkit.deploy.export import to_int8_tflite, to_tflite
from labkit.files import write_json
from labkit.records import read_record
from labkit.results import fit

pytestmark = pytest.mark.skipif(micro.version() is None, reason="tflite-micro is not installed (Linux x86_64 only)")
ARENA_FACTOR = 4  # a tiny CNN's arena is its activations: well below four times its file


@pytest.fixture(scope="module")
def keras_model():
    """A tiny CNN whose dense kernel holds four distinct values, as 4-cluster clustering leaves it."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((12, 12, 1)),
        tf.keras.layers.Conv2D(8, 3, activation="relu"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10),
    ])
    kernel, bias = model.layers[-1].get_weights()
    centroids = np.array([-0.2, -0.05, 0.05, 0.2], np.float32)
    model.layers[-1].set_weights([centroids[np.abs(kernel[..., None] - centroids).argmin(-1)], bias])
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((24, 12, 12, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def int8_file(keras_model, images, tmp_path_factory):
    path = tmp_path_factory.mktemp("int8") / "tiny-int8.tflite"
    to_int8_tflite(keras_model, images, path)
    return path


@pytest.fixture(scope="module")
def fp32_file(keras_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("fp32") / "tiny-fp32.tflite"
    to_tflite(keras_model, path)
    return path


def test_an_int8_model_runs_with_a_measured_arena_and_litert_builtin_outputs(int8_file, images):
    found = micro.measure(int8_file, images, np.zeros(len(images), int))
    size = int8_file.stat().st_size
    assert found["runs"] and found["missing_ops"] == [] and found["flash_bytes"] == size
    assert 0 < found["arena_bytes"] < ARENA_FACTOR * size
    model = int8_file.read_bytes()
    assert micro._allocates(model, found["arena_bytes"]) and not micro._allocates(model, found["arena_bytes"] - 1)
    assert found["vs_litert_builtin"]["identical_outputs"] == len(images) == found["sample"]
    assert found["runtime"].startswith(f"TFLM {micro.version()}")


def test_an_op_tflm_lacks_is_named_in_one_line(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def top3(x):
        return tf.math.top_k(x, 3).values

    path = tmp_path / "topk.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([top3.get_concrete_function()], top3).convert())
    found = micro.measure(path, np.zeros((2, 8), np.float32), np.zeros(2, int))
    assert found == {**found, "runs": False, "missing_ops": ["TOPK_V2"]}
    table = fit.board_table([{"name": "topk", "method": "other", "micro": found}])
    assert table.loc["topk", "runs under TFLM"] == "no: lacks TOPK_V2"


def test_lut_compression_shrinks_few_valued_kernels_with_identical_outputs(fp32_file, images):
    found = micro.measure(fp32_file, images, np.zeros(len(images), int))
    packed = found["compressed"]
    assert packed["index_bits"] == [2] and packed["tensors"] == 1  # the dense kernel; the conv's is not few-valued
    assert packed["flash_bytes"] < found["flash_bytes"]
    assert packed["identical_to_plain"] == len(images)
    assert packed["arena_bytes"] > found["arena_bytes"]  # TFLM decodes the kernel into the arena


def test_a_model_without_few_valued_weights_is_not_compressed(tmp_path):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    dense = tf.keras.Sequential([tf.keras.layers.Input((64,)), tf.keras.layers.Dense(64)])
    compressed, how = micro.lut_compress(to_tflite(dense, tmp_path / "dense.tflite"))
    assert compressed is None and "distinct values" in how["reason"]


def _variant(folder, name: str, tflite) -> dict:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.tflite").write_bytes(tflite.read_bytes())
    record = {"name": name, "method": "quantization", "files": [f"{name}.tflite"], "key": {"seed": 1}}
    write_json(folder / f"{name}.json", record)
    return record


def test_measurements_are_kept_and_redone_only_when_their_key_changes(int8_file, images, tmp_path, monkeypatch):
    record = _variant(tmp_path, "tiny-int8", int8_file)
    labels = np.zeros(len(images), int)
    first = micro.measure_variants(tmp_path, [record], images[:8], labels[:8])[0]["micro"]
    assert json.loads((tmp_path / "tiny-int8-micro.json").read_text()) == first
    monkeypatch.setattr(micro, "measure", lambda *_: pytest.fail("measured again with the same key"))
    assert micro.measure_variants(tmp_path, [record], images[:8], labels[:8])[0]["micro"] == first
    monkeypatch.undo()
    again = micro.measure_variants(tmp_path, [record], images[:6], labels[:6])[0]["micro"]
    assert again["sample"] == 6 and again["key"]["sample"] == 6
    assert read_record(tmp_path, "tiny-int8") == record  # the variant's own record is left as it was


def test_without_the_wheel_one_line_and_the_records_as_they_are(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(micro, "version", lambda: None)
    records = [{"name": "x"}]
    assert micro.measure_variants(tmp_path, records, np.zeros((1, 2)), np.zeros(1)) is records
    said = capsys.readouterr().out.strip().splitlines()
    assert said == [micro.MISSING] and f"pip install tflite-micro=={micro.PIN}" in said[0]
    with pytest.raises(LabkitError, match="not installed"):
        micro.measure(tmp_path / "x.tflite", np.zeros((1, 2)), np.zeros(1))


def test_a_variant_without_its_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(LabkitError, match="no record with a TFLite file"):
        micro.measure_variants(tmp_path, [{"name": "gone"}], np.zeros((1, 2)), np.zeros(1))


MEASURED = {"runs": True, "sample": 10, "flash_bytes": 900 * boards.KB, "arena_bytes": 100 * boards.KB,
            "compressed": {"flash_bytes": 100 * boards.KB, "arena_bytes": 800 * boards.KB, "identical_to_plain": 10}}


def test_a_board_takes_the_form_that_fits_its_flash_and_ram():
    nano, h7 = boards.BOARDS[0], boards.BOARDS[-1]
    assert boards.fitting_form(MEASURED, nano)["form"] == "plain"  # the compressed one's arena is too large
    assert boards.fitting_form(MEASURED, h7)["form"] == "LUT-compressed"  # both fit: the least flash
    assert boards.fitting_form({**MEASURED, "flash_bytes": 2000 * boards.KB}, nano) is None
    mismatch = {**MEASURED, "compressed": {**MEASURED["compressed"], "identical_to_plain": 9}}
    assert [f["form"] for f in boards.forms(mismatch)] == ["plain"]  # a compressed file that differs is not used
    assert boards.ALLOWANCE.ram(100 * boards.KB) == int(125 * boards.KB) + 16 * boards.KB


def test_own_boards_come_from_a_csv_file_and_a_bad_one_is_named(tmp_path):
    own = tmp_path / "boards.csv"
    own.write_text("name,chip,sram_kb,flash_kb\nMy board,Cortex-M33,128,512\n")
    assert boards.load(own)[-1] == boards.Board("My board", "Cortex-M33", 128 * boards.KB, 512 * boards.KB)
    own.write_text("name,sram\nMy board,128\n")
    with pytest.raises(LabkitError, match="name, chip, sram_kb and flash_kb"):
        boards.load(own)
    with pytest.raises(LabkitError, match="does not exist"):
        boards.load(tmp_path / "missing.csv")


def test_the_worst_seed_decides_whether_a_variant_fits():
    other = {**MEASURED, "arena_bytes": 120 * boards.KB, "compressed": {**MEASURED["compressed"],
                                                                         "identical_to_plain": 8}}
    combined = fit.worst([MEASURED, other])
    assert combined["arena_bytes"] == 120 * boards.KB and combined["compressed"]["identical_to_plain"] == 8


def test_weights_stored_after_the_flatbuffer_are_refused_and_inlined(tmp_path):
    """ai-edge-quantizer keeps the weights of a model with 256 KB of them after the flatbuffer; TFLM would compute
    from garbage, so the lab writes them inline and refuses such a file in one line."""
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    from labkit.deploy.export import inline_buffers

    tf.keras.utils.set_random_seed(2)
    dense = tf.keras.Sequential([tf.keras.layers.Input((16,)), tf.keras.layers.Dense(10)])
    plain = to_tflite(dense, tmp_path / "plain.tflite")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(plain))
    kernel = max(range(len(model.buffers)), key=lambda i: len(model.buffers[i].data if model.buffers[i].data
                                                                is not None else []))
    data = bytes(model.buffers[kernel].data)
    model.buffers[kernel].data, model.buffers[kernel].offset, model.buffers[kernel].size = None, 1, 1
    head = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    padded = head + bytes(-len(head) % 16)
    model.buffers[kernel].offset, model.buffers[kernel].size = len(padded), len(data)
    outside = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert len(outside) == len(head)  # the offsets fit the same bytes
    outside = outside + bytes(-len(outside) % 16) + data
    (tmp_path / "outside.tflite").write_bytes(outside)
    assert micro.external_buffers(outside) == 1
    found = micro.measure(tmp_path / "outside.tflite", np.zeros((2, 16), np.float32), np.zeros(2, int))
    assert not found["runs"] and "outside the flatbuffer" in found["unsupported"]
    assert micro.external_buffers(inline_buffers(outside)) == 0
    x = np.random.default_rng(0).random((4, 16), dtype=np.float32)
    from labkit.deploy import tflite

    inlined = tflite.predict(tflite.load(inline_buffers(outside)), x)
    assert np.array_equal(inlined, tflite.predict(tflite.load(plain), x))


def test_an_int8_file_of_another_model_fails_parity_and_its_own_passes(keras_model, fp32_file, int8_file, images,
                                                                        tmp_path):
    import tensorflow as tf

    from labkit.deploy.export import int8_parity

    assert int8_parity(fp32_file, int8_file, images)["int8_median_relative_diff"] < 0.25
    other = tf.keras.models.clone_model(keras_model)  # the same layers, initialised afresh
    to_int8_tflite(other, images, tmp_path / "other-int8.tflite")
    with pytest.raises(AssertionError, match="is not the trained one"):
        int8_parity(fp32_file, tmp_path / "other-int8.tflite", images)
