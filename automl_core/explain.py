"""Explanations of a saved model: which raw input columns drive its predictions, globally and per row.

SHAP values are computed on a row sample, in the training thread after the model is saved (never on
page load), and stored in the experiment's artifact folder. How, by the model's last step:

- LightGBM: its own exact tree SHAP (``pred_contrib=True``), in log-odds (classification) or target units.
- scikit-learn forests and histogram boosting: ``shap.TreeExplainer`` on as many sampled rows as fit
  in the time budget, in probability (forests) or log-odds (boosting). Exact tree SHAP takes seconds
  a row on deep forests: then Saabas values (the path attribution, also additive) are used instead.
- Linear models: exact, coefficient x (value - mean value) on the model's scaled features.
- Soft-voting ensembles: the members' SHAP values (each member explained as above on the shared
  features), combined with the ensemble's weights. Exact for regression (the ensemble averages
  predictions); for classification the ensemble averages probabilities while boosting members
  explain log-odds, so when members disagree in scale the combination is not used (see below).
- Anything else (k-nearest neighbours, stacking, mixed-scale ensembles) and models too slow for
  SHAP: permutation importance on the raw columns through the whole pipeline (global only), with as
  many repeats as the time budget allows.

Engineered features (one-hot levels, TF-IDF terms, date parts, missing indicators) are mapped back
to their raw column with ``featurize.feature_to_column`` and their contributions summed.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .evaluation import scorer
from .metrics import Metric
from .schema import ColumnInfo, Task

EXPLANATION_FILE = "explanations.json"
EXPLANATION_ROWS = "explanations.parquet"
SAMPLE_ROWS = 2000           # SHAP rows when the explainer is fast
BUDGET_SECONDS = 6.0         # SHAP on fewer rows when slow; then permutation importance in the same time
MIN_SHAP_ROWS = 100
TOP_FEATURES = 50


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able part (everything but the per-row values)."""
        return {"method": self.method, "output": self.output, "columns": self.columns, "classes": self.classes,
                "importance": self.importance.to_dict("records"),
                "feature_importance": self.feature_importance.to_dict("records"),
                "base_value": self.base_value, "n_rows": self.n_rows, "seconds": round(self.seconds, 3),
                "note": self.note, "has_rows": self.values is not None}


# ------------------------------------------------------------------------------------ computing

