"""Target-leakage probe: which raw columns predict the target suspiciously well, on a row sample.

Two cheap signals, both computed on at most ``SAMPLE_ROWS`` rows featurized the way the search
featurizes them (so a column is judged by what the model would see):

1. *Alone almost perfect*: a small cross-validated decision tree on the column's features alone
   reaches ROC AUC >= 0.98 (classification) or R² >= 0.9 (regression; for a numeric column the
   squared correlation counts too, since a leak is often a straight line: ``PRP`` ~ ``ERP``).
2. *Carries what nothing else carries*: a quick LightGBM on all columns loses >= 0.1 of ROC AUC or
   R² when the column is left out (``duration`` in bank marketing: 0.94 -> 0.78). This also fires
   for an honest, dominant column (``balance`` for credit default); data cannot tell the two apart,
   only whether the value is known when predicting. The guardrail says so.

Measured on the shared sets (see tests/test_guardrails.py): bank ``duration`` (signal 2), hardware
``PRP`` (r² 0.906), taxi ``fare`` (tree R² 0.92-0.95) and bike ``registered`` (0.95) fire; diamonds
``carat`` (0.87), breast cancer ``worst perimeter`` (AUC 0.97) and California ``median_income`` do not.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ..prepare.tables import Prepared
from ..prepare.schema import Task

SAMPLE_ROWS = 5000
NEAR_PERFECT_AUC = 0.98
NEAR_PERFECT_R2 = 0.90
UNIQUE_LOSS = 0.10
CANDIDATES = 3  # columns given the leave-one-out test: the strongest alone
SMALL_SAMPLE = 2000
# On very wide tables a tree per column costs minutes (10,000 columns: ~4 min on 2 cores, all of it
# inside the person's budget), so a correlation computed for every feature at once picks which columns
# get the tree test. A leak is, almost by definition, strongly related to the target on its own.
PRESCREEN_ABOVE = 200
PRESCREEN_KEEP = 100


@dataclass(frozen=True)
class LeakSuspect:
    column: str
    alone: float            # ROC AUC or R² of the column alone
    loss: float | None      # score lost when it is left out of a model on all columns (None: not tested)
    full: float | None      # that model's score with every column
    measure: str            # "ROC AUC" or "R²"
    near_perfect: bool

    def words(self) -> str:
        if self.near_perfect:
            return f"'{self.column}' alone predicts the target almost perfectly ({self.measure} {self.alone:.3f})"
        return (f"'{self.column}' carries what no other column does: a quick model's {self.measure} falls from "
                f"{self.full:.3f} to {self.full - self.loss:.3f} without it (alone: {self.alone:.3f})")


def probe(prepared: Prepared, featurization: object = "auto", seed: int = 0) -> list[LeakSuspect]:
    """Columns that look like target leaks, strongest first (empty when none does)."""
    from ..prepare.featurize import build_featurizer, feature_to_column
    task = prepared.task
    rows = np.arange(len(prepared.X))
    if len(rows) > SAMPLE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), SAMPLE_ROWS, replace=False))
    X, y = prepared.X.iloc[rows], prepared.codes(prepared.y[rows])
    if task.is_classification and len(np.unique(y)) < 2:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        featurizer = build_featurizer(prepared.columns, mode=featurization, task=task, seed=seed)
        matrix = featurizer.fit_transform(X, y)
    matrix = matrix.tocsc() if sparse.issparse(matrix) else np.asarray(matrix, dtype=float)
    source = list(feature_to_column(featurizer, prepared.columns).values())
    by_column: dict[str, list[int]] = {}
    for i, column in enumerate(source):
        by_column.setdefault(column, []).append(i)
    measure = "R²" if task is Task.REGRESSION else "ROC AUC"
    tested = list(by_column)
    if len(tested) > PRESCREEN_ABOVE:
        quick = _correlation(matrix, y, task)
        tested = sorted(tested, key=lambda c: quick[by_column[c]].max(), reverse=True)[:PRESCREEN_KEEP]
    alone = {c: _alone(matrix[:, by_column[c]], y, task, seed) for c in tested}
    strongest = sorted(alone, key=alone.get, reverse=True)[:CANDIDATES]
    full, losses = _leave_one_out(matrix, y, task, by_column, strongest, seed) if len(by_column) > 1 else (None, {})
    near = NEAR_PERFECT_R2 if task is Task.REGRESSION else NEAR_PERFECT_AUC
    suspects = []
    for column in strongest:
        loss = losses.get(column)
        if alone[column] >= near or (loss is not None and loss >= UNIQUE_LOSS):
            suspects.append(LeakSuspect(column, alone[column], loss, full, measure, alone[column] >= near))
    return suspects


def _dense(part: object) -> np.ndarray:
    return part.toarray() if sparse.issparse(part) else np.asarray(part)


def _correlation(matrix: object, y: np.ndarray, task: Task) -> np.ndarray:
    """Per feature, its largest squared correlation with the target (regression) or with one class's
    indicator (classification); sparse matrices stay sparse."""
    target = y.reshape(-1, 1).astype(float) if task is Task.REGRESSION else np.eye(int(y.max()) + 1)[y]
    spread = target.std(axis=0)
    target = (target - target.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    n = len(y)
    if sparse.issparse(matrix):
        mean = np.asarray(matrix.mean(axis=0)).ravel()
        square = np.asarray(matrix.multiply(matrix).mean(axis=0)).ravel()
        cross = np.asarray(matrix.T @ target) / n  # the target is centred, so the features need not be
    else:
        mean, square, cross = matrix.mean(axis=0), (matrix ** 2).mean(axis=0), matrix.T @ target / n
    std = np.sqrt(np.clip(square - mean ** 2, 0, None))
    r = np.divide(cross, std[:, None], out=np.zeros_like(cross), where=std[:, None] > 0)
    return (r ** 2).max(axis=1)


def _alone(part: object, y: np.ndarray, task: Task, seed: int) -> float:
    """Cross-validated score of a small tree on one column's features (and r² for a numeric one)."""
    x = _dense(part)
    leaf = max(5, len(y) // 200)
    if task is Task.REGRESSION:
        tree = DecisionTreeRegressor(max_leaf_nodes=32, min_samples_leaf=leaf, random_state=seed)
        pred = cross_val_predict(tree, x, y, cv=KFold(3, shuffle=True, random_state=seed))
        best = r2_score(y, pred)
        for j in range(x.shape[1]):
            if np.std(x[:, j]) > 0:
                best = max(best, float(np.corrcoef(x[:, j], y)[0, 1] ** 2))
        return float(best)
    tree = DecisionTreeClassifier(max_leaf_nodes=32, min_samples_leaf=leaf, random_state=seed)
    cv = StratifiedKFold(3, shuffle=True, random_state=seed) if np.bincount(y).min() >= 3 else KFold(3, shuffle=True, random_state=seed)
    proba = cross_val_predict(tree, x, y, cv=cv, method="predict_proba")
    return _auc(y, proba)


def _auc(y: np.ndarray, proba: np.ndarray) -> float:
    present = np.unique(y)
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    if len(present) < proba.shape[1]:  # a class missing from the sample: score the ones present
        proba = proba[:, present] / np.clip(proba[:, present].sum(axis=1, keepdims=True), 1e-12, None)
        y = np.searchsorted(present, y)
        if len(present) == 2:
            return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr"))


def _leave_one_out(matrix: object, y: np.ndarray, task: Task, by_column: dict[str, list[int]],
                   candidates: list[str], seed: int) -> tuple[float, dict[str, float]]:
    """A quick LightGBM on every feature, then without each candidate column: the score each loses."""
    import lightgbm as lgb
    stratified = task.is_classification and np.bincount(y).min() >= 3
    rows = np.arange(len(y))
    if len(y) >= SMALL_SAMPLE:
        splits = [train_test_split(rows, test_size=1 / 3, random_state=seed, stratify=y if stratified else None)]
    else:  # a holdout of a few dozen rows is too noisy to judge a 0.1 loss: cross-validate
        splits = list((StratifiedKFold if stratified else KFold)(3, shuffle=True, random_state=seed).split(rows, y))
    csr = matrix.tocsr() if sparse.issparse(matrix) else matrix
    params = dict(n_estimators=100, num_leaves=15, learning_rate=0.1, min_child_samples=10, n_jobs=1,
                  random_state=seed, verbose=-1)

    def score(keep: np.ndarray) -> float:
        Xk = csr[:, keep]
        valid = np.concatenate([v for _, v in splits])
        pred = np.zeros(len(y)) if task is Task.REGRESSION else np.zeros((len(y), int(y.max()) + 1))
        for train, val in splits:
            if task is Task.REGRESSION:
                pred[val] = lgb.LGBMRegressor(**params).fit(Xk[train], y[train]).predict(Xk[val])
            else:
                model = lgb.LGBMClassifier(**params).fit(Xk[train], y[train])
                pred[np.ix_(val, model.classes_)] = model.predict_proba(Xk[val])
        if task is Task.REGRESSION:
            return float(r2_score(y[valid], pred[valid]))
        return _auc(y[valid], pred[valid])

    everything = np.arange(matrix.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = score(everything)
        losses = {c: full - score(np.setdiff1d(everything, by_column[c])) for c in candidates}
    return full, losses
