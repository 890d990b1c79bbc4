"""Metrics against scikit-learn, including classes that are never predicted, and the metric files."""

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from labkit.results.metrics import classification_metrics, confusion_matrix, write_metrics


def random_scores(n=500, classes=10, seed=0, never_predicted=(3,)):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    scores = rng.random((n, classes))
    scores[np.arange(n), y] += rng.random(n) * 1.5  # mostly right
    scores[:, list(never_predicted)] = -1.0
    return y, scores


def test_matches_scikit_learn_with_a_dead_class():
    y, scores = random_scores()
    pred = scores.argmax(1)
    assert 3 not in pred
    m = classification_metrics(y, scores)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["mean_precision"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert m["mean_sensitivity"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["mean_sensitivity"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["g_mean"] == 0.0  # one class with recall 0
    assert m["top_5"] == pytest.approx(skm.top_k_accuracy_score(y, scores, k=5))
    assert all(np.isfinite(v) for v in m.values())


def test_g_mean_is_geometric_mean_of_recalls():
    y, scores = random_scores(never_predicted=())
    recalls = skm.recall_score(y, scores.argmax(1), average=None)
    m = classification_metrics(y, scores)
    assert m["g_mean"] == pytest.approx(float(np.exp(np.log(recalls).mean())))
    assert 0 < m["g_mean"] <= m["mean_sensitivity"]


def test_precision_and_sensitivity_are_not_swapped():
    # class 0 always predicted: its recall is 1, its precision is low
    y = np.array([0, 0, 1, 1, 2, 2])
    scores = np.zeros((6, 3))
    scores[:, 0] = 1
    scores[5] = [0, 0, 2]
    m = classification_metrics(y, scores)
    assert m["mean_sensitivity"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert m["mean_precision"] == pytest.approx((2 / 5 + 0 + 1) / 3)


def test_confusion_matrix_is_truth_by_prediction():
    cm = confusion_matrix(np.array([0, 0, 1]), np.array([1, 1, 1]), 3)
    assert cm.shape == (3, 3) and cm[0, 1] == 2 and cm[1, 1] == 1 and cm[2].sum() == 0


def test_metric_files_use_course_names(tmp_path):
    y, scores = random_scores(classes=4, never_predicted=())
    m = classification_metrics(y, scores)
    cm = confusion_matrix(y, scores.argmax(1), 4)
    md, png = write_metrics(tmp_path / "clustered-16-fp32", "clustered-16-fp32", m, cm, list("abcd"))
    assert md.name == "clustered-16-fp32-metrics.md" and png.name == "clustered-16-fp32-confusion-matrix.png"
    assert "| G-mean |" in md.read_text() and f"{m['accuracy']:.4f}" in md.read_text()
    assert Image.open(png).size[0] > 300
