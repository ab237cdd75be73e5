"""Exogenous columns that give the target away at the same time step (forecasting's leak check).

A known-in-future column is read at the forecast row itself. If, at that step, it (alone or with a
couple of others) reproduces the target almost exactly -- a component of a total, the total minus
another part, a rescaled copy -- the validation windows look excellent and the forecast is
worthless in use: nobody knows tomorrow's parts before tomorrow's total. Such columns are moved to
past-only by default (they still help lagged by the horizon), and the note says how to override.

The rule is general (no column names) and reads step-to-step changes within each series, not levels:
trending series (GDP, prices, population) correlate in level without telling each other's value, but
an identity (total = sum of parts) or a rescaled copy holds for the changes too. A column leaks when
its changes correlate with the target's at |r| >= ``CORR``, or a least-squares fit of the target's
changes on those of at most ``MAX_COLUMNS`` columns (chosen greedily) reaches R^2 >= ``R2``, on the
rows with a target. Ordinary drivers (price, temperature, promotions) explain far less than that.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

CORR = 0.98          # one column alone: a rescaled copy of the target
R2 = 0.999           # a few columns together: the target is (close to) their sum / difference
MAX_COLUMNS = 3      # more columns fitting well on few rows is chance, not an identity
TRIM = 0.01          # share of worst-fitting rows left out of the R^2 (data-entry slips)
MIN_ROWS = 30        # below this, too few rows to call anything an identity
#: how a leak note starts (the Task page shows such notes as warnings, not captions)
LEAK_NOTE = "possible leak"
MAX_ROWS = 20_000    # an identity shows on a sample; long panels need not pay for every row


def same_time_leaks(y: pd.Series, exogenous: pd.DataFrame) -> tuple[list[str], str]:
    """Exogenous columns that explain the target at the same time step almost exactly.

    Args:
        y: the target on the training rows (NaN where unobserved; the caller passes step changes).
        exogenous: the candidate known-in-future columns on the same rows (numeric).

    Returns:
        The leaking columns (empty when none) and how they explain the target, in words.
    """
    target = y.to_numpy(dtype=float)
    # a mostly empty column would leave too few complete rows to judge the others by: it is not judged
    exogenous = exogenous.loc[:, np.isfinite(exogenous.to_numpy(dtype=float)[np.isfinite(target)]).mean(axis=0) >= 0.5]
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
        return alone, f"the correlation of their step-to-step changes with the target's is >= {CORR}"
    chosen: list[int] = []
    for _ in range(min(MAX_COLUMNS, len(varying))):
        best, best_r2 = None, -np.inf
        for j in varying:
            if j not in chosen and (r2 := _r2(X[:, [*chosen, j]], target)) > best_r2:
                best, best_r2 = j, r2
        chosen.append(best)  # type: ignore[arg-type]
        if best_r2 >= R2:
            # greedy steps may pick a bystander first (the best single fit): keep only the columns the
            # identity needs
            for j in list(chosen):
                if len(chosen) > 1 and _r2(X[:, [k for k in chosen if k != j]], target) >= R2:
                    chosen.remove(j)
            return ([names[j] for j in chosen],
                    f"a linear fit of the target's step-to-step changes on theirs has R² {best_r2:.4f}")
    return [], ""


def _r2(X: np.ndarray, y: np.ndarray) -> float:
    """R^2 of a least-squares fit of y on X with an intercept, refitted without the ``TRIM`` share of
    rows fitting worst: a few mistyped rows must not hide an identity that every other row obeys."""
    design = np.column_stack([np.ones(len(y)), X])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = np.abs(y - design @ coef)
    keep = resid <= np.quantile(resid, 1 - TRIM)
    design, y = design[keep], y[keep]
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return 1.0 - float(resid @ resid) / total


def leaks_to_past(panel: pd.DataFrame, target: str, candidates: list[str], series: str,
                  notes: list[str]) -> tuple[str, ...]:
    """The known-in-future ``candidates`` that give the target away at the same step (to be used
    past-only instead), with a note naming them, the reason and the fix. ``panel``: the rows with a
    target, in time order within each ``series`` id."""
    if not candidates:
        return ()
    changes = panel[[target, *candidates]].groupby(panel[series].to_numpy(), sort=False).diff()
    leaks, why = same_time_leaks(changes[target], changes[candidates])
    if leaks:
        notes.append(f"{LEAK_NOTE}: {', '.join(map(str, leaks))} explain the target at the same time step ({why}); "
                     "their future values are rarely known before the target's, so they are used past-only (lagged "
                     "by the horizon). Fix: if you will truly know them when forecasting, list them as future "
                     "columns (--future-columns); if not even their past is usable, exclude them")
    return tuple(leaks)
