"""Issue #20: the final refit of a searching statistical family (AutoARIMA, AutoETS, AutoTheta) fits the form
its trial found once instead of searching again, on real data (../shared/datasets/fred_retail_*.csv, monthly
retail sales, its last 10 years)."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from automl_core.config import AutoMLConfig
from automl_core.forecast import families, runner, series
from automl_core.forecast.features import plan_features
from automl_core.forecast.windows import Folds, TrialData, evaluate, min_history
from automl_core.search.results import TrialResult
from shared_data import DATASETS, needs_data

pytestmark = needs_data
os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")


@pytest.fixture(scope="module")
def retail() -> TrialData:
    table = pd.read_csv(DATASETS / "fred_retail_S4248SM144SCEN.csv").tail(120)
    config = AutoMLConfig(task="forecasting", time_budget=10, time_column="observation_date", horizon=12)
    data = series.prepare_forecast(table, "S4248SM144SCEN", config)
    lengths = data.panel.groupby("unique_id").size()
    plan = plan_features(data.panel, data.freq, data.season, 12, None)
    folds = Folds(2, 12, 12, min_history(data.season, plan.lags, plan.windows, lengths, 12))
    problem = families.Problem(data.freq, data.season, 12, plan, (), (), (), True)
    return TrialData(data.panel, data.observed.to_numpy(), problem, folds)


def _searched(family: str, train: pd.DataFrame, problem: families.Problem):
    return families.fit(family, {}, train, problem).fitted_[0, 0]


@pytest.mark.parametrize("family", families.SEARCHED)
def test_refit_with_the_found_form_fits_that_form_once(retail, family):
    found: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(retail, family, {}, found=found)
        form = found["found"]
        assert form, "one series chose one form"
        refit = families.fit(family, {"found": form}, retail.panel, retail.problem)
    model = refit.models[0]
    if family == "auto_arima":  # the plain ARIMA of the found orders: no order search at all
        assert type(model).__name__ == "ARIMA"
        assert (list(model.order), list(model.seasonal_order)) == (form["order"], form["seasonal_order"])
    else:  # the Auto* model restricted to the found form: it has one candidate
        assert model.model == form["model"]
    assert families.found_form(family, refit.fitted_[0, 0]) == form


def test_autoarima_refit_on_the_same_history_gives_the_search_s_orders_and_forecasts(retail):
    """The first window's history: the search's fit and the refit of its orders are the same model."""
    train = retail.panel.iloc[: len(retail.panel) - 24][["unique_id", "ds", "y"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        searched = _searched("auto_arima", train, retail.problem)
        form = families.found_form("auto_arima", searched)
        again = families.fit("auto_arima", {"found": form}, train, retail.problem)
    assert families.found_form("auto_arima", again.fitted_[0, 0]) == form
    assert list(again.fitted_[0, 0].model_["arma"]) == list(searched.model_["arma"])
    np.testing.assert_allclose(again.predict(h=12)["auto_arima"].to_numpy(), searched.predict(h=12)["mean"],
                               rtol=1e-6)


def test_newer_history_refits_the_found_form_not_a_search(retail):
    """The saved model's forecast from newer history keeps the found orders (the bundle's refit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found: dict = {}
        evaluate(retail, "auto_arima", {}, found=found)
        fitted = families.fit("auto_arima", {"found": found["found"]}, retail.panel.iloc[:-12], retail.problem)
        out = families.predict(fitted, "auto_arima", 12, None, retail.panel, retail.problem)
    assert type(fitted.models[0]).__name__ == "ARIMA" and len(out) == 12 and out["yhat"].notna().all()
    assert out["ds"].min() > retail.panel["ds"].max()


def test_refit_price_of_a_found_form_is_a_share_of_the_search():
    found = {"order": [1, 1, 1], "seasonal_order": [0, 1, 1], "season": 12, "mean": False, "drift": False}
    searched = TrialResult(1, "auto_arima", {}, "ok", 1.0, {"mase": 1.0}, 20.0, 0.0, 0.0, 0.0, "", "")
    reused = TrialResult(2, "auto_arima", {"found": found}, "ok", 1.0, {"mase": 1.0}, 20.0, 0.0, 0.0, 0.0, "", "")
    share = families.FOUND_SHARE["auto_arima"]
    assert runner.refit_seconds(reused, 10) == pytest.approx(runner.refit_seconds(searched, 10) * share)


def test_validation_searches_again_when_params_hold_an_older_form(retail):
    """A resumed trial's params carry its old form; each window still searches on its own history."""
    bogus = {"model": "MNM", "damped": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found: dict = {}
        plain = evaluate(retail, "auto_ets", {}, found=found)[0]
        again = evaluate(retail, "auto_ets", {"found": bogus}, found={})[0]
    np.testing.assert_allclose(plain["yhat"], again["yhat"])


def test_a_found_form_that_does_not_fit_the_history_falls_back_to_the_search(retail):
    """A multiplicative form cannot fit a series that goes below zero: the refit searches instead of failing."""
    below = retail.panel.assign(y=retail.panel["y"] - retail.panel["y"].mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = families.fit("auto_ets", {"found": {"model": "MNM", "damped": False}}, below, retail.problem)
    assert fitted.models[0].model == "ZZZ" and fitted.predict(h=12)["auto_ets"].notna().all()
