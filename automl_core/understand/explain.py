"""Explanations of a saved model: which raw input columns drive its predictions, globally and per row.

SHAP values are computed on a row sample, in the training thread after the model is saved (never on
page load), and stored in the experiment's artifact folder. How, by the model's last step:

- LightGBM: its own exact tree SHAP (``pred_contrib=True``), in log-odds (classification) or target units.
- scikit-learn forests and histogram boosting: ``shap.TreeExplainer`` on as many sampled rows as fit
  in the time budget, in probability (forests) or log-odds (boosting). Exact tree SHAP takes seconds
  a row on deep forests: then Saabas values (the path attribution, also additive) are used instead.
- Linear models: exact, coefficient x (value - mean value) on the model's scaled features.
- Ensembles (soft voting and stacking): the members' SHAP values (each member explained as above on
  the shared features), combined the way the ensemble combines the members' predictions. Voting
  regression averages predictions with the ensemble's weights, so the weighted member values add up
  to its prediction. Voting classification averages probabilities: members that explain log-odds
  (boosting, linear) are put on the probability scale first, each row's log-odds contributions
  rescaled by (p(x) - p(base)) / (log-odds(x) - log-odds(base)), which keeps them adding up to
  the member's probability. Stacking's learner is linear in the members' predictions (probabilities
  for classification), so its coefficients weight the member values (log-odds of the learner for
  classification). Members no explainer covers (k-nearest neighbours) are left out and named in the
  note; when they carry half the weight or more, permutation importance is used instead.
- Anything else (k-nearest neighbours) and models too slow for SHAP: permutation importance on the
  raw columns through the whole pipeline (global only), as many columns and repeats as the budget allows.

The budget is a deadline: no step starts once it has passed, a running step is sized to end before
it, and ``stop`` (an Event) ends the work early with what is done so far. ``progress(fraction, text)``
reports how far the work is, for the live page.

Engineered features (one-hot levels, TF-IDF terms, date parts, missing indicators) are mapped back
to their raw column with ``featurize.feature_to_column`` and their contributions summed.
"""
from __future__ import annotations

import json
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import sparse

from .evaluation import scorer
from ..models.metrics import Metric
from ..prepare.schema import ColumnInfo, Task

EXPLANATION_FILE = "explanations.json"
EXPLANATION_ROWS = "explanations.parquet"
SAMPLE_ROWS = 2000           # SHAP rows when the explainer is fast
BUDGET_SECONDS = 6.0         # SHAP on fewer rows when slow; then permutation importance in the same time
MIN_SHAP_ROWS = 100
TOP_FEATURES = 50
#: Ensemble members no explainer covers may carry less than this share of the weight (else: permutation).
MAX_UNEXPLAINED_WEIGHT = 0.5

Progress = Callable[[float, str], None]


class ExplanationStopped(Exception):
    """Nothing was explained: Stop was pressed, or the budget ran out first (the message says which)."""


class _Budget:
    """The explanation's deadline, its stop signal and its progress reports."""

    def __init__(self, seconds: float, progress: Progress | None, stop: threading.Event | None) -> None:
        self.start, self.seconds = time.perf_counter(), max(float(seconds), 0.0)
        self._progress, self._stop = progress, stop

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def over(self) -> bool:
        return self.left() <= 0 or (self._stop is not None and self._stop.is_set())

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def report(self, fraction: float, text: str) -> None:
        if self._progress is not None:
            try:
                self._progress(min(max(fraction, 0.0), 1.0), text)
            except Exception:  # a broken listener must not cost the explanation
                pass


