"""Every timing names its runtime: LiteRT's kernels (XNNPACK or built-in), threads, delegated ops and the CPU."""

from importlib.metadata import version

import numpy as np
import pytest

from labkit import LabkitError
from labkit.deploy import tflite
from labkit.deploy.export import to_tflite
from labkit.results import answers, speed


@pytest.fixture(scope="module")
def model() -> bytes:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    return to_tflite(tf.keras.Sequential([tf.keras.layers.Input((8, 8, 1)), tf.keras.layers.Conv2D(4, 3),
                                          tf.keras.layers.Flatten(), tf.keras.layers.Dense(10)]))


def op_names(interpreter) -> list[str]:
    return [op["op_name"] for op in interpreter._get_ops_details()]


def test_a_latency_names_its_runtime(model):
    sample = np.zeros((8, 8, 1), np.float32)
    timed = tflite.latency(tflite.load(model), sample, warmup=1, runs=3)["runtime"]
    assert timed["engine"] == "LiteRT" and timed["version"] == version("ai-edge-litert")
    assert timed["threads"] == 1 and timed["kernels"] == "xnnpack"
    assert timed["ops"] == timed["delegated_ops"] == 3 and timed["builtin_ops"] == 0 and timed["partitions"] == 1
    assert timed["cpu"]["model"] and timed["cpu"]["arch"]
    builtin = tflite.latency(tflite.load(model, num_threads=2, kernels="builtin"), sample, warmup=1, runs=3)
    assert builtin["runtime"]["threads"] == 2 and builtin["runtime"]["kernels"] == "builtin"
    assert builtin["runtime"]["delegated_ops"] == 0 and builtin["runtime"]["builtin_ops"] == 3


def test_only_xnnpack_adds_a_delegate_node(model):
    assert op_names(tflite.load(model)).count("DELEGATE") == 1
    assert "DELEGATE" not in op_names(tflite.load(model, kernels="builtin"))
    with pytest.raises(LabkitError, match="unknown TFLite kernels 'gpu'"):
        tflite.load(model, kernels="gpu")


def test_ops_xnnpack_cannot_run_stay_with_the_builtin_kernels():
    import tensorflow as tf

    inputs = tf.keras.layers.Input((8,))
    hidden = tf.keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=1))(tf.keras.layers.Dense(8)(inputs))
    split = tflite.load(to_tflite(tf.keras.Model(inputs, tf.keras.layers.Dense(4)(hidden))))
    ran = tflite.runtime(split)
    assert (ran["ops"], ran["delegated_ops"], ran["partitions"], ran["builtin_op_names"]) == (3, 2, 2, ["CUMSUM"])
    assert "XNNPACK (2 of 3 ops in 2 partitions; CUMSUM on built-in kernels)" in tflite.describe(ran)


def test_interleaved_timings_name_each_runtime(model):
    calls = {kernels: tflite.batch1_call(tflite.load(model, kernels=kernels)) for kernels in tflite.KERNELS}
    timed = tflite.interleaved_latency(calls, rounds=2, runs=2, warmup=1)
    assert {name: t["runtime"]["kernels"] for name, t in timed.items()} == {"xnnpack": "xnnpack",
                                                                            "builtin": "builtin"}
    assert tflite.describe(timed["xnnpack"]["runtime"]).endswith("XNNPACK (3 of 3 ops), 1 thread")
    assert "built-in kernels, 1 thread" in tflite.describe(timed["builtin"]["runtime"])


def test_onnx_runtime_and_pytorch_timings_name_theirs(tmp_path):
    import torch

    from labkit.deploy import onnxrt
    from labkit.deploy.export import to_onnx
    from labkit.models import torch_models

    model, sample = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4)), torch.zeros(1, 1, 4, 4)
    session = onnxrt.load(to_onnx(model, sample, tmp_path / "m.onnx"))
    onnx = onnxrt.latency(session, sample[0].numpy(), warmup=1, runs=3)["runtime"]
    assert (onnx["engine"], onnx["threads"], onnx["provider"]) == ("ONNX Runtime", 1, "CPUExecutionProvider")
    pytorch = torch_models.latency(model, sample, warmup=1, runs=3)["runtime"]
    assert (pytorch["engine"], pytorch["version"], pytorch["threads"]) == ("PyTorch", torch.__version__, 1)
    assert pytorch["cpu_capability"] and pytorch["cpu"] == onnx["cpu"] == tflite.cpu()


def test_the_cpu_is_read_from_cpuinfo_on_x86_and_arm():
    x86 = tflite.cpu_from("model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma\nmodel name\t: AMD EPYC\n")
    assert x86["model"] == "AMD EPYC" and x86["vector_extensions"] == ["sse4_2", "avx", "avx2", "fma"]
    arm = tflite.cpu_from("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd0c\n")
    assert arm["vector_extensions"] == ["asimd", "asimddp", "i8mm"]
    assert "asimd, asimddp, i8mm" in tflite.describe_cpu(arm)


def timed(name: str, method: str, xnnpack_ms: float, builtin_ms: float) -> dict:
    """A synthetic record timed on both runtimes, with 15 interleaved rounds each."""
    noise = np.random.default_rng(len(name)).lognormal(0, 0.02, 15)
    cpu = {"model": "AMD EPYC", "arch": "x86_64", "vector_extensions": ["avx", "avx2", "fma"]}

    def latency(ms: float, kernels: str) -> dict:
        runtime = {"engine": "LiteRT", "version": "2.3.0", "threads": 1, "kernels": kernels, "ops": 7,
                   "delegated_ops": 7 if kernels == "xnnpack" else 0, "partitions": int(kernels == "xnnpack"),
                   "builtin_ops": 0 if kernels == "xnnpack" else 7, "builtin_op_names": [], "cpu": cpu}
        return {"median_ms": ms, "iqr_ms": 0.0, "rounds_ms": list(ms * noise), "runtime": runtime}

    return {"name": name, "method": method, "params": {}, "metrics": {"accuracy": 0.9}, "accuracy_change_pp": 0.0,
            "size": {"times_smaller": 1.0}, "latency": latency(xnnpack_ms, "xnnpack"),
            "latency_builtin": latency(builtin_ms, "builtin")}


def test_the_int8_speed_answer_names_both_runtimes_and_why_they_disagree():
    records = [timed("base-fp32", "none", 0.086, 0.235), timed("quantized-int8", "quantization", 0.122, 0.168),
               timed("clustered-16-fp32", "clustering", 0.086, 0.235)]
    int8, clustered, _, one_seed = answers.answer_quality_and_speed(records).splitlines()
    assert one_seed.startswith("One seed: this speaks of these trained models")
    assert "1.42× slower (95 % CI" in int8 and "with XNNPACK (LiteRT's default)" in int8
    assert "1.40× faster (95 % CI" in int8 and "with the built-in kernels" in int8
    assert "8 input channels" in int8 and "without VNNI" in int8
    assert "built-in" not in clustered  # only INT8 is compared on both runtimes
    note = speed.timing_note(records)
    assert "LiteRT 2.3.0, XNNPACK (7 of 7 ops), 1 thread" in note and "built-in kernels" in note
    assert "AMD EPYC (x86_64: avx, avx2, fma)" in note
