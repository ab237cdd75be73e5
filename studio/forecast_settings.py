"""Forecasting choices of the wizard (issue #5): the engine's check of a setup, the config fields
from the wizard and back (Clone), and the summary rows. No streamlit here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd

from automl_core.config import AutoMLConfig

#: 0 on the wizard: the engine picks the number of windows (validation.default_folds).
AUTO_FOLDS = 0


def folds_help() -> str:
    from automl_core.forecast.windows import MAX_DEFAULT_FOLDS, VALIDATED_ROWS
    return ("How many forecast origins at the end of each series are checked. Automatic: enough windows "
            f"to cover about {VALIDATED_ROWS} rows of each series (3 to {MAX_DEFAULT_FOLDS}), within its latest half.")


@lru_cache(maxsize=1)
def countries() -> list[str]:
    """ISO codes of the countries whose public holidays the holidays package knows."""
    import holidays
    return sorted(holidays.list_supported_countries())


def check(df: pd.DataFrame, target: str, time_column: str, horizon: int, series: tuple[str, ...],
          frequency: str | None, country: str | None, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """What the engine makes of a forecasting setup: a one-line summary and its notes (``exclude``:
    the columns left out on the Data page, so the notes speak of the columns the run will read).

    Raises:
        AutoMLInputError: the setup cannot be used (the message names the problem and the fix).
    """
    from automl_core.forecast.features import check_country
    from automl_core.forecast.series import prepare_forecast
    config = AutoMLConfig(task="forecasting", time_column=time_column, horizon=horizon, series_id=series,
                          frequency=frequency, exclude_columns=tuple(c for c in exclude if c != target), time_budget=1)
    if country:
        check_country(country)
    data = prepare_forecast(df, target, config)
    lengths = data.panel.groupby("unique_id").size()
    rows = f"{int(lengths.min()):,}" + (f"–{int(lengths.max()):,}" if lengths.max() > lengths.min() else "")
    summary = (f"{data.n_series:,} series · frequency {data.freq} (seasonal period {data.season}) · "
               f"{rows} rows per series · forecast {horizon} step(s) ahead")
    return {"summary": summary, "notes": list(data.notes), "freq": data.freq, "n_series": data.n_series,
            "series_rows": int(lengths.median()), "leaks": list(data.past_columns)}  # no past-only asked: all leaks


def config_fields(w: dict[str, Any]) -> dict[str, Any]:
    """AutoMLConfig fields of a forecasting run from the wizard's choices ({} for other tasks)."""
    if w.get("task") != "forecasting":
        return {}
    return {
        "time_column": w.get("forecast_time_column") or ",".join(w.get("time_parts") or []) or w.get("time_column"),
        "horizon": int(w.get("horizon") or 1), "series_id": tuple(w.get("series_id") or ()),
        "frequency": (w.get("frequency") or "").strip() or None, "country": w.get("country") or None,
        "cv_folds": int(w.get("forecast_folds") or AUTO_FOLDS) or None,
        "cv_step": int(w["forecast_step"]) if w.get("forecast_step") else None,
        "partition_by": tuple(w.get("partition_by") or ()),
        "past_only_columns": tuple(w.get("past_only_columns") or ()), "future_columns": tuple(w.get("future_columns") or ()),
        "validation": "auto", "holdout_fraction": None, "test_size": None, "featurization": "auto",
        "positive_class": None,
    }


def window_count(w: dict[str, Any]) -> int:
    """Rolling-origin windows the engine will validate on (for the trial estimate): the user's number,
    else the automatic one for the typical series the Task page found."""
    if w.get("forecast_folds"):
        return int(w["forecast_folds"])
    from automl_core.forecast.windows import default_folds
    horizon = int(w.get("horizon") or 1)
    step = int(w.get("forecast_step") or 0) or horizon
    return default_folds(horizon, step, pd.Series([int(w.get("forecast_series_rows") or 2 * horizon)]))


PAST_ONLY_HELP = ("Columns whose values you know only up to the forecast origin (e.g. yesterday's sales of a "
                  "related product): the models read them lagged by the horizon, never at the forecast row.")