@dataclass(frozen=True)
class Explanation:
    """What explains the model, on ``n_rows`` sampled training rows.

    ``values`` has one row per sampled row and one column per raw column (``columns``); for a
    multiclass model one such matrix per class, shape (rows, classes, columns). ``None`` for
    permutation importance, which explains the model globally only.
    """

    method: str
    output: str                      # what the values add up to, e.g. "log-odds of 'yes'"
    columns: list[str]
    importance: pd.DataFrame         # column, importance, share (raw columns, largest first)
    feature_importance: pd.DataFrame  # feature, column, importance (engineered features, top 50)
    classes: list[str] = field(default_factory=list)   # classes the values explain ([positive] for binary)
    rows: pd.DataFrame | None = None  # the sampled rows' raw values
    values: np.ndarray | None = None
    base_value: list[float] = field(default_factory=list)  # one per explained class (one for regression)
    n_rows: int = 0
    seconds: float = 0.0
    note: str = ""
    members: dict[str, dict] = field(default_factory=dict)  # ensembles: each explained member's weight and method

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able part (everything but the per-row values)."""
        return {"method": self.method, "output": self.output, "columns": self.columns, "classes": self.classes,
                "importance": self.importance.to_dict("records"),
                "feature_importance": self.feature_importance.to_dict("records"),
                "base_value": self.base_value, "n_rows": self.n_rows, "seconds": round(self.seconds, 3),
                "note": self.note, "members": self.members, "has_rows": self.values is not None}


# ------------------------------------------------------------------------------------ computing

def explain_model(model: Any, X: pd.DataFrame, y: np.ndarray, *, columns: list[ColumnInfo], task: Task,
                  classes: list[Any] | None, positive_class: Any, metric: Metric, seed: int = 0,
                  sample_rows: int = SAMPLE_ROWS, budget_seconds: float = BUDGET_SECONDS,
                  progress: Progress | None = None, stop: threading.Event | None = None) -> Explanation:
    """Explain a fitted pipeline (``features`` step first, estimator last) on a sample of ``X``.

    ``y`` holds the labels (classification) or values, aligned with ``X``: permutation importance needs them.
    ``budget_seconds`` is a deadline (see the module doc); ``progress`` and ``stop`` as there.
    """
    from ..prepare.featurize import feature_to_column
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from ..models.families import bag_folds
    folds = bag_folds(model)
    if folds:  # a bag of fold models: its first fold, the same configuration on (k-1)/k of the rows
        first = folds[0] if "features" in folds[0].named_steps and isinstance(
            folds[0][-1], (VotingClassifier, VotingRegressor)) else _first_fold(model, folds)
        out = explain_model(first, X, y, columns=columns, task=task, classes=classes, positive_class=positive_class,
                            metric=metric, seed=seed, sample_rows=sample_rows, budget_seconds=budget_seconds,
                            progress=progress, stop=stop)
        return replace(out, note=" ".join(n for n in (out.note, f"The saved model averages {len(folds)} fold "
                                                      "models of this configuration; these values explain the "
                                                      "first of them.") if n))
    budget = _Budget(budget_seconds, progress, stop)
    start = budget.start
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(X), min(sample_rows, len(X)), replace=False))
    sample = X.iloc[rows].reset_index(drop=True)
    names = [str(n) for n in model[0].get_feature_names_out()]
    mapping = feature_to_column(model[0], columns)
    sources = set(mapping.values())
    raw = [c.name for c in columns if c.name in sources]
    position = {name: j for j, name in enumerate(raw)}
    # sparse, one 1 per feature: a dense features x columns matrix is 800 MB on 10,000 columns
    to_raw = sparse.csr_matrix((np.ones(len(names)), ([position[mapping[n]] for n in names], np.arange(len(names)))),
                               shape=(len(raw), len(names)))  # columns x features
    explained = [positive_class] if task is Task.BINARY else list(classes or [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap_out = _shap(model, sample, task, explained, budget)
    if shap_out is None:
        if budget.stopped:
            raise ExplanationStopped("stopped while explaining")
        return _permutation(model, X, y, raw, task, classes, metric, seed, budget)
    values, base, method, output, n, note, members = (*shap_out, "", {})[:7]  # values: (n, K, F)
    budget.report(1.0, f"explained {n:,} rows")
    sample = sample.iloc[:n]
    raw_values = (to_raw @ values.reshape(-1, values.shape[2]).T).T.reshape(*values.shape[:2], len(raw))  # (n, K, C)
    imp_raw = np.abs(raw_values).mean(axis=(0, 1))
    imp_feat = np.abs(values).mean(axis=(0, 1))
    top = np.argsort(-imp_feat)[:TOP_FEATURES]
    features = pd.DataFrame({"feature": [_shown(names[i], mapping[names[i]]) for i in top],
                             "column": [mapping[names[i]] for i in top],
                             "importance": imp_feat[top]})
    stored = raw_values[:, 0, :] if raw_values.shape[1] == 1 else raw_values
    return Explanation(method, output, raw, _ranked(raw, imp_raw), features, [str(c) for c in explained],
                       sample[raw], stored, [float(b) for b in base], n, time.perf_counter() - start, note,
                       members)


def _first_fold(model: Any, folds: list[Any]) -> Any:
    """A bag's first fold as a model of its own: its featurizer, then a one-member Voting around the
    rest (which turns the fold model's class codes into the labels, as the bag does)."""
    import copy
    from sklearn.pipeline import Pipeline
    from sklearn.utils import Bunch
    one = copy.copy(model.steps[-1][1])
    member = Pipeline(folds[0].steps[1:])
    one.estimators, one.estimators_, one.weights = [("fold_1", member)], [member], None
    one.named_estimators_ = Bunch(fold_1=member)
    return Pipeline([folds[0].steps[0], ("model", one)])


def _shown(feature: str, column: str) -> str:
    """A feature's name as a person reads it: a per-column entry's engine name ("onehot_3") replaced by its
    column ("Sex__Sex_male"); the shared numeric entries already name their column after the prefix."""
    entry, _, rest = feature.partition("__")
    return feature if entry.startswith("numeric") or not rest else f"{column}__{rest}"


def _ranked(columns: list[str], importance: np.ndarray) -> pd.DataFrame:
    total = float(np.sum(np.clip(importance, 0, None))) or 1.0
    frame = pd.DataFrame({"column": columns, "importance": importance,
                          "share": np.clip(importance, 0, None) / total})
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=float)


