"""Metrics: one table of every metric the engine knows, and a function that scores them all.

Scores are kept in their natural direction (AUC up, RMSE down); ``Metric.loss`` turns any score into
something to minimise, so the search never needs to know which is which.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import spearmanr
from sklearn import metrics as skm

from ..errors import AutoMLInputError
from ..prepare.schema import Task

CLASSIFICATION = frozenset({Task.BINARY, Task.MULTICLASS})
REGRESSION = frozenset({Task.REGRESSION})
FORECASTING = frozenset({Task.FORECASTING})
MULTILABEL = frozenset({Task.MULTILABEL})  # y: rows x labels 0/1, pred: thresholded probabilities
NUMERIC = REGRESSION | FORECASTING  # forecasts are scored by automl_core.forecast.accuracy (per series and window)


@dataclass(frozen=True)
class Metric:
    name: str
    tasks: frozenset
    greater_is_better: bool
    needs_proba: bool
    explanation: str
    func: Callable[..., float]

    def loss(self, score: float | None) -> float:
        if score is None or not math.isfinite(score):
            return math.inf
        return -score if self.greater_is_better else score

    def better(self, a: float | None, b: float | None) -> bool:
        """True when score ``a`` beats ``b``."""
        return self.loss(a) < self.loss(b)


def _pos(proba: np.ndarray, pos_index: int) -> np.ndarray:
    return proba[:, pos_index]


def _auc_weighted(y, proba, pred, pos):
    if proba.shape[1] == 2:
        return skm.roc_auc_score(y, proba[:, 1])
    return skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=range(proba.shape[1]))


def _roc_auc(y, proba, pred, pos):
    if proba.shape[1] == 2:
        return skm.roc_auc_score(y == pos, _pos(proba, pos))
    return skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=range(proba.shape[1]))


def _avg_precision_weighted(y, proba, pred, pos):
    if proba.shape[1] == 2:
        return skm.average_precision_score(y == pos, _pos(proba, pos))
    onehot = np.eye(proba.shape[1])[y]
    return skm.average_precision_score(onehot, proba, average="weighted")


def _norm_macro_recall(y, proba, pred, pos):
    k = proba.shape[1]
    chance = 1.0 / k
    recall = skm.recall_score(y, pred, average="macro", labels=range(k), zero_division=0)
    return (recall - chance) / (1 - chance)


def _log_loss(y, proba, pred, pos):
    return skm.log_loss(y, np.clip(proba, 1e-15, 1), labels=range(proba.shape[1]))


def _spread(y):
    spread = float(np.max(y) - np.min(y))
    return spread if spread > 0 else 1.0


def _spearman(y, pred):
    value = spearmanr(y, pred).statistic
    return float(value) if np.isfinite(value) else 0.0


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("roc_auc", CLASSIFICATION, True, True,
           "Area under the ROC curve: how well the model ranks positives above negatives (1 is perfect, 0.5 is chance); macro-averaged over classes for multiclass.",
           _roc_auc),
    Metric("auc_weighted", CLASSIFICATION, True, True,
           "ROC AUC averaged over classes, weighted by how many rows each class has (Azure's AUC_weighted).",
           _auc_weighted),
    Metric("log_loss", CLASSIFICATION, False, True,
           "Logarithmic loss: punishes confident wrong probabilities; lower is better. Best when you need trustworthy probabilities.",
           _log_loss),
    Metric("accuracy", CLASSIFICATION, True, False,
           "Share of rows whose predicted class is right. Easy to read, misleading when one class dominates.",
           lambda y, proba, pred, pos: skm.accuracy_score(y, pred)),
    Metric("balanced_accuracy", CLASSIFICATION, True, False,
           "Accuracy averaged over classes, so a rare class counts as much as a common one.",
           lambda y, proba, pred, pos: skm.balanced_accuracy_score(y, pred)),
    Metric("average_precision_score_weighted", CLASSIFICATION, True, True,
           "Area under the precision-recall curve, weighted by class size; good for rare positive classes.",
           _avg_precision_weighted),
    Metric("norm_macro_recall", CLASSIFICATION, True, False,
           "Recall averaged over classes and rescaled so that chance is 0 and perfect is 1.",
           _norm_macro_recall),
    Metric("precision_score_weighted", CLASSIFICATION, True, False,
           "Precision per class (how many predicted members really are), weighted by class size.",
           lambda y, proba, pred, pos: skm.precision_score(y, pred, average="weighted", zero_division=0)),
    Metric("f1_macro", CLASSIFICATION | MULTILABEL, True, False,
           "F1 (the balance of precision and recall) averaged over classes (multi-label: over labels) equally.",
           lambda y, proba, pred, pos: (_multilabel(y, pred)["f1_macro"] if np.ndim(y) == 2
                                        else skm.f1_score(y, pred, average="macro", zero_division=0))),
    Metric("f1_micro", MULTILABEL, True, False,
           "F1 over every (row, label) decision pooled: frequent labels count more. The multi-label default.",
           lambda y, proba, pred, pos: _multilabel(y, pred)["f1_micro"]),
    Metric("hamming_loss", MULTILABEL, False, False,
           "Share of (row, label) decisions that are wrong; lower is better.",
           lambda y, proba, pred, pos: _multilabel(y, pred)["hamming_loss"]),
    Metric("subset_accuracy", MULTILABEL, True, False,
           "Share of rows whose whole label set is predicted exactly. Strict.",
           lambda y, proba, pred, pos: _multilabel(y, pred)["subset_accuracy"]),
    Metric("average_precision_macro", MULTILABEL, True, True,
           "Area under the precision-recall curve per label (threshold-free), averaged over labels.",
           lambda y, proba, pred, pos: float(np.mean(per_label_average_precision(y, proba)))),
    Metric("f1_weighted", CLASSIFICATION, True, False,
           "F1 per class, weighted by class size.",
           lambda y, proba, pred, pos: skm.f1_score(y, pred, average="weighted", zero_division=0)),
    Metric("rmse", NUMERIC, False, False,
           "Root mean squared error, in the target's own units; big misses count extra. Lower is better.",
           lambda y, pred: skm.root_mean_squared_error(y, pred)),
    Metric("normalized_root_mean_squared_error", NUMERIC, False, False,
           "RMSE divided by the target's range, so it reads as a fraction of the range (Azure's normalized RMSE).",
           lambda y, pred: skm.root_mean_squared_error(y, pred) / _spread(y)),
    Metric("r2_score", NUMERIC, True, False,
           "R²: share of the target's variance the model explains (1 is perfect, 0 is predicting the mean).",
           lambda y, pred: skm.r2_score(y, pred)),
    Metric("mae", NUMERIC, False, False,
           "Mean absolute error, in the target's units; every miss counts by its size.",
           lambda y, pred: skm.mean_absolute_error(y, pred)),
    Metric("normalized_mean_absolute_error", REGRESSION, False, False,
           "MAE divided by the target's range.",
           lambda y, pred: skm.mean_absolute_error(y, pred) / _spread(y)),
    Metric("spearman_correlation", REGRESSION, True, False,
           "Rank correlation between predictions and truth: does the model order rows correctly?",
           lambda y, pred: _spearman(y, pred)),
    Metric("mape", NUMERIC, False, False,
           "Mean absolute percentage error; meaningless when the target is near zero.",
           lambda y, pred: skm.mean_absolute_percentage_error(y, pred)),
    Metric("smape", FORECASTING, False, False,
           "Symmetric mean absolute percentage error (0 to 200 %): the miss relative to the size of actual and forecast.",
           lambda y, pred: float(np.mean(2 * np.abs(y - pred) / np.maximum(np.abs(y) + np.abs(pred), 1e-12))) * 100),
    Metric("mase", FORECASTING, False, False,
           "Mean absolute scaled error: the error relative to a seasonal-naive forecast on the history (below 1 beats it).",
           lambda y, pred: float(np.mean(np.abs(y - pred)) / max(float(np.mean(np.abs(np.diff(y)))), 1e-12))),
]}

ALIASES = {
    "auc": "roc_auc", "r2": "r2_score", "average_precision": "average_precision_score_weighted",
    "normalized_rmse": "normalized_root_mean_squared_error", "nrmse": "normalized_root_mean_squared_error",
    "normalized_mae": "normalized_mean_absolute_error", "spearman": "spearman_correlation",
    "auc_weighted": "auc_weighted", "precision_weighted": "precision_score_weighted",
}

def _multilabel(y, pred):
    from ..prepare.multilabel import multilabel_scores
    return multilabel_scores(y, pred)


def per_label_average_precision(y: np.ndarray, proba: np.ndarray) -> list[float]:
    """Average precision of each label's probabilities (a label with no positive row: left out)."""
    return [float(skm.average_precision_score(y[:, j], proba[:, j])) for j in range(y.shape[1]) if y[:, j].any()]


