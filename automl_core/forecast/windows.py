"""Rolling-origin cross-validation at the horizon, and one trial (run in a worker process by the
engine's search loop, ``search.loop.run_search``).

Fold k of n ends ``(n - 1 - k) * step`` rows before the end of each series: the model is fit on
everything before the window and forecasts its ``horizon`` rows, exogenous values taken from the
window (known-in-future columns) or from the history (past-only columns, lagged). Only rows whose
target was really observed are scored.
"""
from __future__ import annotations

import math
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ..search.results import TrialOutcome, TrialSpec
from . import families
from .features import future_frame
from .accuracy import score, seasonal_scale
from .series import DS, ID, MIN_TRAIN_ROWS, Y


@dataclass(frozen=True)
class Folds:
    n: int
    step: int
    horizon: int
    #: a series enters a window only with this much history before it (see ``min_history``)
    min_train: int = MIN_TRAIN_ROWS

    def windows_per_series(self, lengths: pd.Series) -> pd.Series:
        """How many of the windows each series enters (see ``split``: a window needs ``min_train`` rows before it)."""
        room = lengths.to_numpy() - self.horizon - self.min_train   # the furthest back a window may end
        k = np.arange(self.n)
        entered = ((self.n - 1 - k)[None, :] * self.step <= room[:, None]).sum(axis=1)
        return pd.Series(entered, index=lengths.index)

    def describe(self, lengths: pd.Series | None = None) -> str:
        text = (f"rolling-origin cross-validation: {self.n} window(s) of {self.horizon} rows at the end of each series, "
                f"origins {self.step} rows apart")
        if lengths is None:
            return text
        entered = self.windows_per_series(lengths)
        short = entered[entered < self.n]
        if short.empty:
            return text
        # Said, because the user asked for (or was shown) n windows and some series are scored on fewer.
        return (text + f"; {len(short)} of {len(entered)} series too short for all of them (each window needs "
                f"{self.min_train} rows of history) enter {_span(short)}")


def _span(entered: pd.Series) -> str:
    low, high = int(entered.min()), int(entered.max())
    return f"{low} window(s)" if low == high else f"{low} to {high} windows"


def min_history(season: int, lags: tuple[int, ...], windows: tuple[int, ...], lengths: pd.Series, horizon: int) -> int:
    """History a series needs before a window: a season for seasonal naive, the longest lag or rolling
    window for the lag families. Without it one short series (GOOG, listed in 2004, among the stocks)
    failed whole trials on the earliest windows (no seasonal-naive forecast, NaN lags for the linear
    model). When no series is that long, the plain minimum, so that a window still exists."""
    wanted = max(MIN_TRAIN_ROWS, season + 1 if season > 1 else 0, max((*lags, *windows, 0)) + 1)
    return wanted if int(lengths.max()) - horizon >= wanted else MIN_TRAIN_ROWS


#: Rows of each series the default windows cover together. Three 14-day windows were too few to
#: tell models apart on bike_share_daily (the pick changed with the fold count: MASE 1.24 at 3
#: windows, 1.12 at 6, 1.00 at 10, against the outer windows' best single model 1.04).
VALIDATED_ROWS = 140
MAX_DEFAULT_FOLDS = 10


def default_folds(horizon: int, step: int, lengths: pd.Series) -> int:
    """Windows enough to cover ``VALIDATED_ROWS`` rows (3 to 10), while they take at most the latest
    half of the typical series, so the earliest window still has history to learn from."""
    wanted = min(MAX_DEFAULT_FOLDS, max(3, math.ceil(VALIDATED_ROWS / horizon)))
    room = int(lengths.median()) // 2 // max(1, step)
    return max(3, min(wanted, room))


@dataclass(frozen=True, eq=False)
class TrialData:
    """What a worker needs: the panel, which rows count, and the problem description."""

    panel: pd.DataFrame
    observed: np.ndarray
    problem: families.Problem
    folds: Folds


