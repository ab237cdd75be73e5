"""Forecasting choices of the wizard (issue #5): the engine's check of a setup, the config fields
from the wizard and back (Clone), and the summary rows. No streamlit here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import pandas as pd

from automl_core.config import AutoMLConfig

DEFAULT_FOLDS = 3


@lru_cache(maxsize=1)
def countries() -> list[str]:
    """ISO codes of the countries whose public holidays the holidays package knows."""
    import holidays
    return sorted(holidays.list_supported_countries())


def check(df: pd.DataFrame, target: str, time_column: str, horizon: int, series: tuple[str, ...],
          frequency: str | None, country: str | None) -> dict[str, Any]:
    """What the engine makes of a forecasting setup: a one-line summary and its notes.

    Raises:
        AutoMLInputError: the setup cannot be used (the message names the problem and the fix).
    """
    from automl_core.forecast.features import check_country
    from automl_core.forecast.setup import prepare_forecast
    config = AutoMLConfig(task="forecasting", time_column=time_column, horizon=horizon, series_id=series,
                          frequency=frequency, time_budget=1)
    if country:
        check_country(country)
    data = prepare_forecast(df, target, config)
    lengths = data.panel.groupby("unique_id").size()
    rows = f"{int(lengths.min()):,}" + (f"–{int(lengths.max()):,}" if lengths.max() > lengths.min() else "")
    summary = (f"{data.n_series:,} series · frequency {data.freq} (seasonal period {data.season}) · "
               f"{rows} rows per series · forecast {horizon} step(s) ahead")
    return {"summary": summary, "notes": list(data.notes), "freq": data.freq, "n_series": data.n_series}


def config_fields(w: dict[str, Any]) -> dict[str, Any]:
    """AutoMLConfig fields of a forecasting run from the wizard's choices ({} for other tasks)."""
    if w.get("task") != "forecasting":
        return {}
    return {
        "time_column": w.get("forecast_time_column") or ",".join(w.get("time_parts") or []) or w.get("time_column"),
        "horizon": int(w.get("horizon") or 1), "series_id": tuple(w.get("series_id") or ()),
        "frequency": (w.get("frequency") or "").strip() or None, "country": w.get("country") or None,
        "cv_folds": int(w.get("forecast_folds") or DEFAULT_FOLDS),
        "cv_step": int(w["forecast_step"]) if w.get("forecast_step") else None,
        "validation": "auto", "holdout_fraction": None, "test_size": None,
    }


def model_labels() -> dict[str, str]:
    """Forecasting model families and their labels, for the allowed / blocked pickers."""
    from automl_core.forecast.models import LABELS
    return {k: v for k, v in LABELS.items() if k != "ensemble"}


def wizard_fields(c: AutoMLConfig) -> dict[str, Any]:
    """Wizard values that reproduce a forecasting config (for Clone)."""
    if c.task != "forecasting":
        return {}
    parts = [p for p in (c.time_column or "").split(",") if p]
    return {"time_column": parts[0] if len(parts) == 1 else None, "time_parts": parts if len(parts) > 1 else [],
            "forecast_time_column": c.time_column, "horizon": c.horizon, "series_id": list(c.series_id),
            "frequency": c.frequency or "", "country": c.country or "", "forecast_folds": c.cv_folds or DEFAULT_FOLDS,
            "forecast_step": c.cv_step or 0, "validation_mode": "auto"}


def summary_rows(c: AutoMLConfig) -> list[tuple[str, str]]:
    if c.task != "forecasting":
        return []
    from automl_core.forecast.models import LABELS
    folds, step = c.cv_folds or DEFAULT_FOLDS, c.cv_step or c.horizon
    names = [m for m in (c.allowed_models or [k for k in LABELS if k != "ensemble"]) if m not in c.blocked_models]
    return [("Models", ", ".join(LABELS.get(m, m) for m in names)),("Time column", str(c.time_column)), ("Horizon", f"{c.horizon} step(s)"),
            ("Series ids", ", ".join(c.series_id) or "one series"), ("Frequency", c.frequency or "detected"),
            ("Holidays", c.country or "none"),
            ("Validation", f"rolling origin: {folds} window(s) of {c.horizon}, origins {step} apart")]
