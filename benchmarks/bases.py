"""Train each base-model option of the lab from scratch with labkit's own code; print its time and test accuracy.

    python benchmarks/bases.py                                  # every option, seed 42
    python benchmarks/bases.py --options keras-cosine-54k-e6 --seeds 42 43 44 --out bases.jsonl

Each (option, seed) runs in a fresh process through the calls the notebooks make (`experiment.prepare` and
`experiment.base_model` for the Keras CNN of 01/02; the data, loaders and `torch_models.base_classifier` of 03),
with an empty models folder, so it measures what a default run does when it trains its bases. Training time is the
base call's wall time (training, validation after each epoch, saving). Other work on the machine slows it: each row
gives `uptime`'s 1-minute load average when training ended (this process adds about 2 to it) and the cores that
other processes kept busy meanwhile (from /proc/stat, less this process's own CPU time). Test accuracy is on the
full test set, of the model in its framework (the lab's records evaluate its TFLite export).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Option:
    """One way to train a base: which base, on how many images (train_samples; None: all 60,000), batch, epochs,
    learning rate (the peak of a schedule), and patience (None: the schedule, every epoch; a number: constant rate
    with early stopping)."""

    base: str  # "keras" (01/02) or "torch" (03)
    train_samples: int | None
    batch_size: int
    epochs: int
    learning_rate: float
    patience: int | None


OPTIONS = {
    "keras-early-stopping": Option("keras", 30000, 64, 20, 1e-3, 2),
    "keras-cosine-27k-e6": Option("keras", 30000, 64, 6, 3e-3, None),
    "keras-cosine-27k-e8": Option("keras", 30000, 64, 8, 3e-3, None),
    "keras-cosine-54k-e6": Option("keras", None, 64, 6, 3e-3, None),
    "torch-early-stopping": Option("torch", 30000, 256, 5, 1e-3, 2),
    "torch-onecycle-27k-e3": Option("torch", 30000, 256, 3, 2e-3, None),
    "torch-onecycle-27k-e3-lr1e-3": Option("torch", 30000, 256, 3, 1e-3, None),
    "torch-onecycle-27k-e4": Option("torch", 30000, 256, 4, 2e-3, None),
    "torch-onecycle-54k-e4": Option("torch", None, 256, 4, 2e-3, None),
}


def busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (every state of /proc/stat's cpu line but idle and
    iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time of a block, `uptime`'s 1-minute load average at its end, and the cores other processes kept busy
    meanwhile (all busy CPU time less this process's own, over the wall time)."""

    def __enter__(self) -> Meter:
        self.busy, self.own, self.start = busy_seconds(), sum(os.times()[:2]), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
        own = sum(os.times()[:2]) - self.own
        self.others = max(0.0, busy_seconds() - self.busy - own) / self.seconds
        self.load = os.getloadavg()[0]


def train_keras(option: Option, seed: int, folder: Path, meter: Meter) -> tuple[dict, float]:
    """The Keras CNN as 01 and 02 train it: its base_info and test accuracy."""
    from labkit.methods import experiment

    exp = experiment.prepare("fashion-mnist", train_samples=option.train_samples, batch_size=option.batch_size,
                             seed=seed, results_dir=folder / "results", models_dir=folder / "models")
    with meter:
        model = experiment.base_model(exp, option.epochs, option.learning_rate, option.patience)
    return exp.base_info, experiment.accuracy_now(exp, model)


def train_torch(option: Option, seed: int, folder: Path, meter: Meter) -> tuple[dict, float]:
    """The course's classifier as 03 trains it: its base_info and test accuracy."""
    from labkit import records
    from labkit.data import describe, load_dataset, preprocess, torch_loader, train_validation_split
    from labkit.models import torch_models

    data = load_dataset(describe("fashion-mnist"), option.train_samples, 1.0, seed=seed)
    x_train, y_train, x_val, y_val = train_validation_split(preprocess(data.x_train), data.y_train, 0.1, seed)
    x_test = preprocess(data.x_test)
    train_loader = torch_loader(x_train, y_train, option.batch_size, shuffle=True, seed=seed)
    val_loader = torch_loader(x_val, y_val, 1024)
    context = records.context(data, seed, records.TORCH, option.train_samples, 1.0, 0.1, x_train, x_val, x_test)
    with meter:
        model, info = torch_models.base_classifier(folder / "models", train_loader, val_loader, option.learning_rate,
                                                   option.epochs, option.patience, context, data.num_classes,
                                                   data.key)
    scores, labels = torch_models.predict(model, torch_loader(x_test, data.y_test, 1024))
    return info, float((scores.argmax(1) == labels).mean())


def run_one(name: str, seed: int) -> dict:
    """Train one option for one seed in this process, in a temporary folder, and measure it."""
    import labkit  # noqa: F401  (legacy Keras before TensorFlow)

    option, meter = OPTIONS[name], Meter()
    trainer = train_keras if option.base == "keras" else train_torch
    with tempfile.TemporaryDirectory(prefix="bases-") as tmp:
        info, accuracy = trainer(option, seed, Path(tmp), meter)
    history = info["history"]["val_accuracy"]
    return {"option": name, "base": option.base, "seed": seed, "train images": info["train_samples"],
            "batch": option.batch_size, "schedule": info["schedule"], "peak lr": option.learning_rate,
            "epochs run": len(history), "best epoch": info["epochs"], "training (s)": round(meter.seconds, 1),
            "load (1 min)": round(meter.load, 2), "other cores busy": round(meter.others, 2),
            "val accuracy": round(max(history), 4), "test accuracy": round(accuracy, 4),
            "val accuracy by epoch": [round(v, 4) for v in history]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--out", type=Path, help="also append each row to this JSON-lines file")
    parser.add_argument("--one", nargs=2, metavar=("OPTION", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return
    rows = []
    for name in args.options:
        for seed in args.seeds:
            done = subprocess.run([sys.executable, __file__, "--one", name, str(seed)], cwd=ROOT, check=True,
                                  stdout=subprocess.PIPE, text=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(" | ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
            if args.out:
                with args.out.open("a") as out:
                    out.write(json.dumps(rows[-1]) + "\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
