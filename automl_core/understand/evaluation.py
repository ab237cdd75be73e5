"""Evaluation of one model's predictions: the data behind every chart, and honest test scores.

Plain functions from arrays to plain data (dicts of lists / small frames) so that the studio draws
them with plotly and tests check them without a browser. Conventions, as in ``metrics.score_all``:
classification takes class codes 0..K-1 (``y``) and an (n, K) probability matrix ordered like
``classes``; regression takes float truth and predictions.

Honest scores: :func:`bootstrap_interval` resamples the test rows to give the score a 95 % interval,
and :func:`paired_bootstrap` resamples the *same* rows for two models, so the verdict is about the
models, not about which rows happened to be in the test set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..models.metrics import Metric, metric_label
from ..prepare.schema import Task

#: Resamples for the intervals: 1,000 keeps the 2.5 % / 97.5 % quantiles stable to about +-0.002.
N_BOOTSTRAP = 1000
#: Rows drawn in scatter plots: a browser chokes on 100,000 markers and learns nothing more from them.
MAX_POINTS = 5000


def _labels(y: np.ndarray, proba: np.ndarray, pos_index: int = 1, threshold: float = 0.5) -> np.ndarray:
    """Hard class codes: the positive class decides binary labels at ``threshold`` (as score_all)."""
    if proba.shape[1] == 2:
        return np.where(proba[:, pos_index] >= threshold, pos_index, 1 - pos_index)
    return proba.argmax(axis=1)


# ------------------------------------------------------------------------------------ classification

def confusion(y: np.ndarray, proba: np.ndarray, classes: list[Any], *, pos_index: int = 1,
              threshold: float = 0.5) -> dict[str, Any]:
    """Confusion matrix: rows are true classes, columns predicted; counts and row-normalized shares."""
    k = len(classes)
    pred = _labels(np.asarray(y), np.asarray(proba, dtype=float), pos_index, threshold)
    counts = skm.confusion_matrix(y, pred, labels=list(range(k)))
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    return {"classes": [str(c) for c in classes], "counts": counts.tolist(), "normalized": normalized.tolist()}


def _one_vs_rest(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=int)[np.asarray(y, dtype=int)]


def _curve_classes(classes: list[Any], pos_index: int) -> list[int]:
    """Which classes get their own curve: the positive one for binary, each for multiclass."""
    return [pos_index] if len(classes) == 2 else list(range(len(classes)))


def roc_curves(y: np.ndarray, proba: np.ndarray, classes: list[Any], *, pos_index: int = 1) -> list[dict[str, Any]]:
    """ROC curves: the positive class (binary), or each class one-vs-rest plus micro and macro averages.

    Returns a list of {"name", "x" (false positive rate), "y" (true positive rate), "auc"}; classes
    absent from ``y`` are left out (their curve is undefined).
    """
    proba = np.asarray(proba, dtype=float)
    onehot = _one_vs_rest(y, len(classes))
    out = []
    grid = np.linspace(0, 1, 201)
    interpolated = []
    for i in _curve_classes(classes, pos_index):
        if onehot[:, i].min() == onehot[:, i].max():
            continue
        fpr, tpr, _ = skm.roc_curve(onehot[:, i], proba[:, i])
        out.append({"name": str(classes[i]), "x": fpr.tolist(), "y": tpr.tolist(), "auc": float(skm.auc(fpr, tpr))})
        interpolated.append(np.interp(grid, fpr, tpr))
    if len(classes) > 2 and interpolated:
        fpr, tpr, _ = skm.roc_curve(onehot.ravel(), proba.ravel())
        out.append({"name": "micro average", "x": fpr.tolist(), "y": tpr.tolist(), "auc": float(skm.auc(fpr, tpr))})
        mean_tpr = np.mean(interpolated, axis=0)
        mean_tpr[0] = 0.0
        out.append({"name": "macro average", "x": grid.tolist(), "y": mean_tpr.tolist(),
                    "auc": float(np.mean([c["auc"] for c in out if not c["name"].endswith("average")]))})
    return out


def pr_curves(y: np.ndarray, proba: np.ndarray, classes: list[Any], *, pos_index: int = 1) -> list[dict[str, Any]]:
    """Precision-recall curves, like :func:`roc_curves`: {"name", "x" (recall), "y" (precision),
    "ap" (average precision), "base_rate"}; micro and macro averages for multiclass."""
    proba = np.asarray(proba, dtype=float)
    onehot = _one_vs_rest(y, len(classes))
    out = []
    grid = np.linspace(0, 1, 201)
    interpolated = []
    for i in _curve_classes(classes, pos_index):
        if onehot[:, i].max() == 0:
            continue
        precision, recall, _ = skm.precision_recall_curve(onehot[:, i], proba[:, i])
        out.append({"name": str(classes[i]), "x": recall.tolist(), "y": precision.tolist(),
                    "ap": float(skm.average_precision_score(onehot[:, i], proba[:, i])),
                    "base_rate": float(onehot[:, i].mean())})
        interpolated.append(np.interp(grid, recall[::-1], precision[::-1]))
    if len(classes) > 2 and interpolated:
        precision, recall, _ = skm.precision_recall_curve(onehot.ravel(), proba.ravel())
        out.append({"name": "micro average", "x": recall.tolist(), "y": precision.tolist(),
                    "ap": float(skm.average_precision_score(onehot, proba, average="micro")),
                    "base_rate": float(1 / len(classes))})
        out.append({"name": "macro average", "x": grid.tolist(), "y": np.mean(interpolated, axis=0).tolist(),
                    "ap": float(np.mean([c["ap"] for c in out if not c["name"].endswith("average")])),
                    "base_rate": float(1 / len(classes))})
    return out


def calibration(y: np.ndarray, proba: np.ndarray, classes: list[Any], *, pos_index: int = 1,
                n_bins: int = 10) -> list[dict[str, Any]]:
    """Reliability curve per class (the positive one for binary): in each probability bin, the mean
    predicted probability against the share of rows that really are that class.

    Returns {"name", "predicted", "observed", "count"} per class; empty bins are left out.
    """
    proba = np.asarray(proba, dtype=float)
    onehot = _one_vs_rest(y, len(classes))
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for i in _curve_classes(classes, pos_index):
        p = proba[:, i]
        bins = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
        count = np.bincount(bins, minlength=n_bins)
        keep = count > 0
        predicted = np.bincount(bins, weights=p, minlength=n_bins)[keep] / count[keep]
        observed = np.bincount(bins, weights=onehot[:, i], minlength=n_bins)[keep] / count[keep]
        out.append({"name": str(classes[i]), "predicted": predicted.tolist(), "observed": observed.tolist(),
                    "count": count[keep].tolist()})
    return out


def gains(y: np.ndarray, proba: np.ndarray, classes: list[Any], *, pos_index: int = 1,
          n_points: int = 100) -> list[dict[str, Any]]:
    """Cumulative gains and lift per class (the positive one for binary).

    Rows sorted by predicted probability, highest first: after the top ``share`` of rows, ``gain`` is
    the share of all members of the class found, ``lift`` how many times better that is than
    picking rows at random (gain / share).
    """
    proba = np.asarray(proba, dtype=float)
    onehot = _one_vs_rest(y, len(classes))
    n = len(proba)
    share = np.linspace(1 / n_points, 1, n_points)
    cut = np.maximum(1, np.round(share * n).astype(int))
    out = []
    for i in _curve_classes(classes, pos_index):
        total = onehot[:, i].sum()
        if total == 0:
            continue
        order = np.argsort(-proba[:, i], kind="stable")
        found = np.cumsum(onehot[order, i])[cut - 1] / total
        out.append({"name": str(classes[i]), "share": share.tolist(), "gain": found.tolist(),
                    "lift": (found / share).tolist()})
    return out


def per_class(y: np.ndarray, proba: np.ndarray, classes: list[Any], *, pos_index: int = 1,
              threshold: float = 0.5) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (one row each)."""
    pred = _labels(np.asarray(y), np.asarray(proba, dtype=float), pos_index, threshold)
    k = len(classes)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    return pd.DataFrame({"class": [str(c) for c in classes], "precision": p, "recall": r, "f1": f, "support": s})


