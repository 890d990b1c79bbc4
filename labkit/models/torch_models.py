"""The course's PyTorch Fashion-MNIST classifier, with training, evaluation and batch-1 latency."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labkit.deploy.tflite import Batch1Call, cpu, time_call
from labkit.errors import LabkitError
from labkit.files import atomic_write_bytes
from labkit.models import recovery
from labkit.progress import tqdm
from labkit.records import Context, file_identity


class FashionClassifier(nn.Module):
    """conv1..conv3 (1→8→16→32, 3x3, ReLU), fc1 (15488→1024, ReLU), fc2 (1024→10 logits).

    The flatten reads the shape, so the model still runs after structured pruning shrinks conv3
    (a hard-coded `view(-1, 32*22*22)` breaks after ModelSpeedup). The output stays logits: the
    course's Softmax before CrossEntropyLoss applied softmax twice and slowed learning.
    """

    def __init__(self, num_classes: int = 10, channels: tuple[int, int, int] = (8, 16, 32), hidden: int = 1024):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels[0], 3)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3)
        self.conv3 = nn.Conv2d(channels[1], channels[2], 3)
        self.fc1 = nn.Linear(channels[2] * 22 * 22, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.relu = nn.ReLU()

    @classmethod
    def sized_like(cls, state: dict[str, torch.Tensor]) -> FashionClassifier:
        """An untrained classifier with the layer widths of a state dict (a structurally pruned model has fewer)."""
        channels = tuple(state[f"conv{i}.weight"].shape[0] for i in (1, 2, 3))
        return cls(state["fc2.weight"].shape[0], channels, state["fc1.weight"].shape[0])

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> FashionClassifier:
        """A classifier holding a copy of a state dict's weights, at its layer widths."""
        model = cls.sized_like(state)
        model.load_state_dict(state)
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        x = torch.flatten(x, 1)
        return self.fc2(self.relu(self.fc1(x)))


