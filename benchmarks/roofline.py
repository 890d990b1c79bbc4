"""Where a seed's time goes against what the cores can do: per stage of the lab, the FLOPs its training did, its
seconds, its GFLOP/s and its share of the cores' matmul peak.

`.venv/bin/python benchmarks/roofline.py results/fashion-mnist [--seed 42] [--models models]` reads one seed's
records and executed notebooks and the base models they name. The FLOPs are counted, not guessed: a forward pass
from the model's layers (Keras: the base file's convolutions and dense layers; PyTorch: the records' multiply-adds,
NNI's counter, of the base and of each pruned model), a training step as three forward passes, times the images
each stage trained on (the base's epochs from its history, each fine-tuning's steps from its recovery curve, times
its batch), plus the validation checks (one forward pass of every validation image each). A fine-tuning's seconds
are its record's (from its first check to its last); the bases' are their notebook cells'. What is left of the
notebooks' wall time (data, wrapping, conversion, evaluation, Netron, reports, kernel start, and any training done
twice) is the last row. The peak is a float32 2048³ matrix product on every core, measured here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from keras_levers import forward_flops  # noqa: E402
from lab_time import cells  # noqa: E402
from throughput import matmul_peak  # noqa: E402

# the records whose fine-tuning is one stage of the lab's Keras training, by the method their record names; a
# chained variant's own stage (the parents' stages are their own records)
KERAS_STAGES = {"clustering": ("Keras fine-tuning: clustered (TFMOT wrapper)", None),
                "pruning": ("Keras fine-tuning: pruned (TFMOT wrapper)", None),
                "pruning+clustering": ("Keras fine-tuning: prune → cluster, its clustering", "clustering"),
                "clustering+QAT": ("Keras fine-tuning: quantization-aware (CQAT, PCQAT)", "quantization_aware"),
                "pruning+clustering+QAT": ("Keras fine-tuning: quantization-aware (CQAT, PCQAT)",
                                           "quantization_aware")}


def _row(stage: str, images: float, gflop: float, seconds: float) -> dict:
    return {"stage": stage, "images": images, "GFLOP": gflop, "seconds": seconds}


def _fine_tuning(stage: str, tuned: dict, batch: int, train_flops: float, val_flops: float) -> dict:
    """One fine-tuning's row: its steps' images at `train_flops` each, and the checks after its first."""
    steps, checks = tuned["curve"]["steps"][-1], len(tuned["curve"]["steps"]) - 1
    return _row(stage, steps * batch, (steps * batch * train_flops + checks * val_flops) / 1e9, tuned["seconds"])


REST = "the rest: data, wrapping, conversion, evaluation, Netron, reports, kernel start"


def rows(seed_dir: Path, models: Path) -> list[dict]:
    """The stages of one seed's run, from its records, its base models and its executed notebooks."""
    from labkit.models.keras_models import load_model
    from labkit.records import load_records
    from labkit.results.summary import notebook_durations

    found = {r["name"]: r for r in load_records(seed_dir)}
    table = pd.concat([cells(n) for n in sorted((seed_dir / "notebooks").glob("*.ipynb"))], ignore_index=True)
    control = found["control-fp32"]
    chosen = control["key"]["selection"]
    validation = chosen["validation"]
    out = []

    base_file = models / Path(control["key"]["base"]["file"]).name
    forward = forward_flops(load_model(base_file))
    epochs = len(json.loads(base_file.with_suffix(".history.json").read_text())["loss"])
    seconds = table[(table.notebook == "01_clustering") & (table.stage == "base")].seconds.sum()
    out.append(_row("Keras base", epochs * chosen["train"],
                    epochs * (chosen["train"] * 3 + validation) * forward / 1e9, seconds))
    out.append(_fine_tuning("Keras control", control["fine_tuning"], control["params"]["batch_size"], 3 * forward,
                            validation * forward))
    for record in found.values():
        if record["method"] in KERAS_STAGES and "fine_tuning" in record:
            stage, part = KERAS_STAGES[record["method"]]
            tuned = record["fine_tuning"][part] if part else record["fine_tuning"]
            out.append(_fine_tuning(stage, tuned, record["params"]["batch_size"], 3 * forward, validation * forward))

    structured = [r for r in found.values() if r["method"] == "structured pruning"]
    nni = next(r for r in structured if r["params"]["pruner"] == "nni")
    torch_forward = 2 * nni["stages"]["base"]["flops"]
    torch_base = Path(nni["key"]["base"]["file"]).name
    epochs = len(json.loads((models / torch_base).with_suffix(".history.json").read_text())["loss"])
    seconds = table[(table.notebook == "03_structured_pruning") & (table.stage == "base")].seconds.sum()
    out.append(_row("PyTorch base", epochs * chosen["train"],
                    epochs * (chosen["train"] * 3 + validation) * torch_forward / 1e9, seconds))
    control = found["torch-control-fp32"]
    out.append(_fine_tuning("PyTorch control", control["fine_tuning"], control["params"]["batch_size"],
                            3 * torch_forward, validation * torch_forward))
    for record in structured:
        pruned = 2 * record["stages"]["pruned"]["flops"]
        out.append(_fine_tuning("PyTorch fine-tuning: structured-pruned (NNI, Torch-Pruning)", record["fine_tuning"],
                                record["params"]["batch_size"], 3 * pruned, validation * pruned))
    wall = sum(notebook_durations(seed_dir / "notebooks").values())
    out.append(_row(REST, 0, 0.0, wall - sum(r["seconds"] for r in out)))
    return out


def roofline(seed_dir: Path, models: Path, peak: float) -> pd.DataFrame:
    """The table: one row per stage (a stage's fine-tunings summed), then the seed's total."""
    found = pd.DataFrame(rows(seed_dir, models))
    order = list(dict.fromkeys(["Keras base", "Keras control", *(stage for stage, _ in KERAS_STAGES.values()),
                                *found.stage]))
    table = found.groupby("stage").sum().reindex([s for s in order if s in set(found.stage)])
    table.loc["total"] = table.sum()
    table["GFLOP/s"] = table.GFLOP / table.seconds
    table["% of peak"] = 100 * table["GFLOP/s"] / peak
    table["s at 60 % of peak"] = table.GFLOP / (0.6 * peak)
    table.loc[REST, ["GFLOP/s", "% of peak", "s at 60 % of peak"]] = None  # no counted training
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder, e.g. results/fashion-mnist")
    parser.add_argument("--seed", type=int, default=42, help="the seed whose run to read (default 42)")
    parser.add_argument("--models", type=Path, default=HERE.parent / "models",
                        help="where the run's base models are (default: the project's models/)")
    args = parser.parse_args()
    peak = matmul_peak()
    table = roofline(args.results / f"seed-{args.seed}", args.models, peak)
    print(f"seed {args.seed} of {args.results}; matmul peak {peak:.0f} GFLOP/s (float32 2048³ on every core)")
    print(table.round(1).to_markdown(floatfmt=",.1f"))


if __name__ == "__main__":
    main()
