"""Two routes from a structured-pruned PyTorch classifier to INT8 TFLite, on the whole test set.

- ai-edge-quantizer's static recipe on the FP32 TFLite file (the lab's route, labkit.deploy.export.tflite_to_int8):
  full-integer, input and output int8 too, so TFLM runs it without a float op.
- PT2E: torch's export quantized with litert-torch's PT2EQuantizer (symmetric, per channel, static), calibrated on
  the same images, then converted (torchao's prepare_pt2e/convert_pt2e; torch 2.13 moved them there).

Prints each route's accuracy, its agreement with the FP32 file's classes, its size and whether TFLM runs it.

    .venv/bin/python benchmarks/int8_routes.py [--results-path results/fashion-mnist] [--name structured-0.5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import labkit  # noqa: F401  (legacy Keras before TensorFlow)
from labkit.data import load_fashion_mnist, preprocess
from labkit.deploy import micro, tflite
from labkit.deploy.export import tflite_to_int8
from labkit.models import torch_models
from labkit.results import seeds, stats
from labkit.run import runner

CALIBRATION = 300  # training images, as the notebook's int8_calibration


def pt2e_int8(model, calibration: np.ndarray, path: Path) -> Path:
    """PT2E static INT8 of a PyTorch model through litert-torch, calibrated on NCHW images."""
    import litert_torch
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    sample = (torch.from_numpy(calibration[:1]),)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = prepare_pt2e(torch.export.export(model.eval(), sample).module(), quantizer)
    with torch.no_grad():
        for x in calibration:
            prepared(torch.from_numpy(x[None]))
    converted = convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(converted, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
    return path


def routes(folder: Path, name: str, x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> pd.DataFrame:
    """Both routes' INT8 files of `name` (its fine-tuned stage) against its FP32 TFLite file."""
    fp32_path = folder / f"{name}-fp32.tflite"
    calibration = np.ascontiguousarray(x_train[:CALIBRATION].transpose(0, 3, 1, 2))
    test = np.ascontiguousarray(x_test.transpose(0, 3, 1, 2))
    import torch

    model = torch_models.FashionClassifier.from_state(
        torch.load(folder / f"{name}-fine-tuned.pt", map_location="cpu", weights_only=True))
    fp32 = tflite.predict(tflite.load(fp32_path), test).argmax(1)
    rows = {"FP32 (litert-torch)": fp32_path}
    with tempfile.TemporaryDirectory() as scratch:
        rows["INT8, ai-edge-quantizer static"] = tflite_to_int8(fp32_path, calibration, Path(scratch) / "aeq.tflite")
        rows["INT8, PT2E"] = pt2e_int8(model, calibration, Path(scratch) / "pt2e.tflite")
        found, lab_route = [], None
        for route, path in rows.items():
            interpreter = tflite.load(path, kernels="builtin")
            classes = tflite.predict(interpreter, test).argmax(1)
            correct = classes == y_test
            lab_route = correct if "ai-edge-quantizer" in route else lab_route
            missing = micro.missing_ops(path.read_bytes()) if micro.version() else ["(TFLM not installed)"]
            versus = stats.paired_delta(correct, lab_route) | stats.mcnemar_test(correct, lab_route) if (
                lab_route is not None) else {}
            found.append({"route": route, "accuracy": float(correct.mean()),
                          "Δ vs ai-edge-quantizer (pp)": versus.get("delta_pp", np.nan),
                          "95 % CI": f"{versus['low_pp']:+.2f} … {versus['high_pp']:+.2f}" if versus else "",
                          "McNemar p": versus.get("p_value", np.nan),
                          "same class as FP32": float((classes == fp32).mean()), "KB": path.stat().st_size / 1024,
                          "input, output": ", ".join(d["dtype"].__name__ for d in (
                              interpreter.get_input_details()[0], interpreter.get_output_details()[0])),
                          "runs under TFLM": "yes" if not missing else "no: " + ", ".join(missing)})
    return pd.DataFrame(found).set_index("route")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-path", default=str(runner.ROOT / "results" / "fashion-mnist"))
    parser.add_argument("--name", default="structured-0.5")
    args = parser.parse_args()
    found = seeds.seeds_in(args.results_path)
    folder = seeds.folder(args.results_path, found[0] if found else runner.SEED)
    data = load_fashion_mnist()
    table = routes(folder, args.name, preprocess(data.x_train), preprocess(data.x_test), data.y_test)
    print(table.to_markdown(floatfmt=",.4f"))


if __name__ == "__main__":
    main()
