"""Fine-tuning until a compressed model has recovered: the stopping rule, the recovery curve it reads, and the
control's weights kept at every check.

A fixed fine-tuning budget decides a comparison by itself: 40 optimizer steps left structured pruning 5–10 pp
behind, enough steps left it within 0.2 pp. So every variant trains until its validation accuracy stops
improving, checked every `interval` steps, and keeps the weights of its best check. Its control is the base
trained the same way on the same batches, with its weights kept at every check, so that a variant that stopped
at step n is compared with the control after n steps too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from labkit.errors import LabkitError
from labkit.progress import tqdm


@dataclass(frozen=True)
class Rule:
    """Check validation accuracy every `interval` steps; stop after `patience` checks without a gain larger than
    `min_gain`, or at `max_steps`, whichever comes first. The maximum is a whole number of intervals, so every
    step a variant can stop at (and every sum of them, prune-then-cluster's) is a step the control checked."""

    interval: int
    patience: int
    max_steps: int
    min_gain: float = 0.0

    def __post_init__(self) -> None:
        if self.interval < 1 or self.patience < 1 or self.max_steps < self.interval or self.max_steps % self.interval:
            raise LabkitError(f"fine-tuning checks every {self.interval} steps with patience {self.patience} and at "
                              f"most {self.max_steps} steps: use an interval ≥ 1, patience ≥ 1 and a maximum of "
                              "whole intervals, at least one")

    @classmethod
    def per_epoch(cls, steps_per_epoch: int, checks_per_epoch: float, patience: int, max_epochs: float,
                  min_gain: float = 0.0) -> Rule:
        """The rule in the units the notebooks' parameters use: checks per epoch and a maximum in epochs (rounded
        up to a whole number of checks)."""
        interval = max(1, round(steps_per_epoch / checks_per_epoch))
        checks = max(1, math.ceil(max_epochs * steps_per_epoch / interval))
        return cls(interval, patience, checks * interval, min_gain)

    def to_the_maximum(self) -> Rule:
        """The same checks, never stopping before the maximum: the control's trajectory, which every variant's
        stopping point must find a check on."""
        return replace(self, patience=self.max_steps // self.interval + 1)

    def as_record(self) -> dict[str, Any]:
        return {"check_every_steps": self.interval, "patience_checks": self.patience, "max_steps": self.max_steps,
                "min_gain": self.min_gain}


@dataclass
class Curve:
    """Validation accuracy after each number of fine-tuning steps under one rule; step 0 is right after
    compression. The kept weights are those of the last check that gained more than the rule's minimum.
    `seconds` is the wall time from the first check to the last: what the fine-tuning cost."""

    rule: Rule
    steps: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    _first: float | None = field(default=None, init=False, repr=False, compare=False)

    def add(self, step: int, accuracy: float) -> bool:
        """Record one check; True when it gains on every earlier one (its weights are the ones to keep)."""
        now = time.monotonic()
        self._first = now if self._first is None else self._first
        self.seconds = now - self._first
        self.steps.append(int(step))
        self.accuracy.append(float(accuracy))
        return self.best == len(self.steps) - 1

    def under(self, rule: Rule) -> Curve:
        """The same checks judged by another rule: the control's trajectory by its variants' patience."""
        return Curve(rule, self.steps, self.accuracy, self.seconds)

    @property
    def best(self) -> int:
        """Index of the check whose weights are kept."""
        best = 0
        for i, value in enumerate(self.accuracy):
            if value > self.accuracy[best] + self.rule.min_gain:
                best = i
        return best

    @property
    def best_step(self) -> int:
        return self.steps[self.best]

    @property
    def best_accuracy(self) -> float:
        return self.accuracy[self.best]

    def stalled(self) -> bool:
        """The last `patience` checks gained nothing."""
        return len(self.steps) - 1 - self.best >= self.rule.patience

    def done(self) -> bool:
        """Stop now: the curve has stalled, or the maximum is reached."""
        return self.stalled() or self.steps[-1] >= self.rule.max_steps

    def still_recovering(self) -> bool:
        """Stopped at the maximum while still gaining: more fine-tuning might change a verdict."""
        return self.steps[-1] >= self.rule.max_steps and not self.stalled()

    def as_record(self) -> dict[str, Any]:
        """What a variant's record keeps: the rule, the curve, the steps its kept weights had, and why it stopped."""
        return {"rule": self.rule.as_record(), "curve": {"steps": self.steps, "val_accuracy": self.accuracy},
                "steps": self.best_step, "stopped": "plateau" if self.stalled() else "maximum",
                "still_recovering": self.still_recovering(), "seconds": round(self.seconds, 1)}


def keras_watch(rule: Rule, x_val: np.ndarray, y_val: np.ndarray, keep: Callable[[int, Any], None] | None = None,
                prepare: Callable[[Any], None] | None = None, desc: str = "fine-tuning"):
    """A Keras callback that checks validation accuracy every `rule.interval` steps, stops fit by the rule and
    leaves the model with the weights of its best check, with a progress bar over the maximum. Its `curve` starts
    at step 0, before the first update (after `prepare(model)`, e.g. applying pruning masks). `keep(step, model)`
    is called at every check: the control keeps its weights there. A model compiled with `steps_per_execution`
    calls it once per execution: that number must divide the interval, so that the checks fall between calls."""
    import tensorflow as tf

    class Watch(tf.keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.curve, self.step, self.epoch_start, self.best_weights, self.bar = Curve(rule), 0, 0, None, None

        def _check(self) -> None:
            accuracy = float((self.model.predict(x_val, batch_size=256, verbose=0).argmax(1) == y_val).mean())
            if self.curve.add(self.step, accuracy):
                self.best_weights = self.model.get_weights()
            if keep:
                keep(self.step, self.model)
            self.bar.set_postfix_str(f"val {accuracy:.4f}, best {self.curve.best_accuracy:.4f} at step "
                                     f"{self.curve.best_step}", refresh=False)
            if self.curve.done():
                self.model.stop_training = True

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.bar = tqdm(total=rule.max_steps, desc=desc, unit="step", leave=False)
            if prepare:
                prepare(self.model)
            self._check()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch_start = self.step

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            step = self.epoch_start + batch + 1  # `batch`: the execution's last step in this epoch
            if step // rule.interval > self.step // rule.interval and step % rule.interval:
                raise LabkitError(f"fine-tuning checks every {rule.interval} steps, but Keras ran steps "
                                  f"{self.step + 1}–{step} in one call: compile with a steps_per_execution that "
                                  f"divides {rule.interval} (e.g. tuning.steps_per_execution)")
            self.bar.update(step - self.step)
            self.step = step
            if self.step % rule.interval == 0 or self.step >= rule.max_steps:
                self._check()

        def on_train_end(self, logs: dict | None = None) -> None:
            self.bar.close()
            self.model.set_weights(self.best_weights)

    return Watch()


class Snapshots:
    """The control's weights at every check of its fine-tuning, in a folder of their own: a variant that stopped
    after n steps is compared with the control after n steps. Keras weights here; torch_models.Snapshots keeps
    state dicts."""

    suffix = ".weights.h5"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, step: int) -> Path:
        return self.folder / f"step-{step:07d}{self.suffix}"

    def keep(self, step: int, model: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # `.part.` for the cleanup of interrupted writes (execution.remove_partial_files); the suffix stays last,
        # Keras picks the format by it
        part = self.path(step).with_name(f"step-{step:07d}.part{self.suffix}")
        self._write(model, part)
        part.replace(self.path(step))

    def steps(self) -> list[int]:
        return sorted(int(p.name[5:12]) for p in self.folder.glob(f"step-{'[0-9]' * 7}{self.suffix}"))  # no part

    def clear(self) -> None:
        """Forget every kept step (another control's)."""
        for path in self.folder.glob(f"step-*{self.suffix}"):
            path.unlink()

    def load_into(self, model: Any, step: int) -> Any:
        """`model` with the control's weights after `step` steps."""
        if not self.path(step).is_file():
            raise LabkitError(f"the control has no weights after {step} steps in {self.folder}: its fine-tuning "
                              "stopped earlier or used another rule; run the control again (force=True)")
        self._read(model, self.path(step))
        return model

    def _write(self, model: Any, path: Path) -> None:
        model.save_weights(path)

    def _read(self, model: Any, path: Path) -> None:
        model.load_weights(path)


def paired_name(control: dict[str, Any], steps: int) -> str:
    """The name of the control after `steps` steps: the control's own at its best check, else the same name with
    `-<steps>-steps` before its format (`control-fp32` → `control-120-steps-fp32`)."""
    if steps == control["fine_tuning"]["steps"]:
        return control["name"]
    stem, _, form = control["name"].rpartition("-")
    return f"{stem}-{steps}-steps-{form}"