def _shap(model: Any, sample: pd.DataFrame, task: Task, explained: list[Any], budget: _Budget):
    """(values (n, K, F), base (K,), method, output, n[, note]) or None when SHAP cannot explain the
    model in the budget."""
    from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
    budget.report(0.0, "featurizing the sampled rows")
    Xf = model[0].transform(sample)
    est = model[-1]
    middle = model[1:-1]
    Xm = middle.transform(Xf) if len(middle) else Xf
    if isinstance(est, (VotingClassifier, VotingRegressor)):
        return _voting(est, Xm, task, explained, budget)
    if isinstance(est, (StackingClassifier, StackingRegressor)):
        return _stacking(est, Xm, task, explained, budget)
    if budget.over():
        return None
    budget.report(0.05, "SHAP values of the model")
    return _explain_estimator(est, Xm, task, explained, budget.left())


def _class_index(est: Any, label: Any) -> int:
    return [str(c) for c in est.classes_].index(str(label))


def _kind(est: Any) -> str | None:
    """Which explainer fits the estimator: "lightgbm" (also XGBoost and CatBoost: each computes its own
    exact tree SHAP values), "linear", "forest", "boosting" or None."""
    module, name = type(est).__module__.split(".")[0], type(est).__name__
    if module in _NATIVE_SHAP:
        return "lightgbm"
    if hasattr(est, "coef_") and hasattr(est, "intercept_"):
        return "linear"
    if module == "sklearn" and "HistGradientBoosting" in name:
        return "boosting"
    if module == "sklearn" and any(k in name for k in ("Forest", "ExtraTrees", "DecisionTree")):
        return "forest"
    return None


def _explain_estimator(est: Any, X: Any, task: Task, explained: list[Any], budget: float, saabas: bool = False):
    """``saabas``: approximate a forest's tree SHAP even when the exact values would fit (so that rows
    explained in two parts are explained the same way)."""
    kind = _kind(est)
    if kind == "lightgbm":
        return _lightgbm(est, X, task, explained, budget)
    if kind == "linear":
        return _linear(est, X, task, explained)
    if kind in ("forest", "boosting"):
        return _tree_shap(est, X, task, explained, budget, kind == "forest", saabas)
    return None


def _in_budget(compute: Any, X: np.ndarray, budget: float) -> np.ndarray | None:
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
_NATIVE_SHAP = {
    "lightgbm": ("LightGBM", lambda est, part: est.booster_.predict(part, pred_contrib=True)),
    "xgboost": ("XGBoost", _xgboost_contrib),
    "catboost": ("CatBoost", _catboost_contrib),
}


