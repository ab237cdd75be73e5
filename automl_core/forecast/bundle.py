"""The saved forecasting model: a plain dict of public objects, and forecasting from it.

``model.joblib`` for forecasting is a dict (format ``automl-studio-forecast/1``): the fitted
``StatsForecast`` / ``MLForecast`` objects under ``models``, their ``weights``, the history they
continue from and what is needed to build the rows to forecast. It loads with ``joblib.load`` in a
Python that has statsforecast, mlforecast, lightgbm, scikit-learn and pandas (and prophet when a
Prophet model is a member; the neural member is numpy arrays); ``usage`` says how
to forecast from it by hand. This module is how the engine (predict, the studio) forecasts from it.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from ..export.artifacts import clean_json
from ..errors import AutoMLInputError
from . import families
from .features import FeaturePlan, future_frame
from .accuracy import error_by_step, score, seasonal_scale
from .series import DS, ID, SEP, Y, ForecastData, long_frame
from .windows import member_names

FORMAT = "automl-studio-forecast/1"
LEVELS = (80, 95)
USAGE = ("forecasts = sum(weights[name] * models[name].predict(h=H, X_df=X)[name.split('#')[0]] ...): "
         "each StatsForecast object predicts with .predict(h=H); each MLForecast object with "
         ".predict(h=H, X_df=X), X holding unique_id, ds and the columns in 'x_columns' for the next H steps "
         "of every series; columns of the same name are combined with 'weights'. A Prophet member is a dict "
         "whose 'models' hold one prophet.Prophet per series (predict on a frame of ds and its 'regressors'); "
         "an 'mlp_window' member is a dict of numpy weights: the forecast is its MLP (mlp.0, mlp.2, mlp.4 with "
         "ReLU, plus skip) applied to each series' last 'input_size' values scaled by their mean and std.")


def make_bundle(data: ForecastData, cfg: Any, plan: FeaturePlan, fitted: dict[str, Any],
                members: list[tuple[str, dict]], weights: dict[int, float], quantiles: dict[str, list[float]]) -> dict:
    names = member_names(members)
    ordered = list(weights.values())
    last = data.panel.groupby(ID)[DS].max()
    return {
        "format": FORMAT, "usage": USAGE, "target": data.target, "time_column": data.time_column,
        "local_times": data.local_times,
        "series_columns": list(data.series_columns), "series_separator": SEP,
        "freq": data.freq, "season": data.season, "horizon": data.horizon,
        "models": fitted, "families": {n: f for n, (f, _) in zip(names, members)},
        "weights": {n: float(w) for n, w in zip(names, ordered)},
        "static_columns": list(data.static_columns), "future_columns": list(data.future_columns),
        "past_columns": list(data.past_columns), "past_lag": plan.past_lag, "country": plan.country,
        "feature_plan": asdict(plan),
        "x_columns": list(data.future_columns) + (["holiday"] if plan.country else [])
        + [f"{c}_lag{plan.past_lag}" for c in data.past_columns],
        "interval_levels": list(LEVELS), "interval_widths": quantiles,
        "scales": {uid: seasonal_scale(g.to_numpy(float), data.season) for uid, g in data.panel.groupby(ID)[Y]},
        "last_timestamp": {uid: ts for uid, ts in last.items()},
        "history": data.panel.copy(), "nonnegative": bool((data.panel[Y] >= 0).all()),
    }


def _plan(bundle: dict) -> FeaturePlan:
    plan = bundle["feature_plan"]
    return FeaturePlan(tuple(plan["lags"]), tuple(plan["windows"]), tuple(plan["date_features"]), plan["country"],
                       int(plan["past_lag"]))


def _problem(bundle: dict) -> families.Problem:
    return families.Problem(bundle["freq"], bundle["season"], bundle["horizon"], _plan(bundle),
                          tuple(bundle["static_columns"]), tuple(bundle["future_columns"]),
                          tuple(bundle["past_columns"]), bool(bundle.get("nonnegative")))


def forecast(bundle: dict, wanted: pd.DataFrame, history: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Forecasts for the (unique_id, ds) rows of ``wanted`` (with future exogenous values, if any).

    The forecast starts at the end of the saved history, or of ``history`` (a newer panel) when given.
    Returns the rows with ``prediction`` and interval columns (NaN for rows that cannot be forecast:
    unknown series, or timestamps inside the history), and notes for the user.
    """
    notes: list[str] = []
    newer = history is not None
    if newer:
        bundle = {**bundle, "history": history, "last_timestamp": history.groupby(ID)[DS].max().to_dict()}
    freq, last = bundle["freq"], bundle["last_timestamp"]
    steps = _steps(wanted, last, freq)
    known = wanted[ID].isin(list(last)).to_numpy()
    if not known.any():
        examples = ", ".join(map(str, wanted[ID].unique()[:3]))
        raise AutoMLInputError(f"None of the rows belongs to a series the model knows (e.g. {examples})",
                               f"give rows of the trained series ({', '.join(map(str, list(last)[:5]))})")
    if (~known).any():
        notes.append(f"{int((~known).sum()):,} row(s) of series the model was not trained on get no forecast")
    inside = known & (steps < 1)
    if inside.any():
        notes.append(f"{int(inside.sum()):,} row(s) dated inside the training history get no forecast")
    h = int(np.nanmax(np.where(known, steps, 0))) if known.any() else 0
    out = wanted.copy()
    out["prediction"] = np.nan
    if h < 1:
        return _with_intervals(bundle, out, steps, notes)
    grid = _future_grid(bundle, wanted, h, notes)
    history = bundle["history"]
    X_df = future_frame(history, grid, _plan(bundle), tuple(bundle["future_columns"]), tuple(bundle["past_columns"]),
                        tuple(bundle["static_columns"]))
    total = None
    for name, fitted in bundle["models"].items():
        family = bundle["families"][name]
        # A statistical model forecasts from its own fit unless the history is newer: given the history again it
        # fits anew, and AutoARIMA's order search then cost as much as the refit in every chart, test score and
        # predict (stocks: 10 s for the chart, 9 s for predict after an 8 s trial; issue #20).
        again = newer or family not in families.STATS
        pred = families.predict(fitted, family, h, X_df, history if again else None,
                                _problem(bundle)).set_index([ID, DS])["yhat"]
        total = pred * bundle["weights"][name] if total is None else total + pred * bundle["weights"][name]
    keyed = pd.MultiIndex.from_arrays([out[ID], pd.to_datetime(out[DS])])
    out["prediction"] = families.clip(pd.Series(total.reindex(keyed).to_numpy(), index=out.index),
                                    bool(bundle.get("nonnegative")))
    if bundle["horizon"] < h:
        notes.append(f"forecasting {h} steps ahead, beyond the {bundle['horizon']}-step horizon the model was "
                     "validated for")
    return _with_intervals(bundle, out, steps, notes)