def split(panel: pd.DataFrame, folds: Folds, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, window rows) of fold ``k``; series too short for this fold are left out of it."""
    back = (folds.n - 1 - k) * folds.step
    pos = panel.groupby(ID).cumcount()
    length = panel.groupby(ID)[ID].transform("size")
    end = length - back                       # rows [end - horizon, end) form the window
    start = end - folds.horizon
    usable = start >= folds.min_train
    train = panel[usable & (pos < start)]
    window = panel[usable & (pos >= start) & (pos < end)]
    return train, window


def evaluate(data: TrialData, family: str, params: dict[str, Any], threads: int = 1, seed: int = 0,
             found: dict[str, Any] | None = None) -> tuple[pd.DataFrame, float, float]:
    """Forecasts of every fold's window, with actuals and MASE scales; (scored frame, fit s, predict s).

    A searching family (``families.SEARCHED``) searches in every window, also when ``params`` hold a form found
    before (a resumed run's): a window's form must come from its own history. ``found``, when given, gets the
    form the latest fit chose under ``"found"`` (None when its series chose different ones), for the refit."""
    p = data.problem
    params = {k: v for k, v in params.items() if k != "found"}
    parts, fit_s, pred_s, models = [], 0.0, 0.0, []
    panel = data.panel.assign(_observed=data.observed)
    once = families.FitOnce(family, p) if family in families.FIT_ONCE else None
    for k in range(data.folds.n):
        train, window = split(panel, data.folds, k)
        if window.empty:
            continue
        start = time.perf_counter()
        if once is not None:
            pred, fit_k = once.forecast(train.drop(columns="_observed"), window)
            fit_s, pred_s = fit_s + fit_k, pred_s + time.perf_counter() - start - fit_k
            models = list(once.models.values())
        else:
            fitted = families.fit(family, params, train.drop(columns="_observed"), p, threads, seed)
            fit_s += time.perf_counter() - start
            models = list(fitted.fitted_[:, 0]) if family in families.SEARCHED else []
            start = time.perf_counter()
            X_df = future_frame(train, window, p.plan, p.future, p.past, p.static)
            pred = families.predict(fitted, family, p.horizon, X_df)
            pred_s += time.perf_counter() - start
        pred["yhat"] = families.clip(pred["yhat"], p.nonnegative)
        got = window[[ID, DS, Y, "_observed"]].merge(pred, on=[ID, DS], how="left")
        got["fold"] = k
        got["step"] = got.groupby(ID).cumcount() + 1
        scales = {uid: seasonal_scale(g.to_numpy(float), p.season) for uid, g in train.groupby(ID)[Y]}
        got["scale"] = got[ID].map(scales)
        parts.append(got)
    if not parts:
        raise ValueError("no series is long enough for a single validation window")
    scored = pd.concat(parts, ignore_index=True)
    scored = scored[scored.pop("_observed").astype(bool)].reset_index(drop=True)
    if scored["yhat"].isna().any():
        raise ValueError(f"the model gave no forecast for {int(scored['yhat'].isna().sum())} validation rows")
    if found is not None and family in families.SEARCHED and models:
        found["found"] = families.shared_form(family, models)
    return scored, fit_s, pred_s


# --- worker side -------------------------------------------------------------------------------

_CACHE: dict[str, TrialData] = {}


def load(path: str) -> TrialData:
    if path not in _CACHE:
        _CACHE.clear()
        _CACHE[path] = joblib.load(path)
    return _CACHE[path]


def run_trial(spec: TrialSpec, data: TrialData | None = None) -> TrialOutcome:
    """One trial in a worker: rolling-origin validation of one configuration. Never raises.

    ``data`` is given on a Dask cluster (scattered to the workers); locally it is read from the file.
    The outcome's ``oof`` is the frame of every window's forecasts, actuals and MASE scales.
    """
    if data is not None and spec.data_path not in _CACHE:
        _CACHE.clear()
        _CACHE[spec.data_path] = data
    params = dict(spec.params)
    try:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=spec.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found: dict[str, Any] = {}
            scored, fit_s, pred_s = evaluate(load(spec.data_path), spec.family, params, spec.threads, spec.seed, found)
        params.pop("found", None)  # a resumed trial's older form: only this search's own is kept
        if found.get("found"):  # the form the refit fits once (families.SEARCHED), kept with the trial's params
            params["found"] = found["found"]
        metrics = score(scored)
        if not metrics:
            return TrialOutcome(spec.trial_id, "failed", params=params, error="the forecasts are not finite numbers")
        return TrialOutcome(spec.trial_id, "ok", metrics, params, scored, fit_s, pred_s)
    except Exception as exc:  # a failing trial is recorded and the search goes on
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return TrialOutcome(spec.trial_id, "failed", params=params, error=detail[:2000])


def refit(path: str, members: list[tuple[str, dict[str, Any]]], threads: int, seed: int) -> dict[str, Any]:
    """The final models, fit on the whole history: {family#i: fitted library object}."""
    from threadpoolctl import threadpool_limits
    data = load(path)
    with threadpool_limits(limits=threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: families.fit(family, params, data.panel, data.problem, threads, seed)
                for name, (family, params) in zip(member_names(members), members)}


def member_names(members: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [f"{family}#{i}" for i, (family, _) in enumerate(members)]