def _lightgbm(est: Any, X: Any, task: Task, explained: list[Any], budget: float):
    X = _dense(X)
    library, compute = _NATIVE_SHAP[type(est).__module__.split(".")[0]]
    contrib = _in_budget(lambda part: compute(est, part), X, budget)
    if contrib is None:
        return None
    X = X[:len(contrib)]
    f = X.shape[1]
    if task is Task.MULTICLASS:
        per = contrib.reshape(len(X), -1, f + 1)                   # (n, K, F+1), classes in est.classes_ order
        order = [_class_index(est, c) for c in explained]
        per = per[:, order, :]
        return per[:, :, :f], per[0, :, f], f"tree SHAP ({library}, exact)", "raw score (log-odds) of each class", len(X)
    values, base = contrib[:, None, :f], contrib[0, f:f + 1]
    output = "predicted value"
    if task is Task.BINARY:
        sign = 1.0 if _class_index(est, explained[0]) == 1 else -1.0   # contributions are for classes_[1]
        values, base = sign * values, sign * base
        output = f"log-odds of '{explained[0]}'"
    return values, base, f"tree SHAP ({library}, exact)", output, len(X)


def _linear(est: Any, X: Any, task: Task, explained: list[Any]):
    X = _dense(X)
    coef = np.atleast_2d(est.coef_)
    intercept = np.atleast_1d(est.intercept_)
    mean = X.mean(axis=0)
    centred = X - mean
    if task is Task.REGRESSION:
        values = (centred * coef[0])[:, None, :]
        return values, np.array([float(mean @ coef[0] + intercept[0])]), "exact (linear coefficients)", "predicted value", len(X)
    if coef.shape[0] == 1:  # binary: coefficients of classes_[1]'s log-odds
        sign = 1.0 if _class_index(est, explained[0]) == 1 else -1.0
        values = sign * (centred * coef[0])[:, None, :]
        return values, np.array([sign * float(mean @ coef[0] + intercept[0])]), "exact (linear coefficients)", \
            f"log-odds of '{explained[0]}'", len(X)
    order = [_class_index(est, c) for c in explained]
    values = np.stack([centred * coef[k] for k in order], axis=1)
    base = np.array([float(mean @ coef[k] + intercept[k]) for k in order])
    return values, base, "exact (linear coefficients)", "raw score (log-odds) of each class", len(X)


