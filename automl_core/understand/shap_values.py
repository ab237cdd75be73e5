"""SHAP values of a fitted pipeline: its featurizer's output explained through the last step, and for
ensembles (soft voting, stacking) the members' values combined the way the ensemble combines their
predictions (see ``explain``'s module doc). Works to a deadline (``Budget``).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..prepare.schema import Task
from .shap_estimators import MIN_SHAP_ROWS, explain_estimator, kind_of

#: Ensemble members no explainer covers may carry less than this share of the weight (else: permutation).
MAX_UNEXPLAINED_WEIGHT = 0.5

Progress = Callable[[float, str], None]


class Budget:
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


def pipeline_shap(model: Any, sample: pd.DataFrame, task: Task, explained: list[Any], budget: Budget):
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
    return explain_estimator(est, Xm, task, explained, budget.left())


def _members(est: Any) -> list[tuple[str, Any]]:
    names = [name for name, _ in est.estimators]
    return list(zip(names, est.estimators_))


def _cost_order(est: Any) -> float:
    """A rough SHAP cost per row, to explain the cheap members first (they leave the expensive ones
    the most time): linear models nothing, boosting trees x leaves, forests last."""
    kind = kind_of(est)
    if kind == "linear":
        return 0.0
    trees = float(getattr(est, "n_estimators_", None) or getattr(est, "n_estimators", None) or 100)
    if kind == "lightgbm":
        return trees * float(getattr(est, "num_leaves", 31) or 31)
    if kind == "boosting":
        return trees * float(getattr(est, "max_leaf_nodes", 31) or 31)
    return 1e12 + trees


def _member_values(members: list[tuple[str, Any]], X: Any, task: Task, targets: list[Any], budget: Budget,
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
    left_out = {name: "no SHAP explainer (k-nearest neighbours)" for name, _ in members if kind_of(lasts[name]) is None}

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
        part = inputs[name] if kind_of(lasts[name]) == "linear" else inputs[name][:probe]
        found = explain_estimator(lasts[name], part, task, targets, budget.left() / (len(todo) - i))
        if found is None:
            left_out[name] = f"too slow to explain in the {budget.seconds:.0f} s budget"
            if too_much():
                return None
            continue
        first[name], seconds[name] = found, time.perf_counter() - tick
    todo = [(name, m) for name, m in todo if name in first and kind_of(lasts[name]) != "linear"]
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
            found = explain_estimator(
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
        if to_probability and kind_of(lasts[name]) != "forest":
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


def _voting(est: Any, X: Any, task: Task, explained: list[Any], budget: Budget):
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


def _stacking(est: Any, X: Any, task: Task, explained: list[Any], budget: Budget):
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
