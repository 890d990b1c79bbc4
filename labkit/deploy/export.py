"""Exporting trained models for edge runtimes: Keras to TFLite (FP32 or INT8), PyTorch to ONNX and TFLite."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from labkit.errors import LabkitError
from labkit.files import atomic_write_bytes
from labkit.quiet import native_stderr_closed


def to_tflite(model, path: Path | None = None) -> bytes:
    """Convert a Keras model to an FP32 TFLite flatbuffer; write it to `path` (atomically) if given."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the converter logs every temporary SavedModel it writes
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    if path:
        atomic_write_bytes(Path(path), flatbuffer)
    return flatbuffer


def to_int8_tflite(model, representative: np.ndarray, path: Path | None = None) -> bytes:
    """Full-integer post-training quantization: int8 weights, activations, input and output.

    `representative` is a few hundred training inputs that set the activation ranges.
    """
    import tensorflow as tf

    def samples() -> Iterator[list[np.ndarray]]:
        for x in representative:
            yield [x[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with native_stderr_closed(), warnings.catch_warnings():  # the calibrator prints its settings from C++
        # asks for input statistics only a frozen graph needs: a Keras model's ranges come from `representative`
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        flatbuffer = converter.convert()
    if path:
        atomic_write_bytes(Path(path), flatbuffer)
    return flatbuffer


def to_onnx(model, sample, path: Path) -> Path:
    """Export a PyTorch model to one self-contained ONNX file (batch dimension dynamic) and check it."""
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.stem + ".part.onnx")
    torch.onnx.export(model.eval(), (sample,), str(part), dynamo=False, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(onnx.load(str(part)))
    part.replace(path)
    return path


def torch_to_tflite(model, sample, path: Path) -> Path:
    """Convert a PyTorch model to FP32 TFLite with litert-torch (the renamed ai-edge-torch); input stays NCHW. The
    file takes batches of any size where dynamic_batch can give it that, as the ONNX export does."""
    import litert_torch

    path = Path(path)
    part = path.with_name(path.stem + ".part.tflite")
    litert_torch.convert(model.eval(), (sample,)).export(str(part))  # its step-by-step log is off: labkit.quiet
    dynamic_batch(part, model, sample)
    part.replace(path)
    return path


def dynamic_batch(path: Path, model, sample) -> bool:
    """Let a batch-1 TFLite file from litert-torch take any batch size; return whether it now does.

    litert-torch bakes its sample's batch into every RESHAPE (the course classifier's flatten, the NCHW input's
    layout change), and its `dynamic_shapes` fails on that flatten, so a file runs one image per call: 10,000 test
    images of the 16 M-weight classifier took 43 s, each call reading all of fc1's weights. Rewritten with TF's
    flatbuffer tools, every RESHAPE's leading 1 becomes -1 ("as many as the batch") and the activations' batch
    dimension is marked dynamic; batch-1 inference runs the same ops. The file is kept only if a batch of four
    then gives PyTorch's outputs; otherwise it stays as exported.
    """
    import torch
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    from labkit.deploy import tflite

    original = Path(path).read_bytes()
    flatbuffer = flatbuffer_utils.read_model_from_bytearray(bytearray(original))
    for graph in flatbuffer.subgraphs:
        if [list(graph.tensors[i].shape[:1]) for i in graph.inputs] != [[1]] * len(graph.inputs):
            return False
        for op in graph.operators:
            code = flatbuffer.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.RESHAPE:
                buffer = flatbuffer.buffers[graph.tensors[op.inputs[1]].buffer] if len(op.inputs) > 1 else None
                if buffer is None or buffer.data is None:
                    return False
                shape = np.frombuffer(bytes(buffer.data), dtype=np.int32).copy()
                if shape[0] != 1:
                    return False
                shape[0] = -1
                buffer.data = np.frombuffer(shape.tobytes(), dtype=np.uint8)
        for tensor in graph.tensors:
            constant = flatbuffer.buffers[tensor.buffer].data is not None
            if not constant and tensor.shape is not None and len(tensor.shape) and tensor.shape[0] == 1:
                tensor.shapeSignature = np.array([-1, *tensor.shape[1:]], dtype=np.int32)
    batch = np.random.default_rng(0).random((4, *sample.shape[1:]), dtype=np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(batch)).numpy()
    rewritten = bytes(flatbuffer_utils.convert_object_to_bytearray(flatbuffer))
    try:
        same = np.allclose(tflite.predict(tflite.load(rewritten), batch), expected, atol=1e-4)
    except (RuntimeError, ValueError, LabkitError):
        same = False
    if same:
        atomic_write_bytes(Path(path), rewritten)
    return same


def tflite_to_int8(fp32_path: Path, representative: np.ndarray, path: Path) -> Path:
    """Full-integer INT8 of an FP32 TFLite file (int8 weights, activations, input and output) with ai-edge-quantizer's
    static recipe: the route for models that come from PyTorch, whose converter has no Keras representative-dataset
    hook. `representative` is a few hundred inputs in the file's layout that set the activation ranges."""
    import contextlib
    import io

    from ai_edge_quantizer import quantizer, recipe

    from labkit.deploy import tflite

    signatures = tflite.load(fp32_path).get_signature_list()
    (signature, names), = signatures.items()
    (argument,) = names["inputs"]
    job = quantizer.Quantizer(str(fp32_path))
    job.load_quantization_recipe(recipe.static_wi8_ai8())
    samples = [{argument: x[None].astype(np.float32)} for x in representative]
    # it prints a size report, draws a progress bar of ops (not images) and warns that calibration keeps every tensor
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Warning: Enabling `experimental_preserve_all_tensors`")
        quantized = job.quantize(job.calibrate({signature: samples}))
    atomic_write_bytes(Path(path), inline_buffers(bytes(quantized.quantized_model)))
    return Path(path)


def inline_buffers(flatbuffer: bytes) -> bytes:
    """The same TFLite model with every weight buffer inside the flatbuffer. ai-edge-quantizer appends the buffers
    of a model with 256 KB of weights or more after the flatbuffer and stores their offsets; LiteRT reads those,
    TFLM does not and computes from garbage without an error (measured: 5 of 50 classes right). TensorFlow's
    flatbuffer tools read the offsets into the buffers and write them back inline."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def int8_parity(fp32_path: Path, int8_path: Path, batch: np.ndarray, tolerance: float = 0.25) -> dict[str, float]:
    """The INT8 file against the FP32 file it came from, on one batch: per image, the largest output difference
    relative to the spread of that image's FP32 outputs. INT8 rounds every activation, so outputs differ (the lab's
    classifier: 5 % of their spread in a typical image, 24 % in the worst of 64; barely trained tiny models: 1–11 %
    typical) and classes close to a tie may flip. Another model of the same shape is 45–118 % off in a typical image
    (measured on the tiny lab's pruned models and controls), so a file whose median image is off by more than
    `tolerance` is not the trained model, and fails loudly."""
    from labkit.deploy import tflite

    fp32, int8 = (tflite.predict(tflite.load(p, kernels="builtin"), batch) for p in (fp32_path, int8_path))
    relative = np.abs(int8 - fp32).max(axis=1) / np.maximum(np.ptp(fp32, axis=1), np.finfo(np.float32).tiny)
    found = {"int8_max_abs_diff": float(np.abs(int8 - fp32).max()),
             "int8_median_relative_diff": float(np.median(relative)),
             "int8_argmax_agreement": float((int8.argmax(1) == fp32.argmax(1)).mean())}
    if found["int8_median_relative_diff"] > tolerance:
        raise AssertionError(f"{int8_path} differs from its FP32 file by {found['int8_median_relative_diff']:.0%} of "
                             f"the outputs' spread in a typical image (tolerance {tolerance:.0%}): the INT8 model is "
                             "not the trained one")
    return found


def parity(model, onnx_path: Path, tflite_path: Path, batch: np.ndarray, tolerance: float = 1e-4) -> dict[str, float]:
    """Run one NCHW batch through PyTorch, ONNX Runtime and TFLite; fail loudly if outputs drift apart.

    Returns the max absolute difference of each export against PyTorch and their argmax agreement.
    """
    import torch

    from labkit.deploy import onnxrt, tflite

    with torch.no_grad():
        reference = model.eval()(torch.from_numpy(batch)).numpy()
    outputs = {"onnx": onnxrt.predict(onnxrt.load(onnx_path), batch),
               "tflite": tflite.predict(tflite.load(tflite_path), batch)}
    report = {}
    for name, out in outputs.items():
        report[f"{name}_max_abs_diff"] = float(np.abs(out - reference).max())
        report[f"{name}_argmax_agreement"] = float((out.argmax(1) == reference.argmax(1)).mean())
        if report[f"{name}_max_abs_diff"] > tolerance:
            raise AssertionError(f"{name} export differs from PyTorch by {report[f'{name}_max_abs_diff']:.2e} "
                                 f"(tolerance {tolerance:.0e}): the exported model is not the trained one")
    return report
