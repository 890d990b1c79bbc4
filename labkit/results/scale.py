"""The scales a run can take (`labkit run --scale`): the full lab, whose verdicts are the methods', and a quick
look, labelled as one wherever its numbers are shown.

A short budget decides a comparison by itself: after 40 fine-tuning steps NNI's structured pruning was 5.4 pp
behind its control, after fine-tuning to recovery on all the data 0.16 pp (README, *Fair comparisons*). So the
quick look's summary says at the top that its verdicts are not the methods', and it keeps its records in a folder
of its own (`results/<dataset>-quick`), where they never stand in for the full run's.
"""

from __future__ import annotations

from typing import Any

from labkit.errors import LabkitError

SCALES = ("full", "quick")
# Less data (10,000 images, 9,000 after the validation split; half the test set), and at most one epoch of
# fine-tuning for every variant and control; the lab's smallest set of variants that still answers every question.
QUICK: dict[str, Any] = {"train_samples": 10000, "fine_tune_epochs": 1, "scale": "quick"}
QUICK_TEST_FRACTION = 0.5
QUICK_TASKS = ["clustered-4-fp32", "clustered-16-fp32", "quantized-int8", "pruned-0.5-fp32",
               "pruned-0.5-clustered-16-fp32", "structured-0.5", "tp-magnitude-0.5", "tp-taylor-0.5", "summary"]


def check(scale: str) -> str:
    if scale not in SCALES:
        raise LabkitError(f"unknown scale {scale!r}: use --scale full (the lab) or --scale quick (a first look)")
    return scale


def note(scale: str) -> str:
    """The sentence at the top of a summary made at `scale` (nothing for the full lab)."""
    if scale != "quick":
        return ""
    return ("**A quick look, not the methods' answer.** This run trained on 9,000 images and fine-tuned every "
            "variant and its control for at most one epoch: at such budgets the verdicts are the budget's (after 40 "
            "fine-tuning steps NNI's structured pruning was 5.4 pp behind its control, after fine-tuning to recovery "
            "on all the data 0.16 pp). For the methods' answer, run the full lab: `make lab` (or `labkit run` "
            "without `--scale quick`).")