DEFAULTS = {Task.BINARY: "roc_auc", Task.MULTICLASS: "log_loss", Task.REGRESSION: "rmse", Task.MULTILABEL: "f1_micro",
            Task.FORECASTING: "normalized_root_mean_squared_error"}


#: Readable metric names: the ids above are for code and the CLI; messages people read (guardrails,
#: the studio) use these.
LABELS = {
    "roc_auc": "ROC AUC", "auc_weighted": "AUC (weighted)", "log_loss": "Log loss", "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy", "average_precision_score_weighted": "Average precision (weighted)",
    "norm_macro_recall": "Normalized macro recall", "precision_score_weighted": "Precision (weighted)",
    "f1_macro": "F1 (macro)", "f1_weighted": "F1 (weighted)", "rmse": "RMSE",
    "normalized_root_mean_squared_error": "Normalized RMSE", "r2_score": "R²", "mae": "MAE",
    "normalized_mean_absolute_error": "Normalized MAE", "spearman_correlation": "Spearman correlation",
    "mape": "MAPE", "smape": "sMAPE", "mase": "MASE",
    "f1_micro": "F1 (micro)", "hamming_loss": "Hamming loss", "subset_accuracy": "Subset accuracy",
    "average_precision_macro": "Average precision (macro)",
}


