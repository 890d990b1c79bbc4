"""The checks of the student edition's test cells: properties of an answer, never its text.

A test cell runs its asserts inside `task(name)`: whatever fails (an assert, a name the answer did not define, an
error inside a check) reaches the student as one line, `WrongAnswer: <task>: <what is wrong>`, and not as a
traceback; the autograder scores the cell 0 all the same. The helpers here measure what the asserts compare: how
many distinct values a kernel holds, whether an exported model computes what the trained one does.
"""

from __future__ import annotations

import re
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from labkit.errors import WrongAnswer


@contextmanager
def task(name: str) -> Iterator[None]:
    """Run a test cell's checks; any failure becomes a WrongAnswer whose one line names the task and the reason."""
    try:
        yield
    except WrongAnswer as err:
        raise WrongAnswer(f"{name}: {err}") from None
    except AssertionError as err:
        raise WrongAnswer(f"{name}: {_first_line(err) or 'a check failed'}") from None
    except NotImplementedError:
        raise WrongAnswer(f"{name}: not answered yet: write the code of the task in its cell above") from None
    except NameError as err:
        raise WrongAnswer(f"{name}: {_first_line(err)}: run your cell above and keep the names it asks for") from None
    except Exception as err:  # whatever an answer of the wrong kind makes a check raise
        raise WrongAnswer(f"{name}: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def close(ours: np.ndarray, reference: np.ndarray, tolerance: float = 1e-4) -> float:
    """The largest absolute difference of two outputs, checked against `tolerance` (relative to outputs larger
    than 1); a different shape is a WrongAnswer."""
    ours, reference = np.asarray(ours, np.float32), np.asarray(reference, np.float32)
    if ours.shape != reference.shape:
        raise WrongAnswer(f"outputs have shape {ours.shape}, expected {reference.shape}")
    difference = float(np.abs(ours - reference).max())
    if difference > tolerance * max(1.0, float(np.abs(reference).max())):
        raise WrongAnswer(f"outputs differ from the trained model's by up to {difference:.2g} (tolerance "
                          f"{tolerance:g}): is it the trained model, converted without quantization?")
    return difference


# Keras and TFMOT


def snapshot(model) -> list[np.ndarray]:
    """A copy of a Keras model's weights, to check later that an answer left the model as it was."""
    return [np.array(w) for w in model.get_weights()]


def unchanged(model, weights: list[np.ndarray]) -> bool:
    """Whether a Keras model still holds exactly the weights of its snapshot."""
    now = model.get_weights()
    return len(now) == len(weights) and all(np.array_equal(a, b) for a, b in zip(now, weights, strict=True))


def wrappers(model) -> dict[str, Any]:
    """The TFMOT wrappers of a Keras model, by the name of the layer each wraps."""
    import tensorflow as tf

    return {layer.layer.name: layer for layer in model.layers if isinstance(layer, tf.keras.layers.Wrapper)}


def kernels(model, names: list[str]) -> dict[str, np.ndarray]:
    """The kernels of the named layers of a Keras model; a named layer without a kernel is a WrongAnswer."""
    layers = {layer.name: layer for layer in model.layers}
    missing = [name for name in names if getattr(layers.get(name), "kernel", None) is None]
    if missing:
        raise WrongAnswer(f"the model has no kernel in layer(s) {', '.join(missing)}: is it the stripped model?")
    return {name: np.array(layers[name].kernel) for name in names}


def fitted(model, watch, learning_rate: float) -> None:
    """A Keras model was compiled with Adam at `learning_rate` and fitted with the given `watch` among its
    callbacks, which stopped it (experiment.watch): every step it took, the watch saw."""
    import tensorflow as tf

    optimizer = getattr(model, "optimizer", None)
    if not isinstance(optimizer, tf.keras.optimizers.Adam):
        raise WrongAnswer(f"the model was compiled with {type(optimizer).__name__}: use the given optimizer (Adam)")
    rate = float(tf.keras.backend.get_value(optimizer.learning_rate))
    if not np.isclose(rate, learning_rate):
        raise WrongAnswer(f"the optimizer's learning rate is {rate:g}, the given one {learning_rate:g}")
    if not watch.curve.steps:
        raise WrongAnswer("fit did not run the given watch: pass callbacks=callbacks")
    steps = int(optimizer.iterations.numpy())
    if steps != watch.step or watch.model is not model:
        raise WrongAnswer(f"the model took {steps} training steps, the watch saw {watch.step} of this model: fit it "
                          "once, with callbacks=callbacks")


def keras_tflite_agree(flatbuffer: bytes, model, images: np.ndarray) -> float:
    """An FP32 TFLite flatbuffer computes what the Keras model does on `images` (float32 input and output)."""
    from labkit.deploy import tflite

    if not isinstance(flatbuffer, bytes):
        raise WrongAnswer(f"the TFLite model is a {type(flatbuffer).__name__}, not the converter's bytes")
    interpreter = tflite.load(flatbuffer)
    kinds = {d["dtype"] for d in (*interpreter.get_input_details(), *interpreter.get_output_details())}
    if kinds != {np.float32}:
        raise WrongAnswer(f"the TFLite model takes or gives {sorted(k.__name__ for k in kinds)}: convert to FP32")
    return close(tflite.predict(interpreter, images), model.predict(images, verbose=0))


def tflite_classes(path: Path, images: np.ndarray) -> np.ndarray:
    """The class a TFLite model predicts for each image, as the lab's interpreter runs it."""
    from labkit.deploy import tflite

    return tflite.predict(tflite.load(path), images).argmax(axis=1)


def int8_copy(model, calibration: np.ndarray) -> Path:
    """An INT8-quantized TFLite file of a Keras model (int8 input and output), in a temporary folder."""
    from labkit.deploy.export import to_int8_tflite

    path = Path(tempfile.mkdtemp(prefix="labkit-check-")) / "int8.tflite"
    to_int8_tflite(model, calibration, path)
    return path


# PyTorch and NNI


def traced(optimizer) -> bool:
    """Whether an optimizer was built through nni.trace (so a pruner can rebuild it)."""
    from nni.common.serializer import is_traceable

    return is_traceable(optimizer)


def optimizes(optimizer, model) -> bool:
    """Whether a PyTorch optimizer updates exactly the parameters of `model`."""
    ours = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return ours == {id(p) for p in model.parameters()}


def learning_rate(optimizer) -> float:
    """The learning rate of a PyTorch optimizer's (first) parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def adam_steps(optimizer) -> int:
    """How many update steps an Adam optimizer has taken (0 before the first)."""
    counts = {int(state["step"]) for state in optimizer.state.values() if "step" in state}
    return max(counts, default=0)


def pruned_widths(shapes: dict[str, list[int]], sparsity: float, excluded: tuple[str, ...]) -> dict[str, int]:
    """The output width NNI leaves each layer of a model with these weight shapes at `sparsity`: it removes
    int(sparsity × width) channels or neurons from every layer not excluded."""
    return {name: shape[0] - (0 if name in excluded else int(sparsity * shape[0])) for name, shape in shapes.items()}


def pruning_log(text: str) -> dict[str, tuple[int, int]]:
    """Remaining and total channels per layer, from the lines NNI's show_pruned_weights logs."""
    return {name: (int(remain), int(total))
            for name, remain, total in re.findall(r"simulated prune (\S+) remain/total: (\d+)/(\d+)", text)}


BUSY_MS = 250.0  # what a busy machine may add to a batch-1 time measured on the default threads (describes)


def describes(summary: Any, measured: dict[str, Any], test_images: int) -> None:
    """A stage's summary (`shapes`, `accuracy`, `latency (ms)`) agrees with what the lab measured of that stage: the
    same layer shapes, the accuracy to within one test image, the batch-1 time neither a hundred times shorter (a
    time in seconds is a thousand times off) nor more than a hundred times longer plus BUSY_MS (a time in
    microseconds is a thousand times off; a loaded machine adds tens of ms to every run of a small model on the
    default threads, whatever its size: 46 ms for a 0.12 ms model on a 2-core machine running other tests)."""
    if not isinstance(summary, dict) or not {"shapes", "accuracy", "latency (ms)"} <= set(summary):
        raise WrongAnswer("a stage's summary is a dict with the keys shapes, accuracy and latency (ms)")
    shapes = {layer: list(shape) for layer, shape in dict(summary["shapes"]).items()}
    if shapes != measured["shapes"]:
        raise WrongAnswer(f"the shapes {shapes} are not the model's, {measured['shapes']}")
    accuracy = float(summary["accuracy"])
    if abs(accuracy - measured["accuracy"]) > 1 / test_images:
        raise WrongAnswer(f"accuracy {accuracy:g} is not the model's {measured['accuracy']:.4f} on the test images "
                          "(a share, not a percentage)")
    ms, lab = float(summary["latency (ms)"]), measured["latency"]["median_ms"]
    if not lab / 100 <= ms <= lab * 100 + BUSY_MS:
        raise WrongAnswer(f"a batch-1 inference takes {ms:.3g} ms by your count, {lab:.3g} ms by the lab's: give the "
                          "median time of one-image runs, in milliseconds")


def onnx_agrees(path: Path, model, images: np.ndarray) -> float:
    """An ONNX file computes what the PyTorch model does on a batch of NCHW `images` (batch dimension dynamic)."""
    import torch

    from labkit.deploy import onnxrt

    with torch.no_grad():
        reference = model.eval()(torch.from_numpy(images)).numpy()
    try:
        ours = onnxrt.predict(onnxrt.load(path), images)
    except Exception as err:  # ONNX Runtime names a fixed batch size in its own exception types
        raise WrongAnswer(f"ONNX Runtime cannot run a batch of {len(images)} on {Path(path).name} "
                          f"({_first_line(err)[:120]}): export with a dynamic batch dimension") from None
    return close(ours, reference)


def torch_tflite_agree(path: Path, model, images: np.ndarray) -> float:
    """A TFLite file computes what the PyTorch model does on NCHW `images` (float32 input and output)."""
    import torch

    from labkit.deploy import tflite

    with torch.no_grad():
        reference = model.eval()(torch.from_numpy(images)).numpy()
    interpreter = tflite.load(path)
    if interpreter.get_input_details()[0]["dtype"] != np.float32:
        raise WrongAnswer(f"{Path(path).name} does not take float32 input: convert to FP32")
    return close(tflite.predict(interpreter, images), reference)


def netron_serves(view, path: Path) -> bool:
    """Whether a Netron view (the IFrame a notebook displays) is served by a Netron server holding `path`."""
    port = re.search(r":(\d+)/?$|/proxy/(\d+)/?$", str(getattr(view, "src", "")))
    if port is None:
        return False
    url = f"http://127.0.0.1:{port.group(1) or port.group(2)}/data/{Path(path).name}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read() == Path(path).read_bytes()
    except OSError:
        return False
