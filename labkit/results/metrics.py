"""Classification quality: the lab's metrics, its metrics file and its confusion-matrix picture.

The confusion matrix is indexed [truth, prediction]. Precision of a class is its diagonal over its
column (what was predicted as it); sensitivity is its diagonal over its row (recall). The course's
helpers swapped the two; these follow the standard definitions, computed by scikit-learn.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from scipy.stats import gmean
from sklearn import metrics as skm

from labkit.files import atomic_write_bytes, atomic_write_text


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts indexed [truth, prediction], num_classes x num_classes even if a class never occurs."""
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def classification_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Accuracy, mean precision, mean sensitivity, G-mean and top-5 from labels and class scores.

    A class that is never predicted has precision 0 (scikit-learn's zero_division=0), so one dead
    class pulls the mean down instead of producing NaN. Classes absent from y_true are left out of
    the means. G-mean is the geometric mean of per-class recalls: 0 as soon as one class is never hit.
    """
    y_true = np.asarray(y_true)
    num_classes = scores.shape[1]
    y_pred = scores.argmax(axis=1)
    present = np.unique(y_true)
    recalls = skm.recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    k = min(5, num_classes - 1) if num_classes > 2 else 1
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "mean_precision": float(skm.precision_score(y_true, y_pred, labels=present, average="macro",
                                                    zero_division=0)),
        "mean_sensitivity": float(recalls.mean()),
        "g_mean": float(gmean(recalls)) if recalls.min() > 0 else 0.0,
        "top_5": float(skm.top_k_accuracy_score(y_true, scores, k=k, labels=np.arange(num_classes))),
    }


METRIC_LABELS = {"accuracy": "Accuracy", "mean_precision": "Mean precision",
                 "mean_sensitivity": "Mean sensitivity", "g_mean": "G-mean", "top_5": "Top-5"}


def metrics_markdown(name: str, values: dict[str, float]) -> str:
    """The course's `<prefix>-metrics.md` body: a title and one table row per metric."""
    rows = "\n".join(f"| {METRIC_LABELS.get(k, k)} | {v:.4f} |" for k, v in values.items()
                     if isinstance(v, float))
    return f"# {name}\n\n| Metric | Value |\n|---|---:|\n{rows}\n"


def plot_confusion_matrix(cm: np.ndarray, class_names: list[str], title: str = ""):
    """A seaborn heatmap of the row-normalised matrix (share of each true class), counts annotated.

    Classes that neither occur nor are predicted are left out: a subset of the 37 pet breeds would otherwise draw a
    37 × 37 grid of empty rows."""
    seen = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))
    cm, class_names = cm[np.ix_(seen, seen)], [class_names[i] for i in seen]
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(share, annot=cm, fmt="d", cmap="Blues", vmin=0, vmax=1, square=True, ax=ax,
                xticklabels=class_names, yticklabels=class_names, cbar_kws={"label": "share of true class"},
                annot_kws={"fontsize": 8})
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def write_metrics(prefix: Path, name: str, values: dict[str, float], cm: np.ndarray,
                  class_names: list[str]) -> list[Path]:
    """Write `<prefix>-metrics.md` and `<prefix>-confusion-matrix.png` (atomically) and return both paths."""
    md = prefix.with_name(prefix.name + "-metrics.md")
    png = prefix.with_name(prefix.name + "-confusion-matrix.png")
    atomic_write_text(md, metrics_markdown(name, values))
    fig = plot_confusion_matrix(cm, class_names, title=name)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(png, buf.getvalue())
    return [md, png]