def threshold_sweep(y: np.ndarray, proba: np.ndarray, *, pos_index: int = 1, step: float = 0.01) -> pd.DataFrame:
    """Binary only: for every threshold on the positive class's probability, the confusion counts
    and the metrics that follow (so a slider only picks a row, nothing is recomputed)."""
    positive = np.asarray(y) == pos_index
    p = np.asarray(proba, dtype=float)[:, pos_index]
    thresholds = np.round(np.arange(0, 1 + step / 2, step), 6)
    # Rows with p >= t are predicted positive: count them by sorting once.
    order = np.sort(p)
    pos_sorted = np.sort(p[positive])
    n, n_pos = len(p), int(positive.sum())
    predicted_pos = n - np.searchsorted(order, thresholds, side="left")
    tp = n_pos - np.searchsorted(pos_sorted, thresholds, side="left")
    fp = predicted_pos - tp
    fn = n_pos - tp
    tn = n - n_pos - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = np.where(n_pos > 0, tp / max(n_pos, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        specificity = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
    return pd.DataFrame({"threshold": thresholds, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                         "precision": precision, "recall": recall, "f1": f1,
                         "accuracy": (tp + tn) / max(n, 1), "specificity": specificity,
                         "balanced_accuracy": (recall + specificity) / 2})


# ------------------------------------------------------------------------------------ regression

def regression_points(y: np.ndarray, pred: np.ndarray, *, seed: int = 0) -> pd.DataFrame:
    """Truth, prediction and residual (truth - prediction) per row, a seeded sample of at most MAX_POINTS."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    rows = np.arange(len(y))
    if len(y) > MAX_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), MAX_POINTS, replace=False))
    return pd.DataFrame({"true": y[rows], "predicted": pred[rows], "residual": y[rows] - pred[rows]})


def error_by_decile(y: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Errors within each tenth of the true target (lowest tenth first): where the model is off.

    Columns: decile (1..10), low / high (target range), n, mae, rmse, bias (mean of truth - prediction).
    Ties in the target can leave fewer than ten groups.
    """
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    groups = pd.qcut(pd.Series(y).rank(method="first"), 10, labels=False) if len(y) >= 10 else pd.Series(np.zeros(len(y), int))
    frame = pd.DataFrame({"group": np.asarray(groups), "y": y, "residual": y - pred})
    out = frame.groupby("group").agg(low=("y", "min"), high=("y", "max"), n=("y", "size"),
                                     mae=("residual", lambda r: float(np.abs(r).mean())),
                                     rmse=("residual", lambda r: float(np.sqrt((r ** 2).mean()))),
                                     bias=("residual", "mean")).reset_index(drop=True)
    out.insert(0, "decile", np.arange(1, len(out) + 1))
    return out


# ------------------------------------------------------------------------------------ honest scores

@dataclass(frozen=True)
class Interval:
    """A score and its bootstrap 95 % interval over resampled rows."""

    score: float
    low: float
    high: float
    n_rows: int
    n_resamples: int

    def words(self, metric: str) -> str:
        size = abs(self.score)
        return (f"{metric_label(metric)} {readable(self.score, size)}, 95 % interval [{readable(self.low, size)}, "
                f"{readable(self.high, size)}] over {self.n_resamples:,} bootstrap resamples of {self.n_rows:,} rows")


def readable(x: float, scale: float, *, sign: bool = False) -> str:
    """``x`` with the decimals that give a number of size ``scale`` four significant digits:
    22,308.66 -> '22,309' and 0.94123 -> '0.9412' (a house price's rmse needs no decimals)."""
    if not np.isfinite(x):
        return str(x)
    decimals = max(0, 3 - int(np.floor(np.log10(scale)))) if scale and np.isfinite(scale) and scale > 0 else 4
    return f"{x:{'+' if sign else ''},.{min(decimals, 8)}f}"


def scorer(metric: Metric, task: Task, pos_index: int = 1) -> Callable[[np.ndarray, np.ndarray], float]:
    """score(y, prediction) for ``metric``, NaN when it cannot be computed on these rows (one class).

    Calls the metric's own function with the arguments ``score_all`` gives it, without computing
    the other sixteen metrics a thousand times.
    """
    def score(y: np.ndarray, prediction: np.ndarray) -> float:
        try:
            if task.is_classification:
                proba = np.asarray(prediction, dtype=float)
                value = metric.func(y, proba, _labels(y, proba, pos_index), pos_index)
            else:
                value = metric.func(np.asarray(y, dtype=float), np.asarray(prediction, dtype=float))
        except ValueError:
            return float("nan")
        return float(value)
    return score


def _resamples(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def bootstrap_interval(y: np.ndarray, prediction: np.ndarray, score: Callable[[np.ndarray, np.ndarray], float], *,
                       n_resamples: int = N_BOOTSTRAP, seed: int = 0) -> Interval:
    """The score on all rows and the 2.5 / 97.5 % quantiles of the score over resampled rows.

    Resamples on which the score is undefined (one class only) are skipped.
    """
    y, prediction = np.asarray(y), np.asarray(prediction)
    values = np.array([score(y[rows], prediction[rows]) for rows in _resamples(len(y), n_resamples, seed)])
    values = values[np.isfinite(values)]
    low, high = (np.quantile(values, [0.025, 0.975]) if len(values) else (np.nan, np.nan))
    return Interval(score(y, prediction), float(low), float(high), len(y), int(len(values)))


@dataclass(frozen=True)
class Comparison:
    """Model A against model B on the same rows: the difference in score (A - B, in the metric's
    natural direction) with its paired-bootstrap 95 % interval, and the verdict in words."""

    name_a: str
    name_b: str
    score_a: float
    score_b: float
    difference: float
    low: float
    high: float
    verdict: str
    a_better: bool | None  # None: no real difference


def paired_bootstrap(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, metric: Metric,
                     score: Callable[[np.ndarray, np.ndarray], float], *, name_a: str = "model A",
                     name_b: str = "model B", n_resamples: int = N_BOOTSTRAP, seed: int = 0) -> Comparison:
    """Is A really better than B? Both are scored on the same resampled rows each time, so the row
    luck that moves both scores together cancels out of the difference."""
    y, pred_a, pred_b = np.asarray(y), np.asarray(pred_a), np.asarray(pred_b)
    diffs = []
    for rows in _resamples(len(y), n_resamples, seed):
        diffs.append(score(y[rows], pred_a[rows]) - score(y[rows], pred_b[rows]))
    diffs = np.asarray(diffs)
    diffs = diffs[np.isfinite(diffs)]
    score_a, score_b = score(y, pred_a), score(y, pred_b)
    low, high = (np.quantile(diffs, [0.025, 0.975]) if len(diffs) else (np.nan, np.nan))
    difference = score_a - score_b
    size = max(abs(score_a), abs(score_b))
    span = (f"the difference {readable(difference, size, sign=True)} has a 95 % interval "
            f"[{readable(low, size, sign=True)}, {readable(high, size, sign=True)}]")
    if low > 0 or high < 0:
        a_wins = bool(low > 0) == metric.greater_is_better
        better, worse = (name_a, name_b) if a_wins else (name_b, name_a)
        verdict = f"{better} is better than {worse} on {metric_label(metric.name)}: {span}, which excludes 0."
    else:
        a_wins = None
        verdict = (f"No real difference between {name_a} and {name_b} on {metric_label(metric.name)}: {span}, "
                   "which includes 0, so the gap could be luck of the rows scored.")
    return Comparison(name_a, name_b, float(score_a), float(score_b), float(difference), float(low), float(high),
                      verdict, a_wins)
