"""SHAP values of one fitted estimator on featurized rows, by its kind (see ``explain``'s module doc):
the library's own exact tree SHAP (LightGBM, XGBoost, CatBoost), exact linear contributions, and
``shap.TreeExplainer`` (exact, or Saabas when exact would not fit) for scikit-learn trees; each on as
many rows as fit in its seconds (``in_budget``).

Each returns ``(values (n, K, F), base (K,), method, output, n)`` or None when it cannot explain in time.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy import sparse

from ..prepare.schema import Task

MIN_SHAP_ROWS = 100


def dense(X: Any) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=float)


def class_index(est: Any, label: Any) -> int:
    return [str(c) for c in est.classes_].index(str(label))


def kind_of(est: Any) -> str | None:
    """Which explainer fits the estimator: "lightgbm" (also XGBoost and CatBoost: each computes its own
    exact tree SHAP values), "linear", "forest", "boosting" or None."""
    module, name = type(est).__module__.split(".")[0], type(est).__name__
    if module in NATIVE_SHAP:
        return "lightgbm"
    if hasattr(est, "coef_") and hasattr(est, "intercept_"):
        return "linear"
    if module == "sklearn" and "HistGradientBoosting" in name:
        return "boosting"
    if module == "sklearn" and any(k in name for k in ("Forest", "ExtraTrees", "DecisionTree")):
        return "forest"
    return None


def explain_estimator(est: Any, X: Any, task: Task, explained: list[Any], budget: float, saabas: bool = False):
    """``saabas``: approximate a forest's tree SHAP even when the exact values would fit (so that rows
    explained in two parts are explained the same way)."""
    kind = kind_of(est)
    if kind == "lightgbm":
        return _lightgbm(est, X, task, explained, budget)
    if kind == "linear":
        return _linear(est, X, task, explained)
    if kind in ("forest", "boosting"):
        return _tree_shap(est, X, task, explained, budget, kind == "forest", saabas)
    return None


def in_budget(compute: Any, X: np.ndarray, budget: float) -> np.ndarray | None:
    """``compute`` on as many leading rows of ``X`` as fit in ``budget`` seconds; None when not even
    MIN_SHAP_ROWS would fit.

    The row count grows tenfold per call, each step sized from the time per row of the step before:
    a fixed large first batch could spend minutes on a slow explainer. The first call (ten rows) also
    carries the explainer's fixed costs, so it only rules the model out when it takes half the budget.
    """
    start = time.perf_counter()
    if budget <= 0:
        return None
    parts, rows, want = [], 0, min(MIN_SHAP_ROWS, len(X))
    first = min(10, len(X))
    last_rows, last_seconds = 0, 0.0
    while rows < len(X):
        step = first
        if rows:
            elapsed = time.perf_counter() - start
            per_row = last_seconds / last_rows
            too_slow = per_row * (want - rows) > budget - elapsed if rows > first else elapsed > budget / 2
            if rows < want and too_slow:
                return None
            step = min(len(X) - rows, rows * 9, int((budget - elapsed) / max(per_row, 1e-9)))
            if step <= 0:
                break
        tick = time.perf_counter()
        parts.append(np.asarray(compute(X[rows:rows + step])))
        last_rows, last_seconds = step, time.perf_counter() - tick
        rows += step
    if rows < want:
        return None
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _xgboost_contrib(est: Any, part: np.ndarray) -> np.ndarray:
    import xgboost as xgb
    return est.get_booster().predict(xgb.DMatrix(part), pred_contribs=True).reshape(len(part), -1)


def _catboost_contrib(est: Any, part: np.ndarray) -> np.ndarray:
    from catboost import Pool
    return np.asarray(est.get_feature_importance(Pool(part), type="ShapValues")).reshape(len(part), -1)


# Per-row contributions (features + bias, per class for multiclass) each library computes exactly.
NATIVE_SHAP = {
    "lightgbm": ("LightGBM", lambda est, part: est.booster_.predict(part, pred_contrib=True)),
    "xgboost": ("XGBoost", _xgboost_contrib),
    "catboost": ("CatBoost", _catboost_contrib),
}


def _lightgbm(est: Any, X: Any, task: Task, explained: list[Any], budget: float):
    X = dense(X)
    library, compute = NATIVE_SHAP[type(est).__module__.split(".")[0]]
    contrib = in_budget(lambda part: compute(est, part), X, budget)
    if contrib is None:
        return None
    X = X[:len(contrib)]
    f = X.shape[1]
    if task is Task.MULTICLASS:
        per = contrib.reshape(len(X), -1, f + 1)                   # (n, K, F+1), classes in est.classes_ order
        order = [class_index(est, c) for c in explained]
        per = per[:, order, :]
        return per[:, :, :f], per[0, :, f], f"tree SHAP ({library}, exact)", "raw score (log-odds) of each class", len(X)
    values, base = contrib[:, None, :f], contrib[0, f:f + 1]
    output = "predicted value"
    if task is Task.BINARY:
        sign = 1.0 if class_index(est, explained[0]) == 1 else -1.0   # contributions are for classes_[1]
        values, base = sign * values, sign * base
        output = f"log-odds of '{explained[0]}'"
    return values, base, f"tree SHAP ({library}, exact)", output, len(X)


def _linear(est: Any, X: Any, task: Task, explained: list[Any]):
    X = dense(X)
    coef = np.atleast_2d(est.coef_)
    intercept = np.atleast_1d(est.intercept_)
    mean = X.mean(axis=0)
    centred = X - mean
    if task is Task.REGRESSION:
        values = (centred * coef[0])[:, None, :]
        return values, np.array([float(mean @ coef[0] + intercept[0])]), "exact (linear coefficients)", "predicted value", len(X)
    if coef.shape[0] == 1:  # binary: coefficients of classes_[1]'s log-odds
        sign = 1.0 if class_index(est, explained[0]) == 1 else -1.0
        values = sign * (centred * coef[0])[:, None, :]
        return values, np.array([sign * float(mean @ coef[0] + intercept[0])]), "exact (linear coefficients)", \
            f"log-odds of '{explained[0]}'", len(X)
    order = [class_index(est, c) for c in explained]
    values = np.stack([centred * coef[k] for k in order], axis=1)
    base = np.array([float(mean @ coef[k] + intercept[k]) for k in order])
    return values, base, "exact (linear coefficients)", "raw score (log-odds) of each class", len(X)


def _tree_shap(est: Any, X: Any, task: Task, explained: list[Any], budget: float, is_forest: bool,
               saabas: bool = False):
    import shap
    X = dense(X)
    start = time.perf_counter()
    explainer = shap.TreeExplainer(est)
    left = budget - (time.perf_counter() - start)
    values, how = None, "shap.TreeExplainer"
    # Exact tree SHAP costs about leaves x depth^2 per tree and row (~1e9 of those a second here): on a
    # deep forest one row takes seconds, so it is not even tried when 100 rows would not fit.
    tree = explainer.model
    leaves = int(np.sum((np.asarray(tree.children_left) == -1) & (np.asarray(tree.node_sample_weight) > 0)))
    if not saabas and leaves * float(tree.max_depth) ** 2 / 1e9 * MIN_SHAP_ROWS < left / 2:
        values = in_budget(lambda part: explainer.shap_values(part, check_additivity=False), X, left / 2)
    if values is None:
        # Saabas values (the path attribution, depth per tree and row) still add up to each prediction.
        left = budget - (time.perf_counter() - start)
        values = in_budget(lambda part: explainer.shap_values(part, approximate=True, check_additivity=False),
                            X, left)
        how = "Saabas approximation: exact tree SHAP is too slow for this model"
    if values is None:
        return None
    n = len(values)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    method = f"tree SHAP ({how})"  # the page adds how many rows were explained
    if task is Task.REGRESSION:
        return values[:, None, :], base[:1], method, "predicted value", n
    if values.ndim == 2:  # binary boosting: one log-odds output for classes_[1]
        sign = 1.0 if class_index(est, explained[0]) == 1 else -1.0
        return sign * values[:, None, :], sign * base[:1], method, f"log-odds of '{explained[0]}'", n
    order = [class_index(est, c) for c in explained]       # (n, F, K): one output per class
    values = np.moveaxis(values, 2, 1)[:, order, :]
    scale = "probability" if is_forest else "raw score (log-odds)"
    output = f"{scale} of '{explained[0]}'" if task is Task.BINARY else f"{scale} of each class"
    return values, base[order], method, output, n