def train(model: nn.Module, loader, optimizer: torch.optim.Optimizer, criterion=None, epochs: int = 1,
          max_samples: int | None = None, desc: str = "training",
          schedule: torch.optim.lr_scheduler.LRScheduler | None = None) -> dict[str, float]:
    """Train for `epochs` over `loader` (or stop after `max_samples` samples), stepping `schedule` after every
    batch; return the mean loss and the training accuracy over the samples seen."""
    criterion = criterion or nn.CrossEntropyLoss()
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    total = min(max_samples or 1 << 62, epochs * len(loader.dataset))
    with tqdm(total=total, desc=desc, unit="img", leave=False) as bar:
        for x, y in (batch for _ in range(epochs) for batch in loader):
            optimizer.zero_grad()
            logits = model(x)
            loss = criterion(logits, y)
            loss.backward()
            optimizer.step()
            if schedule:
                schedule.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(len(y))
            if max_samples and seen >= max_samples:
                break
    return {"loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1)}


def adam(model: nn.Module, learning_rate: float) -> torch.optim.Adam:
    """Adam with its fused CPU kernel: the same update in one pass over the 16 M weights instead of a dozen, which
    makes a training step of the course's classifier about 20 % faster on a CPU."""
    return torch.optim.Adam(model.parameters(), lr=learning_rate, fused=True)


def one_cycle(optimizer: torch.optim.Optimizer, peak: float, steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """PyTorch's one-cycle schedule over `steps` batches: the rate rises from peak/25 to `peak` over the first 30 %
    of the steps while Adam's beta1 falls from 0.95 to 0.85, then both return along a cosine, the rate down to
    peak/25e4 (PyTorch's defaults)."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=steps)


def fit(model: nn.Module, loader, val_loader, learning_rate: float, epochs: int, patience: int | None,
        desc: str = "base model") -> dict[str, list[float]]:
    """Train with Adam and restore the weights of the epoch with the best validation accuracy, as Keras'
    EarlyStopping does; return the history per epoch.

    `patience` None: one learning-rate cycle over all `epochs`, peaking at `learning_rate` (one_cycle); every
    epoch runs. A number: the course's constant rate, stopping once validation accuracy has not improved for
    `patience` epochs (at most `epochs`)."""
    optimizer = adam(model, learning_rate)
    schedule = None if patience else one_cycle(optimizer, learning_rate, epochs * len(loader))
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_accuracy": []}
    best = None
    for epoch in range(epochs):
        for key, value in train(model, loader, optimizer, epochs=1, desc=f"{desc}, epoch {epoch + 1}",
                                schedule=schedule).items():
            history[key].append(value)
        scores, labels = predict(model, val_loader)
        history["val_accuracy"].append(float((scores.argmax(1) == labels).mean()))
        if best is None or history["val_accuracy"][-1] > history["val_accuracy"][best]:
            best, weights = epoch, {k: v.clone() for k, v in model.state_dict().items()}
        elif patience and epoch - best >= patience:
            break
    model.load_state_dict(weights)
    return history


def fine_tune(model: nn.Module, loader, optimizer: torch.optim.Optimizer, rule: recovery.Rule, val_loader,
              keep: Callable[[int, nn.Module], None] | None = None, desc: str = "fine-tuning") -> recovery.Curve:
    """Train `model` with `optimizer` on `loader`'s batches, epoch after epoch, until `rule` stops it: validation
    accuracy checked at step 0 (right after compression) and every `rule.interval` steps. The model keeps the
    weights of its best check; `keep(step, model)` is called at every check (the control keeps its weights there).
    Returns the recovery curve. A fresh loader from the same seed gives every model the same batches."""
    criterion, curve, step, best = nn.CrossEntropyLoss(), recovery.Curve(rule), 0, None
    with tqdm(total=rule.max_steps, desc=desc, unit="step", leave=False) as bar:

        def check() -> None:
            nonlocal best
            scores, labels = predict(model, val_loader)
            if curve.add(step, float((scores.argmax(1) == labels).mean())):
                best = {k: v.clone() for k, v in model.state_dict().items()}
            if keep:
                keep(step, model)
            bar.set_postfix_str(f"val {curve.accuracy[-1]:.4f}, best {curve.best_accuracy:.4f} at step "
                                f"{curve.best_step}", refresh=False)

        check()
        while not curve.done():
            for x, y in loader:
                model.train()
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
                step += 1
                bar.update()
                if step % rule.interval == 0 or step >= rule.max_steps:
                    check()
                    if curve.done():
                        break
    model.load_state_dict(best)
    return curve


class Snapshots(recovery.Snapshots):
    """The PyTorch control's state dicts at every check of its fine-tuning (recovery.Snapshots)."""

    suffix = ".pt"

    def _write(self, model: nn.Module, path: Path) -> None:
        torch.save(model.state_dict(), path)

    def _read(self, model: nn.Module, path: Path) -> None:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


@torch.no_grad()
def predict(model: nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels for every sample of `loader`, in evaluation mode."""
    model.eval()
    scores, labels = [], []
    for x, y in loader:
        scores.append(model(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(scores), np.concatenate(labels)


def runtime() -> dict[str, Any]:
    """What runs a batch-1 timing here: PyTorch's version on one thread, the vector code it dispatches to (e.g.
    AVX2), and the CPU."""
    return {"engine": "PyTorch", "version": torch.__version__, "threads": 1,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu()}


@torch.no_grad()
def latency(model: nn.Module, sample: torch.Tensor, warmup: int = 20, runs: int = 200) -> dict[str, Any]:
    """Batch-1 inference time in ms (median, IQR, p10, p90) after a warm-up, on one thread, with its runtime.

    One thread, as in the TFLite and ONNX Runtime measurements: an edge device runs one request on one core,
    and thread hand-offs make batch-1 timings of a small model noisy.
    """
    model.eval()
    x = sample[:1]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return time_call(Batch1Call(lambda: model(x), runtime()), warmup, runs)
    finally:
        torch.set_num_threads(threads)


def shapes(model: nn.Module) -> dict[str, list[int]]:
    """Weight shape of every Conv2d and Linear layer, by name."""
    return {name: list(m.weight.shape) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


LOAD_ERRORS = (RuntimeError, KeyError, EOFError, OSError, AttributeError, TypeError, pickle.UnpicklingError)


def _mismatch(path: Path, architecture: str, err: Exception, fix: str) -> LabkitError:
    detail = " ".join(line.strip() for line in str(err).strip().splitlines()[:2])[:200]
    return LabkitError(f"{path} does not match the {architecture} architecture ({detail}); {fix}")


def load_state(model: nn.Module, path: Path, fix: str = "delete it to retrain the base model") -> nn.Module:
    """Load a state dict into `model`; a file for another architecture (or not a state dict) is a one-line
    LabkitError that ends with `fix`."""
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except LOAD_ERRORS as err:
        raise _mismatch(path, type(model).__name__, err, fix) from err
    return model


def load_classifier(path: Path, num_classes: int, fix: str) -> FashionClassifier:
    """The user's state dict of the course's classifier, at the layer widths it has (the course's fc1 of 1024, a
    narrower one, an already pruned model); another architecture, or another number of classes than the data's, is
    a one-line LabkitError that ends with `fix`."""
    try:
        model = FashionClassifier.from_state(torch.load(path, map_location="cpu", weights_only=True))
    except LOAD_ERRORS as err:
        raise _mismatch(path, FashionClassifier.__name__, err, fix) from err
    if (outputs := model.fc2.out_features) != num_classes:
        raise LabkitError(f"{path} classifies into {outputs} classes, the data has {num_classes}; {fix}")
    return model


def save_state(model: nn.Module, path: Path) -> Path:
    """Save a state dict atomically."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return atomic_write_bytes(Path(path), buffer.getvalue())


def base_classifier(models_dir: Path, loader, val_loader, learning_rate: float, epochs: int, patience: int | None,
                    context: Context, num_classes: int = 10, data_key: str = "fashion-mnist",
                    input_model: str | None = None, hidden: int = 1024) -> tuple[nn.Module, dict]:
    """The base FashionClassifier: the user's state dict (`input_model`, the course's --input-model) as it is, at
    its own widths;
    else loaded from models/, or trained by `fit` (one learning-rate cycle; with `patience`, the course's constant
    rate and early stopping; the best validation epoch kept) and cached there with its history. The cached file's
    name holds the data's checksum (`data_key`) and every setting that makes the model (width of fc1 `hidden`,
    samples, batch, epochs, schedule or patience, learning rate, seed). The base's identity (its file and
    checksum) goes into `context`. `hidden` is the course's 1024 by default; a narrower fc1 (a few MB instead of
    63) makes every export and conversion quick, for the tests' tiny runs; --input-model brings the course's."""
    from labkit.files import read_json, write_json

    torch.manual_seed(context.seed)
    if input_model:
        model = load_classifier(Path(input_model), num_classes,
                                "--input-model takes the state dict of the course's classifier")
        context.base = file_identity(input_model, "--input-model")
        return model, {"input_model": Path(input_model).name, "sha256": context.base["sha256"],
                       "train_samples": len(loader.dataset), "trained_now": False, "history": {}}
    model = FashionClassifier(num_classes, hidden=hidden)
    samples, batch = len(loader.dataset), loader.batch_size
    schedule = f"p{patience}" if patience else "onecycle"
    tag = f"h{hidden}-n{samples}-b{batch}-e{epochs}-{schedule}-lr{learning_rate:g}-s{context.seed}"
    path = Path(models_dir) / f"{data_key}-classifier-{tag}.pt"
    history_path = path.with_suffix(".history.json")
    trained_now = not path.is_file()
    if trained_now:
        write_json(history_path, fit(model, loader, val_loader, learning_rate, epochs, patience))
        save_state(model, path)  # last: the model file marks a finished base
    else:
        load_state(model, path)
    context.base = file_identity(path, "trained here")
    history = read_json(history_path) if history_path.is_file() else {}
    best = int(np.argmax(history["val_accuracy"])) + 1 if history.get("val_accuracy") else None
    return model, {"path": context.base["file"], "sha256": context.base["sha256"], "hidden": hidden,
                   "train_samples": samples,
                   "batch_size": batch, "epochs": best, "max_epochs": epochs, "patience": patience,
                   "schedule": "constant" if patience else "one cycle", "learning_rate": learning_rate,
                   "trained_now": trained_now, "history": history}