def _steps(wanted: pd.DataFrame, last: dict, freq: str) -> np.ndarray:
    """Steps ahead of each row from its series' last training timestamp (NaN: off grid or unknown)."""
    out = np.full(len(wanted), np.nan)
    for uid, idx in wanted.groupby(ID).indices.items():
        if uid not in last:
            continue
        ds = pd.to_datetime(wanted[DS].iloc[idx])
        end = max(ds.max(), last[uid])
        grid = pd.date_range(last[uid], end, freq=freq)
        position = pd.Series(np.arange(len(grid)), index=grid)
        before = ds <= last[uid]
        out[idx] = np.where(before, 0, position.reindex(ds).to_numpy())
    return out


def _future_grid(bundle: dict, wanted: pd.DataFrame, h: int, notes: list[str]) -> pd.DataFrame:
    """Every series' next ``h`` timestamps with the known-in-future values from ``wanted``."""
    rows = []
    for uid, end in bundle["last_timestamp"].items():
        rows.append(pd.DataFrame({ID: uid, DS: pd.date_range(end, periods=h + 1, freq=bundle["freq"])[1:]}))
    grid = pd.concat(rows, ignore_index=True)
    future = list(bundle["future_columns"])
    if not future:
        return grid
    given = wanted.dropna(subset=[DS]).drop_duplicates([ID, DS], keep="last")
    grid = grid.merge(given[[ID, DS, *[c for c in future if c in given.columns]]], on=[ID, DS], how="left")
    history = bundle["history"]
    gaps = 0
    for col in future:
        if col not in grid.columns:
            grid[col] = np.nan
        gaps += int(grid[col].isna().sum())
        last_known = history.groupby(ID)[col].last()
        grid[col] = grid.groupby(ID)[col].ffill()
        grid[col] = grid[col].fillna(grid[ID].map(last_known)).fillna(0.0)
    if gaps:
        notes.append(f"{gaps:,} future value(s) of {', '.join(future)} were not given: the latest known value was used")
    return grid


