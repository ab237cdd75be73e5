"""Ensembles built from the search's out-of-fold predictions: Caruana selection and stacking.

Both work on the validation rows only (no model is fit here except the small stacking learner), so
they cost milliseconds to seconds, not a refit per member.

Scores: Caruana selection is scored on the validation rows its weights were chosen on, as the best
single model is scored on the rows it was selected on (AutoGluon and Azure AutoML do the same: a
weighted average with at most ``ITERATIONS`` picks has little room to overfit). Stacking's learner
has more freedom, so it is scored honestly: fit on four fifths of the validation rows, scored on the
fifth left out, in turn.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import ElasticNetCV, LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold

from ..models.metrics import Metric, score_all
from ..prepare.schema import Task

#: Azure AutoML's rule for the sorted initialization: up to 5 models within 5 % of the best score.
INIT_MODELS = 5
INIT_TOLERANCE = 0.05
ITERATIONS = 20
MAX_CANDIDATES = 16
HONEST_FOLDS = 5


@dataclass(frozen=True)
class EnsembleCandidate:
    kind: str                      # "ensemble" (Caruana selection) or "stacking"
    members: tuple[int, ...]       # trial ids
    weights: tuple[float, ...]     # blending weights (Caruana); the learner's coefficients are not kept
    score: float                   # validation score (see the module's note)
    metrics: dict[str, float]
    oof: np.ndarray                # the ensemble's predictions on the validation rows


def blend(oofs: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights / weights.sum(), np.stack(oofs), axes=1)


def caruana_weights(oofs: list[np.ndarray], y: np.ndarray, metric: Metric, task: Task, pos_index: int,
                    iterations: int = ITERATIONS) -> np.ndarray:
    """Ensemble selection with sorted initialization and replacement (Caruana et al. 2004).

    ``oofs`` are ordered best first. Returns one count per model (how often it was picked).
    """
    scores = [_score(o, y, metric, task, pos_index) for o in oofs]
    best = scores[0]
    counts = np.zeros(len(oofs))
    for i, s in enumerate(scores[:INIT_MODELS]):
        if i == 0 or abs(metric.loss(s) - metric.loss(best)) <= INIT_TOLERANCE * max(abs(best), 1e-12):
            counts[i] = 1
    total = sum(o * c for o, c in zip(oofs, counts))
    for _ in range(iterations):
        n = counts.sum()
        losses = [metric.loss(_score((total + o) / (n + 1), y, metric, task, pos_index)) for o in oofs]
        pick = int(np.argmin(losses))
        counts[pick] += 1
        total = total + oofs[pick]
    return counts


def caruana(trial_ids: list[int], oofs: list[np.ndarray], y: np.ndarray, metric: Metric, task: Task,
            pos_index: int) -> EnsembleCandidate | None:
    """The Caruana ensemble of the given models (best first); None if it picks a single model."""
    counts = caruana_weights(oofs, y, metric, task, pos_index)
    if np.count_nonzero(counts) < 2:
        return None
    keep = np.flatnonzero(counts)
    weights = counts[keep] / counts.sum()
    blended = blend([oofs[i] for i in keep], weights)
    metrics = score_all(task, y, blended, pos_index)
    return EnsembleCandidate("ensemble", tuple(int(trial_ids[i]) for i in keep), tuple(float(w) for w in weights),
                             metrics.get(metric.name, np.nan), metrics, blended)


def stack_features(oofs: list[np.ndarray], task: Task, label_order: np.ndarray | None = None) -> np.ndarray:
    """The learner's inputs, laid out as scikit-learn's Stacking estimators lay them out.

    Classification: each member's probabilities in sorted-label order (``label_order`` maps it),
    the first column dropped for binary tasks; regression: each member's prediction.
    """
    if not task.is_classification:
        return np.column_stack(oofs)
    cols = []
    for o in oofs:
        p = o[:, label_order] if label_order is not None else o
        cols.append(p[:, 1:] if p.shape[1] == 2 else p)
    return np.hstack(cols)


def stacking_learner(task: Task, seed: int):
    """The stacking estimator of the issue: logistic regression / elastic net."""
    if task.is_classification:
        return LogisticRegression(C=1.0, max_iter=2000)
    # Non-negative weights on the members' predictions; a short alpha path keeps it sub-second.
    return ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=12, cv=3, positive=True, random_state=seed, max_iter=5000)


def stacking(trial_ids: list[int], oofs: list[np.ndarray], y: np.ndarray, metric: Metric, task: Task,
             pos_index: int, seed: int, label_order: np.ndarray | None = None) -> EnsembleCandidate | None:
    """Stacking on the out-of-fold predictions, scored on rows the learner did not see."""
    if len(oofs) < 2:
        return None
    X = stack_features(oofs, task, label_order)
    target = y if label_order is None else np.argsort(label_order)[y]  # codes in sorted-label order
    honest = np.zeros_like(oofs[0])
    for fit_rows, score_rows in _folds(y, task, seed):
        learner = stacking_learner(task, seed).fit(X[fit_rows], target[fit_rows])
        if task.is_classification:
            proba = np.zeros((len(score_rows), oofs[0].shape[1]))
            sorted_proba = np.zeros_like(proba)
            sorted_proba[:, learner.classes_] = learner.predict_proba(X[score_rows])
            proba[:, :] = sorted_proba[:, np.argsort(label_order)] if label_order is not None else sorted_proba
            honest[score_rows] = proba
        else:
            honest[score_rows] = learner.predict(X[score_rows])
    metrics = score_all(task, y, honest, pos_index)
    return EnsembleCandidate("stacking", tuple(int(t) for t in trial_ids), (), metrics.get(metric.name, np.nan),
                             metrics, honest)


def pick_members(trial_ids: list[int], families: list[str], losses: list[float],
                 limit: int = MAX_CANDIDATES) -> list[int]:
    """The models ensembles may use: best first, at most ``limit``, and at most half of them from one
    family, so that the pool stays diverse (near-identical LightGBM configurations add nothing)."""
    order = np.argsort(losses, kind="stable")
    per_family: dict[str, int] = {}
    chosen: list[int] = []
    for i in order:
        if not np.isfinite(losses[i]):
            continue
        if per_family.get(families[i], 0) >= max(2, limit // 2):
            continue
        per_family[families[i]] = per_family.get(families[i], 0) + 1
        chosen.append(int(i))
        if len(chosen) == limit:
            break
    return [trial_ids[i] for i in chosen]


def _score(pred: np.ndarray, y: np.ndarray, metric: Metric, task: Task, pos_index: int) -> float:
    return score_all(task, y, pred, pos_index, only=metric.name).get(metric.name, np.nan)


def _folds(y: np.ndarray, task: Task, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(y)
    k = min(HONEST_FOLDS, n // 2) if n >= 4 else 2
    if task.is_classification and np.bincount(y).min() >= k:
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(n), y))
