"""Forecast metrics over rolling-origin windows: nRMSE, RMSE, MAE, R2 (pooled over every scored row),
sMAPE, MAPE and MASE (per series and window, then averaged, as ../shared/peers.md measures them).

A scored frame has one row per forecast: unique_id, fold, step, y, yhat, scale (the series'
in-sample mean absolute seasonal difference in that fold's training part, MASE's denominator).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .series import ID, Y



def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent; a row where both are 0 counts as a perfect forecast."""
    denom = np.abs(y) + np.abs(yhat)
    ratio = np.where(denom == 0, 0.0, 2 * np.abs(y - yhat) / np.where(denom == 0, 1, denom))
    return float(100 * ratio.mean())


def mape(y: np.ndarray, yhat: np.ndarray) -> float:
    """MAPE in percent over the rows whose actual value is not 0 (NaN when every one is)."""
    keep = y != 0
    return float(100 * np.mean(np.abs((y[keep] - yhat[keep]) / y[keep]))) if keep.any() else float("nan")


def seasonal_scale(y: np.ndarray, season: int) -> float:
    """Mean absolute difference to the value one season back (one step back for short series)."""
    m = season if len(y) > season else 1
    if len(y) <= m:
        return 1.0
    scale = float(np.mean(np.abs(y[m:] - y[:-m])))
    return scale if scale > 0 else 1.0


def score(scored: pd.DataFrame) -> dict[str, float]:
    """Every forecasting metric of a scored frame (NaN-free values only)."""
    y, yhat = scored[Y].to_numpy(dtype=float), scored["yhat"].to_numpy(dtype=float)
    if len(y) == 0 or not np.isfinite(yhat).all():
        return {}
    err = y - yhat
    rmse = float(np.sqrt(np.mean(err ** 2)))
    spread = float(y.max() - y.min()) or 1.0
    out = {"rmse": rmse, "normalized_root_mean_squared_error": rmse / spread, "mae": float(np.mean(np.abs(err)))}
    var = float(np.var(y))
    if var > 0:
        out["r2_score"] = 1 - float(np.mean(err ** 2)) / var
    groups = scored.groupby([ID, "fold"], sort=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per = groups.apply(lambda g: pd.Series({
            "smape": smape(g[Y].to_numpy(float), g["yhat"].to_numpy(float)),
            "mape": mape(g[Y].to_numpy(float), g["yhat"].to_numpy(float)),
            "mase": float(np.mean(np.abs(g[Y] - g["yhat"])) / g["scale"].iloc[0])}), include_groups=False)
    for name in ("smape", "mape", "mase"):
        value = float(np.nanmean(per[name].to_numpy(dtype=float))) if per[name].notna().any() else float("nan")
        if np.isfinite(value):
            out[name] = value
    return out


def error_by_step(scored: pd.DataFrame) -> pd.DataFrame:
    """MAE and sMAPE for each step ahead (1..h), for the Results page."""
    rows = []
    for step, g in scored.groupby("step"):
        y, yhat = g[Y].to_numpy(float), g["yhat"].to_numpy(float)
        rows.append({"step": int(step), "mae": float(np.mean(np.abs(y - yhat))), "smape": smape(y, yhat),
                     "mase": float(np.mean(np.abs(y - yhat) / g["scale"].to_numpy(float)))})
    return pd.DataFrame(rows)


def conformal_quantiles(scored: pd.DataFrame, horizon: int, levels: tuple[int, ...] = (80, 95)) -> dict[str, list[float]]:
    """Split-conformal half-widths per step, in units of each series' scale, from the CV residuals.

    A step with at least 20 residuals gets its own quantile; with fewer (one series, three windows)
    the residuals of every step are pooled and widened like a random walk (sqrt of the step). Widths
    never shrink with the step.
    """
    r = (scored[Y] - scored["yhat"]).abs() / scored["scale"]
    steps = scored["step"].to_numpy()
    out: dict[str, list[float]] = {}
    for level in levels:
        q = level / 100
        pooled = float(np.quantile(r, q)) if len(r) else 0.0
        mean_root = float(np.mean(np.sqrt(steps))) if len(steps) else 1.0
        widths = []
        for s in range(1, horizon + 1):
            at = r[steps == s]
            widths.append(float(np.quantile(at, q)) if len(at) >= 20 else pooled * np.sqrt(s) / mean_root)
        out[str(level)] = list(np.maximum.accumulate(widths))
    return out