def _tree_shap(est: Any, X: Any, task: Task, explained: list[Any], budget: float, is_forest: bool,
               saabas: bool = False):
    import shap
    X = _dense(X)
    start = time.perf_counter()
    explainer = shap.TreeExplainer(est)
    left = budget - (time.perf_counter() - start)
    values, how = None, "shap.TreeExplainer"
    # Exact tree SHAP costs about leaves x depth^2 per tree and row (~1e9 of those a second here): on a
    # deep forest one row takes seconds, so it is not even tried when 100 rows would not fit.
    tree = explainer.model
    leaves = int(np.sum((np.asarray(tree.children_left) == -1) & (np.asarray(tree.node_sample_weight) > 0)))
    if not saabas and leaves * float(tree.max_depth) ** 2 / 1e9 * MIN_SHAP_ROWS < left / 2:
        values = _in_budget(lambda part: explainer.shap_values(part, check_additivity=False), X, left / 2)
    if values is None:
        # Saabas values (the path attribution, depth per tree and row) still add up to each prediction.
        left = budget - (time.perf_counter() - start)
        values = _in_budget(lambda part: explainer.shap_values(part, approximate=True, check_additivity=False),
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
        sign = 1.0 if _class_index(est, explained[0]) == 1 else -1.0
        return sign * values[:, None, :], sign * base[:1], method, f"log-odds of '{explained[0]}'", n
    order = [_class_index(est, c) for c in explained]       # (n, F, K): one output per class
    values = np.moveaxis(values, 2, 1)[:, order, :]
    scale = "probability" if is_forest else "raw score (log-odds)"
    output = f"{scale} of '{explained[0]}'" if task is Task.BINARY else f"{scale} of each class"
    return values, base[order], method, output, n


def _members(est: Any) -> list[tuple[str, Any]]:
    names = [name for name, _ in est.estimators]
    return list(zip(names, est.estimators_))


def _cost_order(est: Any) -> float:
    """A rough SHAP cost per row, to explain the cheap members first (they leave the expensive ones
    the most time): linear models nothing, boosting trees x leaves, forests last."""
    kind = _kind(est)
    if kind == "linear":
        return 0.0
    trees = float(getattr(est, "n_estimators_", None) or getattr(est, "n_estimators", None) or 100)
    if kind == "lightgbm":
        return trees * float(getattr(est, "num_leaves", 31) or 31)
    if kind == "boosting":
        return trees * float(getattr(est, "max_leaf_nodes", 31) or 31)
    return 1e12 + trees


def _member_values(members: list[tuple[str, Any]], X: Any, task: Task, targets: list[Any], budget: _Budget,
                   weights: np.ndarray, to_probability: bool):
    """Each explainable member's SHAP values on the same leading rows of X, on the probability scale
    when ``to_probability`` (classification); the members left out, and why.

    Members no explainer covers, and members too slow to explain MIN_SHAP_ROWS rows in their share
    of the time, are left out while they carry less than MAX_UNEXPLAINED_WEIGHT of the weight. Two
    passes, cheapest member first: every member on the first MIN_SHAP_ROWS rows (which also measures
    what a row costs each of them), then every member on as many further rows as the time left allows
    for all of them. Returns ({name: (values, base)}, {left-out name: why}, n rows) or None."""
    lasts = {name: (m[-1] if hasattr(m, "steps") else m) for name, m in members}
    weight = {name: float(w) for (name, _), w in zip(members, weights)}
    left_out = {name: "no SHAP explainer (k-nearest neighbours)" for name, _ in members if _kind(lasts[name]) is None}

    def too_much() -> bool:
        return sum(weight[name] for name in left_out) >= MAX_UNEXPLAINED_WEIGHT

    if too_much():
        return None
    todo = sorted(((name, m) for name, m in members if name not in left_out), key=lambda nm: _cost_order(lasts[nm[0]]))
    probe = min(MIN_SHAP_ROWS, X.shape[0])
    inputs, first, seconds = {}, {}, {}
    for i, (name, member) in enumerate(todo):
        if budget.over():
            return None
        budget.report(0.05 + 0.45 * i / len(todo), f"SHAP values of member {i + 1} of {len(todo)} ({name})")
        tick = time.perf_counter()
        inputs[name] = member[:-1].transform(X) if hasattr(member, "steps") and len(member) > 1 else X
        # linear values are relative to the mean of the rows given: give all of them (it is instant)
        part = inputs[name] if _kind(lasts[name]) == "linear" else inputs[name][:probe]
        found = _explain_estimator(lasts[name], part, task, targets, budget.left() / (len(todo) - i))
        if found is None:
            left_out[name] = f"too slow to explain in the {budget.seconds:.0f} s budget"
            if too_much():
                return None
            continue
        first[name], seconds[name] = found, time.perf_counter() - tick
    todo = [(name, m) for name, m in todo if name in first and _kind(lasts[name]) != "linear"]
    per_row = sum(seconds.values()) / probe
    n = int(min(X.shape[0], probe + 0.8 * max(budget.left(), 0.0) / max(per_row, 1e-9)))
    rest: dict[str, np.ndarray] = {}
    if n - probe >= MIN_SHAP_ROWS:
        for i, (name, _) in enumerate(todo):
            if budget.over():
                rest, n = {}, probe
                break
            budget.report(0.5 + 0.45 * i / len(todo), f"SHAP values of member {i + 1} of {len(todo)} ({name}), "
                                                      f"{n:,} rows")
            found = _explain_estimator(
                lasts[name], inputs[name][probe:n], task, targets, budget.left() / (len(todo) - i),
                saabas="Saabas" in first[name][2])
            # Every member explains the same rows, each by one method (a forest approximated on the later
            # rows only, short of time, would carry the first rows' label wrongly): else the first rows only.
            if found is None or found[2] != first[name][2]:
                rest, n = {}, probe
                break
            rest[name] = found[0]
            n = min(n, probe + found[4])
    else:
        n = probe
    out: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    for name, _ in members:   # in the ensemble's order
        if name not in first:
            continue
        values, base = first[name][0], first[name][1]
        if name in rest:
            values = np.concatenate([values, rest[name][:n - probe]])
        if to_probability and _kind(lasts[name]) != "forest":
            values, base = _log_odds_to_probability(values, base, task)
        out[name] = (values[:n], base, first[name][2])
    return out, left_out, n


def _log_odds_to_probability(values: np.ndarray, base: np.ndarray, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds SHAP values (n, K, F) as probability contributions that add up to each row's probability.

    Each row's contributions are scaled by the secant slope (p(x) - p(base)) / (f(x) - f(base)) of its
    class: the order and the relative size of the contributions stay, their sum becomes the change in
    probability. Binary: the sigmoid of the one log-odds; multiclass: the softmax over all classes
    (``values`` then holds every class)."""
    f0 = np.asarray(base, dtype=float)
    f = f0[None, :] + values.sum(axis=2)                       # (n, K) each row's raw score
    if task is Task.BINARY:
        p, p0 = 1.0 / (1.0 + np.exp(-f)), 1.0 / (1.0 + np.exp(-f0))
    else:
        e = np.exp(f - f.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        e0 = np.exp(f0 - f0.max())
        p0 = e0 / e0.sum()
    delta = f - f0[None, :]
    tiny = np.abs(delta) < 1e-9
    slope = np.where(tiny, p * (1 - p), (p - p0[None, :]) / np.where(tiny, 1.0, delta))
    return values * slope[:, :, None], p0


def _voting(est: Any, X: Any, task: Task, explained: list[Any], budget: _Budget):
    """The members' SHAP values, weighted like the ensemble weights their predictions (see module doc)."""
    if task.is_classification and getattr(est, "voting", "soft") != "soft":
        return None
    members = _members(est)
    weights = np.asarray(est.weights if est.weights is not None else np.ones(len(members)), dtype=float)
    weights = weights / weights.sum()
    # Members were fit on encoded labels (0..K-1): explain the codes of the explained classes.
    codes = [[str(c) for c in est.classes_].index(str(c)) for c in explained] if task.is_classification else explained
    # One member is one model inside scikit-learn's label encoding (models.classifier_step): its own scale.
    single = len(members) == 1
    found = _member_values(members, X, task, codes, budget, weights, task.is_classification and not single)
    if found is None:
        return None
    values_by, left_out, n = found
    kept = {name: float(w) for (name, _), w in zip(members, weights) if name in values_by}
    total = sum(kept.values())
    kept = {name: w / total for name, w in kept.items()}
    values = sum(w * values_by[name][0][:n] for name, w in kept.items())
    base = sum(w * values_by[name][1] for name, w in kept.items())
    kept = {name: {"weight": round(w, 6), "method": values_by[name][2]} for name, w in kept.items()}
    if task.is_classification:
        output = f"probability of '{explained[0]}'" if task is Task.BINARY else "probability of each class"
    else:
        output = "predicted value"
    if single and values_by:
        # built per task: a regression has no explained class (``explained`` is empty)
        output = (f"log-odds of '{explained[0]}'" if task is Task.BINARY else
                  "raw score (log-odds) of each class" if task is Task.MULTICLASS else "predicted value")
        return values, base, next(iter(kept.values()))["method"], output, n, "", kept
    return (values, base, f"weighted member SHAP ({len(values_by)} members, weighted like the ensemble)",
            output, n, _left_out_note(left_out, members, weights), kept)


def _left_out_note(left_out: dict[str, str], members: list[tuple[str, Any]], weights: np.ndarray) -> str:
    if not left_out:
        return ""
    share = sum(w for (name, _), w in zip(members, weights) if name in left_out)
    which = "; ".join(f"{name}: {why}" for name, why in left_out.items())
    return (f"Left out of the explanation ({share:.0%} of the ensemble's weight): {which}. The other members' "
            "weights are rescaled, so the values add up to the prediction of the ensemble without them.")


def _stacking(est: Any, X: Any, task: Task, explained: list[Any], budget: _Budget):
    """The members' SHAP values through the stacking learner's coefficients (it is linear in the
    members' predictions: probabilities for classification, explained as the learner's log-odds)."""
    learner = est.final_estimator_
    if getattr(est, "passthrough", False) or not (hasattr(learner, "coef_") and hasattr(learner, "intercept_")):
        return None
    members = _members(est)
    coef = np.atleast_2d(np.asarray(learner.coef_, dtype=float))      # (1 or K, inputs)
    intercept = np.atleast_1d(np.asarray(learner.intercept_, dtype=float))
    if not task.is_classification:
        weights = np.abs(coef[0])
        found = _member_values(members, X, task, explained, budget, weights / max(weights.sum(), 1e-12), False)
        if found is None:
            return None
        values_by, missing, n = found
        kept = {name: {"weight": float(c), "method": values_by[name][2]}
                for c, (name, _) in zip(coef[0], members) if name in values_by}
        values = sum(c * values_by[name][0][:n] for c, (name, _) in zip(coef[0], members) if name in values_by)
        base = intercept[:1] + sum(c * values_by[name][1] for c, (name, _) in zip(coef[0], members) if name in values_by)
        return (values, base, f"member SHAP through the stacking learner ({len(values_by)} members)",
                "predicted value", n, _left_out_note(missing, members, weights / max(weights.sum(), 1e-12)), kept)
    classes = [str(c) for c in est.classes_]
    k = len(classes)
    # binary: the learner sees classes_[1]'s probability. Members are fit on label codes by scikit-learn's
    # own fit, on the labels when fit before (the saved model's prefit members): explain what they know.
    first = members[0][1][-1] if hasattr(members[0][1], "steps") else members[0][1]
    on_labels = [str(c) for c in first.classes_] == classes
    every = list(est.classes_ if on_labels else range(k)) if k > 2 else [est.classes_[1] if on_labels else 1]
    per = 1 if k == 2 else k
    weights = np.array([np.abs(coef[:, i * per:(i + 1) * per]).sum() for i in range(len(members))])
    found = _member_values(members, X, task, every, budget, weights / max(weights.sum(), 1e-12), True)
    if found is None:
        return None
    values_by, missing, n = found
    kept = {name: {"weight": float(weights[i] / max(weights.sum(), 1e-12)), "method": values_by[name][2]}
            for i, (name, _) in enumerate(members) if name in values_by}
    if k == 2:
        values = sum(coef[0, i] * values_by[name][0][:n] for i, (name, _) in enumerate(members) if name in values_by)
        base = intercept[:1] + sum(coef[0, i] * values_by[name][1] for i, (name, _) in enumerate(members)
                                   if name in values_by)
        if classes.index(str(explained[0])) == 0:
            values, base = -values, -base
        output = f"log-odds of '{explained[0]}'"
    else:
        values = np.zeros((n, k, X.shape[1]))
        base = intercept.copy()
        for i, (name, _) in enumerate(members):
            if name not in values_by:
                continue
            v, b, _ = values_by[name]
            block = coef[:, i * k:(i + 1) * k]                          # (learner class, member class)
            values += np.einsum("cj,njf->ncf", block, v[:n])
            base = base + block @ b
        order = [classes.index(str(c)) for c in explained]
        values, base = values[:, order, :], base[order]
        output = "raw score (log-odds) of each class"
    return (values, base, f"member SHAP through the stacking learner ({len(values_by)} members)", output, n,
            _left_out_note(missing, members, weights / max(weights.sum(), 1e-12)), kept)


def _permutation(model: Any, X: pd.DataFrame, y: np.ndarray, raw: list[str], task: Task, classes: list[Any] | None,
                 metric: Metric, seed: int, budget: _Budget) -> Explanation:
    """How much the metric drops when one raw column's values are shuffled (whole pipeline, global only).

    Up to three repeats of every column, as many as the time left allows. A call costs a fixed
    overhead (featurizing, every ensemble member) plus a cost per row, both measured here, so the row
    sample is sized for one repeat of every column in the budget. The deadline is checked before
    every column: columns not reached by then are left unmeasured (importance 0) and named in the note."""
    start = budget.start
    if budget.over():
        raise ExplanationStopped("stopped while explaining" if budget.stopped else
                                 f"the {budget.seconds:.0f} s budget ran out before anything was explained")
    budget.report(0.0, "measuring how long the model takes to predict")
    predict = model.predict_proba if task.is_classification else model.predict
    small, large = min(20, len(X)), min(200, len(X))
    seconds = []
    for size in (small, large):
        tick = time.perf_counter()
        predict(X.iloc[:size])
        seconds.append(time.perf_counter() - tick)
    per_row = max(seconds[1] - seconds[0], 0.0) / max(large - small, 1)
    overhead = max(seconds[0] - small * per_row, 0.0)
    calls = len(raw) + 1
    n = int(np.clip((budget.left() / calls - overhead) / max(per_row, 1e-9), min(50, len(X)), min(SAMPLE_ROWS, len(X))))
    rows = np.sort(np.random.default_rng(seed + 1).choice(len(X), n, replace=False))
    Xs, ys = X.iloc[rows][raw].reset_index(drop=True), np.asarray(y)[rows]
    score = scorer(metric, task)
    lookup = {c: i for i, c in enumerate(classes or [])}
    truth = np.array([lookup[v] for v in ys]) if task.is_classification else ys.astype(float)
    sign = 1.0 if metric.greater_is_better else -1.0

    def scoring(frame: pd.DataFrame) -> float:
        if not task.is_classification:
            return sign * score(truth, model.predict(frame))
        proba = np.zeros((len(frame), len(classes)))
        proba[:, [lookup[c] for c in model.classes_]] = model.predict_proba(frame)
        return sign * score(truth, proba)

    rng = np.random.default_rng(seed)
    drops: list[list[float]] = [[] for _ in raw]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = scoring(Xs)
        for repeat in range(3):
            for j, column in enumerate(raw):
                if budget.over():
                    break
                budget.report((repeat * len(raw) + j) / (3 * len(raw)),
                              f"shuffling column {j + 1} of {len(raw)} (repeat {repeat + 1} of up to 3)")
                shuffled = Xs.copy()
                # by position, keeping the column's dtype (an object array would change what the encoders see)
                shuffled[column] = shuffled[column].iloc[rng.permutation(len(shuffled))].reset_index(drop=True)
                drops[j].append(reference - scoring(shuffled))
            if budget.over():
                break
    if not any(drops):
        raise ExplanationStopped("stopped while explaining" if budget.stopped else
                                 f"the {budget.seconds:.0f} s budget ran out before anything was explained")
    importance = np.array([np.mean(d) if d else 0.0 for d in drops])
    unmeasured = [c for c, d in zip(raw, drops) if not d]
    note = ("SHAP values are not available for this model (or too slow), so there is no per-row explanation; "
            "the importance is how much worse the model gets without each column.")
    if unmeasured:
        why = "the run was stopped" if budget.stopped else f"the {budget.seconds:.0f} s budget ran out"
        note += (f" {len(unmeasured)} of {len(raw)} columns were not measured because {why}: "
                 f"{', '.join(unmeasured[:10])}{' …' if len(unmeasured) > 10 else ''}.")
    return Explanation("permutation importance (raw columns, whole pipeline)",
                       f"drop in {metric.name} when the column is shuffled", raw,
                       _ranked(raw, importance), pd.DataFrame(columns=["feature", "column", "importance"]),
                       n_rows=len(rows), seconds=time.perf_counter() - start, note=note)



# ------------------------------------------------------------------------------------ storing

def save_explanation(explanation: Explanation, folder: str | Path) -> list[Path]:
    """Write explanations.json (and explanations.parquet with the per-row values); returns the files."""
    folder = Path(folder)
    from ..export.artifacts import clean_json
    paths = [folder / EXPLANATION_FILE]
    paths[0].write_text(json.dumps(clean_json(explanation.to_dict()), indent=1))
    if explanation.values is not None and explanation.rows is not None:
        frame = explanation.rows.copy()
        frame.columns = [f"value:{c}" for c in frame.columns]
        values = explanation.values if explanation.values.ndim == 3 else explanation.values[:, None, :]
        shap_cols = {f"shap:{k}:{column}": values[:, k, j] for k in range(values.shape[1])
                     for j, column in enumerate(explanation.columns)}
        frame = pd.concat([frame, pd.DataFrame(shap_cols, index=frame.index)], axis=1)  # one insert, not K x columns
        frame = frame.astype({c: "str" for c in frame.columns if c.startswith("value:")
                              and not pd.api.types.is_numeric_dtype(frame[c])})
        frame.to_parquet(folder / EXPLANATION_ROWS, index=False)
        paths.append(folder / EXPLANATION_ROWS)
    return paths


def load_explanation(folder: str | Path) -> Explanation | None:
    """The stored explanation of an experiment's model, or None when there is none (yet)."""
    folder = Path(folder)
    meta_path = folder / EXPLANATION_FILE
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    rows = values = None
    rows_path = folder / EXPLANATION_ROWS
    if meta.get("has_rows") and rows_path.is_file():
        frame = pd.read_parquet(rows_path)
        rows = frame[[f"value:{c}" for c in meta["columns"]]].set_axis(meta["columns"], axis=1)
        k = max(1, len(meta["classes"])) if meta["classes"] else 1
        values = np.stack([frame[[f"shap:{i}:{c}" for c in meta["columns"]]].to_numpy() for i in range(k)], axis=1)
        values = values[:, 0, :] if k == 1 else values
    return Explanation(meta["method"], meta["output"], meta["columns"], pd.DataFrame(meta["importance"]),
                       pd.DataFrame(meta["feature_importance"], columns=["feature", "column", "importance"]),
                       meta["classes"], rows, values, meta["base_value"], meta["n_rows"], meta["seconds"], meta["note"],
                       meta.get("members") or {})
