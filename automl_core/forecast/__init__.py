"""Time-series forecasting (issue #5): many series, lags, rolling windows, holidays, rolling-origin
validation, conformal intervals. One entry for the engine: ``AutoML(task="forecasting", ...)``.

Modules by concern: ``setup`` (time parsing, frequency, gaps, duplicates, short series),
``features`` (lags, windows, calendar, holidays, exogenous columns), ``models`` (statsforecast and
mlforecast families), ``validation`` (rolling origin, trials, ensemble), ``scoring`` (metrics,
conformal intervals), ``bundle`` (the saved model and forecasting from it), ``runner`` (the search).
"""
from __future__ import annotations

from typing import Any

from ..config import AutoMLConfig


def is_forecasting(config: AutoMLConfig) -> bool:
    """Forecasting when asked for, or when the task is left to auto-detection and a horizon is given."""
    return config.forecasting


def prepare_forecasting(train: Any, target: str, config: AutoMLConfig, *, test_data: Any = None,
                        validation_data: Any = None) -> Any:
    """Read and check a forecasting table (the forecasting branch of ``automl_core.prepare.tables.prepare``)."""
    from ..io.reader import load_table
    from .series import prepare_forecast
    test = load_table(test_data, "test") if test_data is not None else None
    valid = load_table(validation_data, "validation") if validation_data is not None else None
    if config.partition_by:  # many models: one forecasting problem per partition (partitions.py)
        from .partitions import prepare_partitions
        return prepare_partitions(load_table(train, "training"), target, config, test=test, validation=valid)
    return prepare_forecast(load_table(train, "training"), target, config, test=test, validation=valid)


def predict_forecast(model: dict, card: dict, df: Any) -> Any:
    """The forecasting branch of ``automl_core.export.predict.predict_frame``: forecasts for each row."""
    from .partition_bundle import forecast_table  # a single bundle, or one per partition (routed by row)
    out, notes = forecast_table(model, df)
    out.attrs["notes"] = notes
    return out