def metric_label(name: object) -> str:
    """A metric's readable name ('Normalized RMSE' for normalized_root_mean_squared_error)."""
    text = str(name)
    return LABELS.get(text, text.replace("_", " "))


def resolve_alias(name: str) -> str:
    """The metric's own name for ``name`` (case and common aliases forgiven)."""
    return ALIASES.get(name.lower(), name.lower())


def resolve_metric(name: str, task: Task) -> Metric:
    """The metric called ``name`` ("auto" for the task's default), checked against the task."""
    key = DEFAULTS[task] if name in ("auto", "", None) else resolve_alias(name)
    metric = METRICS.get(key)
    if metric is None or task not in metric.tasks:
        allowed = ", ".join(metrics_for(task))
        raise AutoMLInputError(f"The metric '{name}' does not apply to a {task.value} task",
                               f"choose one of {allowed}")
    return metric


def metrics_for(task: Task) -> list[str]:
    return [name for name, m in METRICS.items() if task in m.tasks]


def score_all(task: Task, y_true: np.ndarray, prediction: np.ndarray, pos_index: int = 1,
              only: str | None = None, thresholds: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of the task (or ``only`` the one named). Classification takes class codes 0..K-1
    and an (n, K) probability matrix; multi-label a rows x labels 0/1 matrix, the probabilities per
    label and the labels' decision ``thresholds`` (default 0.5).

    A metric that cannot be computed on this data (say, AUC with one class present) is left out
    rather than failing the trial.
    """
    out: dict[str, float] = {}
    if task in CLASSIFICATION:
        proba = np.asarray(prediction, dtype=float)
        pred = proba.argmax(axis=1)
        if proba.shape[1] == 2:  # the positive class decides hard labels at 0.5
            pred = np.where(proba[:, pos_index] >= 0.5, pos_index, 1 - pos_index)
        args = (y_true, proba, pred, pos_index)
    elif task in MULTILABEL:
        proba = np.asarray(prediction, dtype=float)
        args = (np.asarray(y_true), proba, proba >= (0.5 if thresholds is None else thresholds), pos_index)
    else:
        args = (np.asarray(y_true, dtype=float), np.asarray(prediction, dtype=float))
    for name, metric in METRICS.items():
        if task not in metric.tasks or (only is not None and name != only):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = float(metric.func(*args))
        except ValueError:
            continue
        if math.isfinite(value):
            out[name] = value
    return out