def explain_model(model: Any, X: pd.DataFrame, y: np.ndarray, *, columns: list[ColumnInfo], task: Task,
                  classes: list[Any] | None, positive_class: Any, metric: Metric, seed: int = 0,
                  sample_rows: int = SAMPLE_ROWS, budget_seconds: float = BUDGET_SECONDS) -> Explanation:
    """Explain a fitted pipeline (``features`` step first, estimator last) on a sample of ``X``.

    ``y`` holds the labels (classification) or values, aligned with ``X``: permutation importance needs them.
    """
    from .featurize import feature_to_column
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(X), min(sample_rows, len(X)), replace=False))
    sample = X.iloc[rows].reset_index(drop=True)
    names = [str(n) for n in model[0].get_feature_names_out()]
    mapping = feature_to_column(model[0], columns)
    raw = [c.name for c in columns if c.name in set(mapping.values())]
    to_raw = np.zeros((len(names), len(raw)))
    for i, name in enumerate(names):
        to_raw[i, raw.index(mapping[name])] = 1.0
    explained = [positive_class] if task is Task.BINARY else list(classes or [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap_out = _shap(model, sample, task, explained, budget_seconds)
    if shap_out is None:
        return _permutation(model, X, y, raw, task, classes, metric, seed, start, budget_seconds)
    values, base, method, output, n = shap_out          # values: (n, K, F)
    sample = sample.iloc[:n]
    raw_values = values @ to_raw                         # (n, K, C)
    imp_raw = np.abs(raw_values).mean(axis=(0, 1))
    imp_feat = np.abs(values).mean(axis=(0, 1))
    top = np.argsort(-imp_feat)[:TOP_FEATURES]
    features = pd.DataFrame({"feature": [names[i] for i in top], "column": [mapping[names[i]] for i in top],
                             "importance": imp_feat[top]})
    stored = raw_values[:, 0, :] if raw_values.shape[1] == 1 else raw_values
    return Explanation(method, output, raw, _ranked(raw, imp_raw), features, [str(c) for c in explained],
                       sample[raw], stored, [float(b) for b in base], n, time.perf_counter() - start)


def _ranked(columns: list[str], importance: np.ndarray) -> pd.DataFrame:
    total = float(np.sum(np.clip(importance, 0, None))) or 1.0
    frame = pd.DataFrame({"column": columns, "importance": importance,
                          "share": np.clip(importance, 0, None) / total})
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=float)


def _shap(model: Any, sample: pd.DataFrame, task: Task, explained: list[Any], budget: float):
    """(values (n, K, F), base (K,), method, output, n) or None when SHAP cannot explain the model quickly."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    Xf = model[0].transform(sample)
    est = model[-1]
    middle = model[1:-1]
    Xm = middle.transform(Xf) if len(middle) else Xf
    if isinstance(est, (VotingClassifier, VotingRegressor)):
        return _voting(est, Xm, task, explained, budget)
    return _explain_estimator(est, Xm, task, explained, budget)


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


def _explain_estimator(est: Any, X: Any, task: Task, explained: list[Any], budget: float):
    kind = _kind(est)
    if kind == "lightgbm":
        return _lightgbm(est, X, task, explained, budget)
    if kind == "linear":
        return _linear(est, X, task, explained)
    if kind in ("forest", "boosting"):
        return _tree_shap(est, X, task, explained, budget, kind == "forest")
    return None


def _in_budget(compute: Any, X: np.ndarray, budget: float) -> np.ndarray | None:
    """``compute`` on as many leading rows of ``X`` as fit in ``budget`` seconds; None when not even
    MIN_SHAP_ROWS would fit.

    The row count grows tenfold per call, each step sized from the time per row so far: one row of
    exact tree SHAP on a deep forest can take seconds, so a fixed first batch could spend minutes.
    """
    start = time.perf_counter()
    parts, rows, want = [], 0, min(MIN_SHAP_ROWS, len(X))
    while rows < len(X):
        step = 1 if rows == 0 else min(len(X) - rows, rows * 9)
        if rows:
            elapsed = time.perf_counter() - start
            per_row = elapsed / rows
            if rows < want and per_row * want > budget:
                return None
            step = min(step, int((budget - elapsed) / max(per_row, 1e-9)))
            if step <= 0:
                break
        parts.append(np.asarray(compute(X[rows:rows + step])))
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


def _tree_shap(est: Any, X: Any, task: Task, explained: list[Any], budget: float, is_forest: bool):
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
    if leaves * float(tree.max_depth) ** 2 / 1e9 * MIN_SHAP_ROWS < left / 2:
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


def _voting(est: Any, X: Any, task: Task, explained: list[Any], budget: float):
    """Weighted member SHAP values; None when the members explain different scales (see module doc)."""
    if task.is_classification and getattr(est, "voting", "soft") != "soft":
        return None
    weights = np.asarray(est.weights if est.weights is not None else np.ones(len(est.estimators_)), dtype=float)
    weights = weights / weights.sum()
    lasts = [m[-1] if hasattr(m, "steps") else m for m in est.estimators_]
    kinds = {_kind(m) for m in lasts}
    # Forests explain probabilities, the others log-odds: a sum across scales would mean nothing.
    if None in kinds or (task.is_classification and len({k == "forest" for k in kinds}) > 1):
        return None
    # Members were fit on encoded labels (0..K-1): explain the codes of the explained classes.
    codes = [[str(c) for c in est.classes_].index(str(c)) for c in explained] if task.is_classification else explained
    parts, outputs, n = [], set(), None
    for member, w in zip(est.estimators_, weights):
        Xm = member[:-1].transform(X) if hasattr(member, "steps") and len(member) > 1 else X
        last = member[-1] if hasattr(member, "steps") else member
        out = _explain_estimator(last, Xm, task, codes, budget / len(weights))
        if out is None:
            return None
        values, base, method, output, rows = out
        parts.append((w, values, base))
        outputs.add(output)
        n = rows if n is None else min(n, rows)
    if len(outputs) > 1:
        return None
    values = sum(w * v[:n] for w, v, _ in parts)
    base = sum(w * b for w, _, b in parts)
    output = outputs.pop()
    if task is Task.BINARY:
        output = output.replace(f"'{codes[0]}'", f"'{explained[0]}'")
    if len(parts) == 1:  # one model inside scikit-learn's label encoding (models.classifier_step)
        return values, base, method, output, n
    # The ensemble averages predictions (regression) or probabilities: exact when members explain those.
    exact = "exact" if task is Task.REGRESSION or output.startswith("probability") else \
        "approximate: members' log-odds averaged with the ensemble's weights"
    return values, base, f"weighted member SHAP ({len(parts)} members; {exact})", output, n


def _permutation(model: Any, X: pd.DataFrame, y: np.ndarray, raw: list[str], task: Task, classes: list[Any] | None,
                 metric: Metric, seed: int, start: float, budget: float) -> Explanation:
    """How much the metric drops when one raw column's values are shuffled (whole pipeline, global only).

    Up to three repeats of every column, as many as the time left allows (always one). A call costs a
    fixed overhead (featurizing, every ensemble member) plus a cost per row, both measured here, so the
    row sample is sized to leave room for the repeats."""
    predict = model.predict_proba if task.is_classification else model.predict
    small, large = min(20, len(X)), min(200, len(X))
    seconds = []
    for size in (small, large):
        tick = time.perf_counter()
        predict(X.iloc[:size])
        seconds.append(time.perf_counter() - tick)
    per_row = max(seconds[1] - seconds[0], 0.0) / max(large - small, 1)
    overhead = max(seconds[0] - small * per_row, 0.0)
    left = budget - (time.perf_counter() - start)
    calls = len(raw) * 3 + 1
    n = int(np.clip((left / calls - overhead) / max(per_row, 1e-9), min(200, len(X)), min(SAMPLE_ROWS, len(X))))
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
            began = time.perf_counter()
            for j, column in enumerate(raw):
                shuffled = Xs.copy()
                # by position, keeping the column's dtype (an object array would change what the encoders see)
                shuffled[column] = shuffled[column].iloc[rng.permutation(len(shuffled))].reset_index(drop=True)
                drops[j].append(reference - scoring(shuffled))
            if time.perf_counter() - start + (time.perf_counter() - began) > budget:
                break
    importance = np.array([np.mean(d) for d in drops])
    features = pd.DataFrame(columns=["feature", "column", "importance"])
    return Explanation("permutation importance (raw columns, whole pipeline)",
                       f"drop in {metric.name} when the column is shuffled", raw,
                       _ranked(raw, importance), features, n_rows=len(rows),
                       seconds=time.perf_counter() - start,
                       note="SHAP values are not available for this model (or too slow), so there is no per-row "
                            "explanation; the importance is how much worse the model gets without each column.")


# ------------------------------------------------------------------------------------ storing

def save_explanation(explanation: Explanation, folder: str | Path) -> list[Path]:
    """Write explanations.json (and explanations.parquet with the per-row values); returns the files."""
    folder = Path(folder)
    from .artifacts import clean_json
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
                       meta["classes"], rows, values, meta["base_value"], meta["n_rows"], meta["seconds"], meta["note"])
