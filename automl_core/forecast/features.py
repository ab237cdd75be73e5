"""Features for the lag models: lags and rolling windows (from frequency and autocorrelation),
calendar parts, holidays and exogenous columns (known-in-future as they are, past-only lagged).

Every feature of a forecast row is known at the forecast origin, so nothing leaks: lags and
windows come from the target's past (mlforecast updates them recursively), calendar parts and
holidays from the timestamp, and a past-only column enters only as its value ``horizon`` rows back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import AutoMLInputError
from .series import DS, ID, Y

MAX_LAGS = 24
HOLIDAY = "holiday"


@dataclass(frozen=True)
class FeaturePlan:
    """What the lag models see (plain data: stored in the model card and the saved bundle)."""

    lags: tuple[int, ...]
    windows: tuple[int, ...]           # rolling mean / std windows over lag 1
    date_features: tuple[str, ...]     # pandas DatetimeIndex attributes
    country: str | None                # holiday calendar, or None
    past_lag: int                      # shift of past-only columns (the horizon)

    def describe(self, statics: tuple[str, ...], future: tuple[str, ...], past: tuple[str, ...]) -> list[dict]:
        """Rows for the Results page's featurization table."""
        rows = [{"feature": "lags", "detail": ", ".join(map(str, self.lags))},
                {"feature": "rolling windows", "detail": ", ".join(f"mean/std over {w}" for w in self.windows) or "none"},
                {"feature": "calendar", "detail": ", ".join(self.date_features) or "none"},
                {"feature": "holidays", "detail": self.country or "none"}]
        if statics:
            rows.append({"feature": "static (per series)", "detail": ", ".join(statics)})
        if future:
            rows.append({"feature": "known in the future", "detail": ", ".join(future)})
        if past:
            rows.append({"feature": f"past-only, lagged {self.past_lag}", "detail": ", ".join(past)})
        return rows


def _acf(y: np.ndarray, max_lag: int) -> np.ndarray:
    y = y - y.mean()
    denom = float(np.dot(y, y)) or 1.0
    return np.array([np.dot(y[:-k], y[k:]) / denom for k in range(1, max_lag + 1)])


def choose_lags(panel: pd.DataFrame, season: int, horizon: int) -> tuple[int, ...]:
    """Lags 1..min(m, 24), the seasonal lags whose autocorrelation is significant, and the strongest
    other lags up to 3 seasons back, all shorter than half the shortest series."""
    shortest = int(panel.groupby(ID).size().min())
    limit = max(1, shortest // 2)
    base = set(range(1, min(max(season, 3), MAX_LAGS, limit) + 1))
    max_lag = min(limit, max(3 * season, 2 * horizon, 8))
    if max_lag >= 2:
        acfs = [_acf(g.to_numpy(dtype=float)[-5000:], max_lag) for _, g in panel.groupby(ID)[Y] if len(g) > max_lag + 2]
        if acfs:
            acf = np.nanmean(np.vstack(acfs), axis=0)
            threshold = 2 / np.sqrt(max(shortest, 4))
            for mult in (1, 2, 3, 7):
                lag = season * mult
                if 1 < lag <= max_lag and acf[lag - 1] > threshold:
                    base.add(lag)
            strongest = np.argsort(-np.abs(acf))[:3] + 1
            base.update(int(k) for k in strongest if abs(acf[k - 1]) > threshold)
    return tuple(sorted(base))


def date_features_for(freq: str) -> tuple[str, ...]:
    name = pd.tseries.frequencies.to_offset(freq).name.split("-")[0]
    if name in ("h", "min", "s"):
        return ("hour", "dayofweek", "dayofyear")
    if name == "D":
        return ("dayofweek", "dayofyear", "month")
    if name == "W":
        return ("dayofyear", "month")
    if name in ("MS", "ME"):
        return ("month",)
    if name in ("QS", "QE"):
        return ("quarter",)
    return ()


def plan_features(panel: pd.DataFrame, freq: str, season: int, horizon: int, country: str | None) -> FeaturePlan:
    lags = choose_lags(panel, season, horizon)
    shortest = int(panel.groupby(ID).size().min())
    windows = tuple(w for w in sorted({season, 7 if season > 7 else 0, 3}) if 2 <= w <= shortest // 2)
    if country:
        check_country(country)
    return FeaturePlan(lags, windows, date_features_for(freq), country, horizon)


def check_country(country: str) -> None:
    import holidays
    if country.upper() not in holidays.list_supported_countries():
        raise AutoMLInputError(f"'{country}' is not a country the holidays package knows",
                               "use an ISO code such as US, GB, DE or FR, or leave the country empty")


def holiday_flags(ds: pd.Series, country: str) -> np.ndarray:
    """1.0 where the date (day of the timestamp) is a public holiday of ``country``."""
    import holidays
    days = pd.to_datetime(ds).dt.normalize()
    years = sorted(set(days.dt.year.tolist()))
    calendar = holidays.country_holidays(country.upper(), years=years)
    dates = pd.to_datetime(pd.Index(list(calendar.keys())))
    return days.isin(dates).to_numpy(dtype=float)


def model_frame(panel: pd.DataFrame, plan: FeaturePlan, past: tuple[str, ...]) -> pd.DataFrame:
    """The training frame of the lag models: derived columns added, raw past-only columns removed."""
    out = panel.copy()
    if plan.country:
        out[HOLIDAY] = holiday_flags(out[DS], plan.country)
    for col in past:
        lagged = out.groupby(ID)[col].shift(plan.past_lag)
        out[f"{col}_lag{plan.past_lag}"] = lagged.groupby(out[ID]).bfill().fillna(0.0)
    return out.drop(columns=list(past))


def future_frame(history: pd.DataFrame, future: pd.DataFrame, plan: FeaturePlan, future_columns: tuple[str, ...],
                 past: tuple[str, ...], static: tuple[str, ...]) -> pd.DataFrame:
    """Exogenous values of the rows to forecast (``future``: unique_id, ds and the known columns).

    Past-only columns come from the history, ``past_lag`` rows back (the last known value beyond).
    """
    out = future[[ID, DS, *future_columns]].copy()
    if plan.country:
        out[HOLIDAY] = holiday_flags(out[DS], plan.country)
    for col in past:
        name = f"{col}_lag{plan.past_lag}"
        values = []
        for uid, part in out.groupby(ID, sort=False):
            hist = history.loc[history[ID] == uid, col].to_numpy(dtype=float)
            step = np.arange(1, len(part) + 1)
            idx = len(hist) - plan.past_lag + step - 1
            idx = np.clip(idx, 0, len(hist) - 1) if len(hist) else idx
            values.append(pd.Series(hist[idx] if len(hist) else np.nan, index=part.index))
        out[name] = pd.concat(values) if values else np.nan
    return out
