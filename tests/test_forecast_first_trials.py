"""The first LightGBM-on-lags trials of the forecasting portfolio are mlforecast's default LightGBM (issue #20):
a time budget cuts the queue's tail, and on a long hourly series under load the former 300-tree trials timed
out, leaving no lag model. Real data: the latest NYC energy hours with their weather columns."""
from __future__ import annotations

import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.config import AutoMLConfig
from automl_core.forecast import families
from automl_core.forecast.features import plan_features
from automl_core.forecast.series import prepare_forecast
from shared_data import needs_data

pytestmark = needs_data


def _energy(shared, rows: int) -> pd.DataFrame:
    frame = pd.read_csv(shared / "nyc_energy_train.csv")
    return frame[["timeStamp", "precip", "temp", "demand"]].tail(rows).reset_index(drop=True)


def test_the_first_lightgbm_trials_are_the_cheap_defaults(shared):
    data = prepare_forecast(_energy(shared, 2000), "demand",
                            AutoMLConfig(task="forecasting", time_column="timeStamp", horizon=24, time_budget=10))
    plan = plan_features(data.panel, data.freq, data.season, data.horizon, None)
    problem = families.Problem(data.freq, data.season, data.horizon, plan, data.static_columns,
                               data.future_columns, data.past_columns)
    lgbm = [p for f, p in families.portfolio(problem, len(data.panel)) if f == "lgbm_lags"]
    assert [p["transform"] for p in lgbm[:2]] == ["none", "diff"]
    assert all(p["n_estimators"] == 100 and p["learning_rate"] == 0.1 for p in lgbm[:2])


@pytest.mark.slow  # a 3-trial search: 22-45 s on the loaded 2-core machine
def test_the_cheap_lightgbm_forecasts_hourly_demand_better_than_seasonal_naive(shared):
    automl = AutoML(task="forecasting", time_column="timeStamp", horizon=24, metric="mase", max_trials=3,
                    time_budget=None, cv_folds=2, seed=0)
    automl.fit(_energy(shared, 500), target="demand")
    scores = {t.family: t.score for t in automl.trials_ if t.status == "ok" and t.family != "ensemble"}
    assert set(scores) == {"seasonal_naive", "naive", "lgbm_lags"}
    assert scores["lgbm_lags"] < scores["seasonal_naive"]   # MASE: the weather and lags carry signal
