"""Exogenous columns that give the target away at the same time step (forecasting's leak check).

A known-in-future column is read at the forecast row itself. If, at that step, it (alone or with a
couple of others) reproduces the target almost exactly -- a component of a total, the total minus
another part, a rescaled copy -- the validation windows look excellent and the forecast is
worthless in use: nobody knows tomorrow's parts before tomorrow's total. Such columns are moved to
past-only by default (they still help lagged by the horizon), and the note says how to override.

The rule is general (no column names): |correlation| with the target >= ``CORR``, or a least-squares
fit of the target on at most ``MAX_COLUMNS`` columns (chosen greedily) with R^2 >= ``R2``, on the
rows with a target. Ordinary drivers (price, temperature, promotions) explain far less than that.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

CORR = 0.98          # one column alone: a rescaled copy of the target
R2 = 0.999           # a few columns together: the target is (close to) their sum / difference
MAX_COLUMNS = 3      # more columns fitting well on few rows is chance, not an identity
MIN_ROWS = 30        # below this, too few rows to call anything an identity
MAX_ROWS = 20_000    # an identity shows on a sample; long panels need not pay for every row


def same_time_leaks(y: pd.Series, exogenous: pd.DataFrame) -> tuple[list[str], str]:
    """Exogenous columns that explain the target at the same time step almost exactly.

    Args:
        y: the target on the training rows (NaN where unobserved).
        exogenous: the candidate known-in-future columns on the same rows (numeric).

    Returns:
        The leaking columns (empty when none) and how they explain the target, in words.
    """
    target = y.to_numpy(dtype=float)
    X = exogenous.to_numpy(dtype=float)
    rows = np.isfinite(target) & np.isfinite(X).all(axis=1) if X.size else np.isfinite(target)
    if X.shape[1] == 0 or rows.sum() < MIN_ROWS or np.nanstd(target[rows]) == 0:
        return [], ""
    target, X = target[rows], X[rows]
    if len(target) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(0).choice(len(target), MAX_ROWS, replace=False))
        target, X = target[keep], X[keep]
    names = list(exogenous.columns)
    varying = [j for j in range(X.shape[1]) if np.std(X[:, j]) > 0]
    corr = {j: abs(float(np.corrcoef(X[:, j], target)[0, 1])) for j in varying}
    alone = [names[j] for j in varying if corr[j] >= CORR]
    if alone:
        return alone, f"|correlation| with the target >= {CORR}"
    chosen: list[int] = []
    for _ in range(min(MAX_COLUMNS, len(varying))):
        best, best_r2 = None, -np.inf
        for j in varying:
            if j not in chosen and (r2 := _r2(X[:, [*chosen, j]], target)) > best_r2:
                best, best_r2 = j, r2
        chosen.append(best)  # type: ignore[arg-type]
        if best_r2 >= R2:
            return ([names[j] for j in chosen],
                    f"a linear fit of the target on them has R² {best_r2:.4f}")
    return [], ""


def _r2(X: np.ndarray, y: np.ndarray) -> float:
    """R^2 of a least-squares fit of y on X with an intercept."""
    design = np.column_stack([np.ones(len(y)), X])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return 1.0 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())


def leaks_to_past(panel: pd.DataFrame, target: str, candidates: list[str], notes: list[str]) -> tuple[str, ...]:
    """The known-in-future ``candidates`` that give the target away at the same step (to be used
    past-only instead), with a note naming them, the reason and the fix."""
    leaks, why = same_time_leaks(panel[target], panel[candidates])
    if leaks:
        notes.append(f"possible leak: {', '.join(map(str, leaks))} explain the target at the same time step ({why}); "
                     "their future values are rarely known before the target's, so they are used past-only (lagged "
                     "by the horizon). Fix: if you will truly know them when forecasting, list them as future "
                     "columns (--future-columns); if not even their past is usable, exclude them")
    return tuple(leaks)
