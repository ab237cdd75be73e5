"""The opt-in forecasting families (issue #20): Prophet and the neural MLP on windows, each a family of
the one search (allowed by name), its cost model, a failing fit as a failed trial, and the saved model
forecasting after a joblib round trip. Small real series: fred_retail's last ten years, oj_sales' store 2.
"""
from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.forecast import bundle, families
from automl_core.forecast.portfolio import ForecastScheduler
from automl_core.forecast.prophet_family import seasonalities
from automl_core.forecast.series import prepare_forecast
from shared_data import needs_data

pytestmark = needs_data


def _search(frame: pd.DataFrame, family: str, **kw) -> AutoML:
    automl = AutoML(task="forecasting", horizon=6, metric="mase", max_trials=1, time_budget=None,
                    allowed_models=(family,), cv_folds=2, seed=0, **kw)
    return automl.fit(frame, target=frame.columns[-1])


def _reloaded(model: dict) -> dict:
    buf = io.BytesIO()
    joblib.dump(model, buf)
    buf.seek(0)
    return joblib.load(buf)


def _retail(shared) -> pd.DataFrame:
    return pd.read_csv(shared / "fred_retail_S4248SM144SCEN.csv").tail(120)


def test_prophet_fits_and_forecasts_through_the_search_and_after_reload(shared):
    frame = _retail(shared)
    automl = _search(frame, "prophet", time_column="observation_date")
    (trial,) = automl.trials_
    assert trial.family == "prophet" and trial.status == "ok", trial.error
    assert np.isfinite(trial.score) and trial.fit_seconds > 0
    fitted = automl.model_["models"]["prophet#0"]
    assert fitted["kind"] == "prophet" and len(fitted["models"]) == 1
    future = pd.DataFrame({"observation_date": pd.date_range(pd.to_datetime(frame["observation_date"]).max(),
                                                             periods=7, freq="MS")[1:].strftime("%Y-%m-%d")})
    direct = automl.predict(future)
    wanted = future.rename(columns={"observation_date": "ds"}).assign(unique_id=next(iter(fitted["models"])))
    wanted["ds"] = pd.to_datetime(wanted["ds"])
    again, _ = bundle.forecast(_reloaded(automl.model_), wanted)
    assert np.isfinite(direct).all() and np.allclose(again["prediction"], direct)


def test_prophet_takes_known_future_columns_as_regressors_one_fit_per_series(shared):
    oj = pd.read_csv(shared / "oj_sales_train.csv")
    oj = oj[oj["Store"] == 2][["WeekStarting", "Brand", "Price", "Quantity"]]
    config = AutoML(task="forecasting", time_column="WeekStarting", horizon=6, series_id=["Brand"]).config
    prepared = prepare_forecast(oj, "Quantity", config)
    fitted = families.fit("prophet", {}, prepared.panel, families.Problem(prepared.freq, prepared.season, 6, None,
                                                                          (), ("Price",), ()))
    assert len(fitted["models"]) == 3 and all(list(r) == ["Price"] for r in fitted["regressors"].values())
    with pytest.raises(ValueError, match="future values of Price"):
        families.predict(fitted, "prophet", 6, prepared.panel[["unique_id", "ds"]].head(3))


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_mlp_window_fits_one_global_model_and_forecasts_after_reload(shared):
    oj = pd.read_csv(shared / "oj_sales_train.csv")
    oj = oj[oj["Store"] == 2][["WeekStarting", "Brand", "Quantity"]]
    automl = _search(oj, "mlp_window", time_column="WeekStarting", series_id=["Brand"])
    (trial,) = automl.trials_
    assert trial.family == "mlp_window" and trial.status == "ok", trial.error
    model = _reloaded(automl.model_)
    fitted = model["models"]["mlp_window#0"]
    assert fitted["kind"] == "mlp_window" and all(isinstance(w, np.ndarray) for w in fitted["weights"].values())
    out = families.predict(fitted, "mlp_window", 10, None)          # past the trained horizon: fed back
    assert len(out) == 30 and np.isfinite(out["yhat"]).all() and out.groupby("unique_id").size().eq(10).all()
    assert out["ds"].min() > automl.prepared_.panel["ds"].max()
    # same seed, same forecasts, and forecasting from the saved weights without torch: test_families_contract.py


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_a_failing_fit_is_a_failed_trial_and_the_search_goes_on(shared):
    frame = _retail(shared)
    automl = AutoML(task="forecasting", time_column="observation_date", horizon=6, metric="mase", max_trials=2,
                    time_budget=None, allowed_models=("prophet", "naive"), cv_folds=2, seed=0)
    # a Prophet setting it refuses (as a resumed run's warm start would pass it): the trial fails, the search goes on
    automl.fit(frame, target="S4248SM144SCEN", warm_start=[("prophet", {"seasonality_mode": "cubic"})])
    failed, *rest = automl.trials_
    assert failed.family == "prophet" and failed.status == "failed" and "seasonality_mode" in failed.error
    assert [(t.family, t.status) for t in rest] == [("naive", "ok")]
    assert automl.best_trial_.status == "ok"


def test_cost_model_keeps_a_prophet_trial_that_cannot_finish_from_starting():
    problem = families.Problem("D", 7, 14, None, (), (), ())
    many = ForecastScheduler(problem, 10_000, seed=0, deterministic=True, allowed=("prophet",), n_series=200, n_folds=10)
    assert many.trial_seconds("prophet") == pytest.approx(200 * 10 * 0.4)
    assert many.next(1, fits=lambda f: (many.trial_seconds(f) or 0) < 60) == (None, None)
    few = ForecastScheduler(problem, 300, seed=0, deterministic=True, allowed=("prophet",), n_series=1, n_folds=3)
    assert few.next(1, fits=lambda f: (few.trial_seconds(f) or 0) < 60)[0] == "prophet"
    default = ForecastScheduler(problem, 300, seed=0, deterministic=True)
    assert default.queue[-1][0] == "prophet" and "mlp_window" not in {f for f, _ in default.queue}
    yearly = ForecastScheduler(families.Problem("YS", 1, 3, None, (), (), ()), 300, seed=0, deterministic=True)
    assert not {"prophet", "mlp_window"} & {f for f, _ in yearly.queue}   # no season: Prophet only by name
    named = ForecastScheduler(problem, 300, seed=0, deterministic=True, allowed=("prophet", "mlp_window"))
    assert [f for f, _ in named.queue] == ["prophet", "mlp_window"]


def test_prophet_seasonalities_follow_the_frequency():
    assert seasonalities("h", 400) == {"yearly_seasonality": False, "weekly_seasonality": True, "daily_seasonality": True}
    assert seasonalities("D", 1000) == {"yearly_seasonality": True, "weekly_seasonality": True, "daily_seasonality": False}
    assert seasonalities("MS", 3000)["yearly_seasonality"] == 5 and not seasonalities("MS", 3000)["weekly_seasonality"]
    assert seasonalities("YS", 20000) == {"yearly_seasonality": False, "weekly_seasonality": False,
                                          "daily_seasonality": False}
