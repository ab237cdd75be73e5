"""Prophet as a forecasting family: one fit per series (its wheel carries the compiled Stan model, so
nothing is compiled or downloaded), seasonalities from the series' frequency, the known-in-future
exogenous columns as extra regressors.

The fitted object is a plain dict (``kind`` "prophet") of ``prophet.Prophet`` models by series id, the
regressors they use and each series' last timestamp: it loads wherever ``prophet`` is installed.
"""
from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from .series import DS, ID, Y

#: Prophet fits each series on at most its latest rows (a few years of hourly data: its cost grows
#: with the rows, its trend and seasonal terms gain little from more).
MAX_ROWS = 3_000
#: Seconds one Prophet fit takes on a short series (the Stan optimiser's start-up dominates), for the
#: search's estimate of a trial's cost before one has finished.
SECONDS_PER_FIT = 0.4
PARAMS = {"seasonality_mode": "additive", "changepoint_prior_scale": 0.05}


def _quiet() -> None:
    """No per-fit lines on the console: cmdstanpy adds its own INFO handler on first use, so it is made first."""
    from cmdstanpy.utils import get_logger
    get_logger().setLevel(logging.ERROR)
    for name in ("prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.ERROR)


def seasonalities(freq: str, span_days: float) -> dict[str, Any]:
    """Prophet's yearly / weekly / daily switches from the frequency (a cycle is modelled only when
    the sampling sees inside it) and the history's span (yearly needs two years)."""
    name = pd.tseries.frequencies.to_offset(freq).name.split("-")[0]
    sub_daily = name in ("h", "min", "s", "ms")
    daily_or_finer = sub_daily or name in ("D", "B")
    yearly: bool | int = span_days >= 730 and name not in ("YS", "YE", "Y", "A", "AS")
    if yearly and name in ("MS", "ME", "SMS", "SME"):
        yearly = 5   # Fourier order: 12 points a year carry at most 6 harmonics
    elif yearly and name in ("QS", "QE"):
        yearly = 1
    return {"yearly_seasonality": yearly, "weekly_seasonality": daily_or_finer and span_days >= 14,
            "daily_seasonality": sub_daily and span_days >= 2}


def _regressors(g: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """Known-in-future columns that vary within this series' history (a constant one is no regressor)."""
    return [c for c in columns if g[c].nunique(dropna=True) > 1]


def _frame(g: pd.DataFrame, regressors: list[str]) -> pd.DataFrame:
    out = g[[DS, *regressors]].copy()
    out[regressors] = out[regressors].astype(float).ffill().bfill().fillna(0.0)
    return out


def fit(train: pd.DataFrame, future: tuple[str, ...], freq: str, params: dict[str, Any]) -> dict:
    """One Prophet per series of the panel ``train`` (unique_id, ds, y, exogenous)."""
    from prophet import Prophet
    _quiet()
    models, regressors, last = {}, {}, {}
    for uid, g in train.groupby(ID, sort=False):
        g = g.tail(MAX_ROWS).dropna(subset=[Y])
        span = (g[DS].max() - g[DS].min()) / pd.Timedelta(days=1)
        model = Prophet(**seasonalities(freq, span), uncertainty_samples=0,
                        seasonality_mode=params.get("seasonality_mode", PARAMS["seasonality_mode"]),
                        changepoint_prior_scale=float(params.get("changepoint_prior_scale",
                                                                 PARAMS["changepoint_prior_scale"])))
        used = _regressors(g, future)
        for col in used:
            model.add_regressor(col)
        frame = _frame(g, used)
        model.fit(frame.assign(y=g[Y].to_numpy(float)))   # MAP fit from Prophet's own start values: no randomness
        models[uid], last[uid] = model, g[DS].max()
        regressors[uid] = {c: float(frame[c].iloc[-1]) for c in used}   # the last value, for unknown future rows
    return {"kind": "prophet", "models": models, "regressors": regressors, "last": last, "freq": freq,
            "future": tuple(future), "params": dict(params)}


def predict(fitted: dict, h: int, X_df: pd.DataFrame | None, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """unique_id, ds, yhat for the ``h`` steps after each series' end (of ``history`` when it is newer
    than the fit: the models are refit on it, as the statistical families are)."""
    if history is not None and history.groupby(ID)[DS].max().to_dict() != fitted["last"]:
        fitted = fit(history, fitted["future"], fitted["freq"], fitted["params"])   # newer data than the fit saw
    parts = []
    for uid, model in fitted["models"].items():
        dates = pd.date_range(fitted["last"][uid], periods=h + 1, freq=fitted["freq"])[1:]
        rows = pd.DataFrame({ID: uid, DS: dates})
        used = list(fitted["regressors"][uid])
        if used:
            if X_df is None or any(c not in X_df.columns for c in used):
                raise ValueError(f"Prophet needs the future values of {', '.join(used)}")
            known = X_df[X_df[ID] == uid][[DS, *used]]
            rows = rows.merge(known, on=DS, how="left")
            rows[used] = rows[used].astype(float).ffill().fillna(pd.Series(fitted["regressors"][uid]))
        out = model.predict(rows.drop(columns=ID))
        parts.append(pd.DataFrame({ID: uid, DS: dates, "yhat": out["yhat"].to_numpy(float)}))
    return pd.concat(parts, ignore_index=True)