def _with_intervals(bundle: dict, out: pd.DataFrame, steps: np.ndarray, notes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    scale = out[ID].map(bundle["scales"]).to_numpy(dtype=float)
    for level in bundle["interval_levels"]:
        widths = np.asarray(bundle["interval_widths"][str(level)], dtype=float)
        idx = np.clip(np.nan_to_num(steps, nan=1).astype(int), 1, len(widths)) - 1
        half = widths[idx] * scale
        lower = out["prediction"] - half
        out[f"prediction_lo_{level}"] = lower.clip(lower=0) if bundle.get("nonnegative") else lower
        out[f"prediction_hi_{level}"] = out["prediction"] + half
    return out, notes


def interval_description(nonnegative: bool) -> str:
    """How the intervals are made, for the model card and the Results page; says when they are cut at 0."""
    text = "split conformal on the rolling-origin residuals"
    return text + ("; lower bounds clipped at 0 (every training value is >= 0)" if nonnegative else "")


def forecast_table(bundle: dict, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Forecasts for a raw table's rows (its time, series and exogenous columns), in its row order."""
    wanted = long_frame(df, bundle["target"], bundle["time_column"], tuple(bundle["series_columns"]),
                        [c for c in bundle["future_columns"] if c in df.columns], need_target=False,
                        local_times=bundle.get("local_times", False))
    out, notes = forecast(bundle, wanted)
    cols = ["prediction"] + [f"prediction_{side}_{lv}" for lv in bundle["interval_levels"] for side in ("lo", "hi")]
    return out[cols].set_axis(df.index), notes


def next_horizon(bundle: dict, future: pd.DataFrame | None = None) -> pd.DataFrame:
    """The next ``horizon`` steps after the history of every series (exogenous values from ``future``)."""
    rows = [pd.DataFrame({ID: uid, DS: pd.date_range(end, periods=bundle["horizon"] + 1, freq=bundle["freq"])[1:]})
            for uid, end in bundle["last_timestamp"].items()]
    wanted = pd.concat(rows, ignore_index=True)
    if future is not None and bundle["future_columns"]:
        known = [c for c in bundle["future_columns"] if c in future.columns]
        wanted = wanted.merge(future[[ID, DS, *known]].drop_duplicates([ID, DS]), on=[ID, DS], how="left")
    out, _ = forecast(bundle, wanted)
    out["step"] = out.groupby(ID).cumcount() + 1
    return out


def forecast_latest(bundle: dict, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The next horizon after the latest data: rows of ``df`` with a target extend the history (newer
    rows win), rows without one give the future values of known-in-future columns.

    Returns one row per series and step (series, timestamp, step, prediction, intervals) and notes.
    """
    from .grid import regularise
    cols = [c for c in (*bundle["future_columns"], *bundle["past_columns"], *bundle["static_columns"]) if c in df.columns]
    rows = long_frame(df, bundle["target"], bundle["time_column"], tuple(bundle["series_columns"]), cols,
                      need_target=False, local_times=bundle.get("local_times", False))
    newer, future = rows[rows[Y].notna()], rows[rows[Y].isna()]
    notes: list[str] = []
    history = None
    if not newer.empty:
        saved = bundle["history"]
        unknown = sorted(set(newer[ID]) - set(saved[ID]))
        if unknown:
            notes.append(f"{len(unknown)} series the model was not trained on are left out: {', '.join(unknown[:5])}")
            newer = newer[~newer[ID].isin(unknown)]
        combined = pd.concat([saved, newer.reindex(columns=saved.columns)], ignore_index=True)
        combined = combined.drop_duplicates([ID, DS], keep="last")
        for col in bundle["static_columns"]:  # statics stay what the series had
            combined[col] = combined.groupby(ID)[col].transform("first")
        history = regularise(combined, bundle["freq"], [c for c in saved.columns if c not in (ID, DS, Y)])
        notes.append(f"the forecast starts after the latest data given (up to {newer[DS].max()})")
    base = history if history is not None else bundle["history"]
    end = base.groupby(ID)[DS].max()
    grid = pd.concat([pd.DataFrame({ID: uid, DS: pd.date_range(t, periods=bundle["horizon"] + 1, freq=bundle["freq"])[1:]})
                      for uid, t in end.items()], ignore_index=True)
    if bundle["future_columns"] and not future.empty:
        grid = grid.merge(future[[ID, DS, *[c for c in bundle["future_columns"] if c in future.columns]]]
                          .drop_duplicates([ID, DS], keep="last"), on=[ID, DS], how="left")
    out, more = forecast(bundle, grid, history)
    out["step"] = out.groupby(ID).cumcount() + 1
    return out.drop(columns=[Y], errors="ignore").rename(columns={ID: "series", DS: "timestamp"}), notes + more


def chart_frame(bundle: dict, scored: pd.DataFrame, test: pd.DataFrame | None, keep: int) -> pd.DataFrame:
    """What the Results page draws, one frame: the latest history, the validation windows' forecasts,
    the next horizon (with intervals) and the test rows' forecasts with their actuals."""
    history = bundle["history"].groupby(ID).tail(keep)[[ID, DS, Y]].assign(part="history")
    validation = scored[[ID, DS, Y, "yhat", "fold", "step"]].assign(part="validation")
    ahead = next_horizon(bundle, None if test is None else test.rename(columns={"series": ID, "timestamp": DS}))
    parts = [history, validation, ahead.rename(columns={"prediction": "yhat"}).assign(part="forecast")]
    if test is not None:
        t = test.rename(columns={"series": ID, "timestamp": DS, "prediction": "yhat"})
        actual = next(c for c in t.columns if c.startswith("actual_"))
        parts.append(t.rename(columns={actual: Y}).assign(part="test"))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.rename(columns=lambda c: c.replace("prediction_", ""))
    keep_cols = [ID, DS, Y, "yhat", "part", "fold", "step", *[c for c in frame.columns if c[:3] in ("lo_", "hi_")]]
    return frame[[c for c in keep_cols if c in frame.columns]]


# --- test scoring and the model card ---------------------------------------------------------------

def score_test(bundle: dict, data: ForecastData, metric: Any) -> tuple[float | None, dict[str, float], pd.DataFrame | None]:
    """The test rows forecast from the end of the training history, and scored."""
    if data.test is None or data.test.empty:
        return None, {}, None
    out, _ = forecast(bundle, data.test)
    scored = out.dropna(subset=["prediction", Y]).copy()
    scored["fold"], scored["scale"], scored["yhat"] = 0, scored[ID].map(bundle["scales"]), scored["prediction"]
    metrics = score(scored) if len(scored) else {}
    table = out.rename(columns={Y: f"actual_{data.target}", ID: "series", DS: "timestamp"})
    return metrics.get(metric.name), metrics, table


def make_card(automl: Any, data: ForecastData, plan: FeaturePlan, scored: pd.DataFrame) -> dict[str, Any]:
    best, metric, cfg = automl.best_trial_, automl.metric_, automl.config
    inputs = [*[c.strip() for c in data.time_column.split(",")], *data.series_columns, *data.future_columns]
    return clean_json({
        "format": "automl-studio-model/1", "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": data.target, "task": data.task.value, "task_reason": data.task_reason,
        "metric": metric.name, "greater_is_better": metric.greater_is_better, "classes": None, "positive_class": None,
        "features": [{"name": c, "role": "time" if c in data.time_column.split(",") else
                      "series id" if c in data.series_columns else "exogenous"} for c in inputs],
        "featurization": plan.describe(data.static_columns, data.future_columns, data.past_columns),
        "input_columns": inputs,
        "best_model": best.family, "best_trial_id": best.trial_id, "hyperparameters": best.params,
        "validation": {"strategy": automl.validation_.description, "score": best.score, "metrics": best.metrics},
        "test": {"score": automl.test_score_, "metrics": automl.test_metrics_,
                 "n_rows": 0 if data.test is None else len(data.test)},
        "n_trials": len(automl.search_.trials), "stopped_by": automl.search_.stopped_by,
        "seed": cfg.seed, "config": cfg.to_dict(), "data_fingerprint": data.fingerprint,
        "n_training_rows": len(data.panel), "notes": data.notes,
        "forecast": {"freq": data.freq, "season": data.season, "horizon": data.horizon, "n_series": data.n_series,
                     "series": sorted(map(str, data.panel[ID].unique()))[:1000],
                     "interval_levels": list(LEVELS), "conformal": interval_description(bool((data.panel[Y] >= 0).all())),
                     "error_by_step": error_by_step(scored).to_dict(orient="records")},
    })