FUTURE_HELP = ("Columns whose future values you will give in the rows to forecast, kept so even when the leak "
               "check finds that they explain the target at the same time step.")


def leak_warning(columns: list[str]) -> str:
    """The Configure page's reminder of the Task page's leak check."""
    return (f"Possible leak: {', '.join(columns)} explain the target at the same time step, so they are used "
            "past-only (lagged by the horizon). If you will truly know their future values, pick them under "
            "Known-future columns; if not even their past is usable, exclude them.")


def exogenous_options(columns: list[str], w: dict[str, Any]) -> list[str]:
    """Columns that may be past-only or known-future: any but the target, the time and the series ids."""
    left = {*(w.get("series_id") or ()), *(w.get("exclude_columns") or ())}
    return [c for c in partition_options(columns, w) if c not in left]


def partition_help() -> str:
    return ("Many models: each value of these columns (a store, a region) gets a forecasting model of its own, "
            "trained side by side on the machine's cores (or a Dask cluster). The time budget is shared: each "
            "partition starts with its share of the time left. The saved model forecasts each row with its "
            "partition's model.")


def partition_options(columns: list[str], w: dict[str, Any]) -> list[str]:
    """Columns a forecast may be partitioned by: any but the target and the time."""
    time = {*(w.get("time_parts") or []), w.get("time_column"), *(str(w.get("forecast_time_column") or "").split(","))}
    return [c for c in columns if c != w.get("target") and c not in time]


def model_labels() -> dict[str, str]:
    """Forecasting model families and their labels, for the allowed / blocked pickers."""
    from automl_core.forecast.families import LABELS
    return {k: v for k, v in LABELS.items() if k != "ensemble"}


def wizard_fields(c: AutoMLConfig) -> dict[str, Any]:
    """Wizard values that reproduce a forecasting config (for Clone)."""
    if c.task != "forecasting":
        return {}
    parts = [p for p in (c.time_column or "").split(",") if p]
    return {"time_column": parts[0] if len(parts) == 1 else None, "time_parts": parts if len(parts) > 1 else [],
            "forecast_time_column": c.time_column, "horizon": c.horizon, "series_id": list(c.series_id),
            "frequency": c.frequency or "", "country": c.country or "", "forecast_folds": c.cv_folds or AUTO_FOLDS,
            "forecast_step": c.cv_step or 0, "partition_by": list(c.partition_by), "validation_mode": "auto",
            "past_only_columns": list(c.past_only_columns), "future_columns": list(c.future_columns)}


def summary_rows(c: AutoMLConfig, series_rows: int | None = None) -> list[tuple[str, str]]:
    """The forecasting settings in words; ``series_rows`` (a typical series' length) lets the summary
    name the number of windows the engine will choose."""
    if c.task != "forecasting":
        return []
    from automl_core.forecast.families import LABELS
    from automl_core.forecast.windows import default_folds
    step = c.cv_step or c.horizon
    if c.cv_folds:
        folds = str(c.cv_folds)
    elif series_rows:
        folds = f"{default_folds(c.horizon, step, pd.Series([series_rows]))} (automatic)"
    else:
        folds = "an automatic number of"
    names = [m for m in (c.allowed_models or [k for k in LABELS if k != "ensemble"]) if m not in c.blocked_models]
    return [("Models", ", ".join(LABELS.get(m, m) for m in names)),("Time column", str(c.time_column)), ("Horizon", f"{c.horizon} step(s)"),
            ("Series ids", ", ".join(c.series_id) or "one series"), ("Frequency", c.frequency or "detected"),
            ("Holidays", c.country or "none"),
            ("Many models", f"one model per partition of {', '.join(c.partition_by)}" if c.partition_by
             else "one model for every series"),
            ("Past-only columns", ", ".join(c.past_only_columns) or "none asked (the leak check may add some)"),
            ("Known-future columns", ", ".join(c.future_columns) or "as detected"),
            ("Validation", f"rolling origin: {folds} window(s) of {c.horizon}, origins {step} apart")]
