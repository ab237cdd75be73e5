"""The forecasting choice rule's statistical anchor and per-family pool (choice.py), on real forecasts:
the rolling-origin windows of monthly stock prices (../shared/datasets/stocks.csv, two of its series)."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from automl_core.config import AutoMLConfig
from automl_core.forecast import choice, families, features, series
from automl_core.forecast.windows import Folds, TrialData, evaluate, min_history
from shared_data import DATASETS, needs_data

pytestmark = pytest.mark.slow   # the fixture runs eight trials through the real windows: 45 s at load 13 on a cold numba cache (6 s warm)

os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")   # as the engine's workers: statsforecast compiled once

TRIALS = [("seasonal_naive", {}), ("auto_ets", {}), ("auto_theta", {}), ("auto_arima", {}),
          ("lgbm_lags", {"transform": "none", **families.FIRST_LGBM}),
          ("lgbm_lags", {"transform": "diff", **families.FIRST_LGBM}),
          ("lgbm_lags", {"transform": "scale", "n_estimators": 50, "learning_rate": 0.1, "num_leaves": 7}),
          ("linear_lags", {"transform": "diff", "alpha": 1.0})]


@pytest.fixture(scope="module")
def stocks() -> tuple[dict[int, pd.DataFrame], dict[int, str]]:
    """Every trial's scored frame over 3 windows of 12 months at the end of two stocks' histories."""
    config = AutoMLConfig(task="forecasting", time_budget=10, time_column="date", horizon=12, series_id=("symbol",))
    table = pd.read_csv(DATASETS / "stocks.csv")
    data = series.prepare_forecast(table[table["symbol"].isin(["MSFT", "IBM"])], "price", config)
    lengths = data.panel.groupby("unique_id").size()
    plan = features.plan_features(data.panel, data.freq, data.season, 12, None)
    folds = Folds(3, 12, 12, min_history(data.season, plan.lags, plan.windows, lengths, 12))
    problem = families.Problem(data.freq, data.season, 12, plan, data.static_columns, data.future_columns,
                               data.past_columns, True)
    trial_data = TrialData(data.panel, data.observed.to_numpy(), problem, folds)
    frames = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (family, params) in enumerate(TRIALS):
            frames[i] = evaluate(trial_data, family, params)[0]
    return frames, {i: f for i, (f, _) in enumerate(TRIALS)}


def _mase(frames: dict[int, pd.DataFrame], weights: dict[int, float]) -> float:
    return choice._value(choice.blend(frames, weights), "mase")


@needs_data
def test_anchor_keeps_the_statistical_comb_unless_the_pick_beats_it_by_the_margin(stocks):
    frames, fams = stocks
    comb = {i: 1 / 3 for i, f in fams.items() if f in choice.COMB}
    free = choice.choose(frames, fams, "mase", False, choice.Rule(shrink=1.0))
    ratio = _mase(frames, free) / _mase(frames, comb)     # below 1: the unanchored pick scores better
    for margin in (0.0, 0.05, 0.2, 0.5):
        rule = choice.Rule(shrink=1.0, anchor=margin)
        kept = choice.choose(frames, fams, "mase", False, rule)
        assert kept == (free if ratio < 1 - margin else comb), margin
        halves = choice.choose(frames, fams, "mase", False, choice.Rule(shrink=1.0, anchor=margin, anchor_blend=True))
        assert sum(halves.values()) == pytest.approx(1.0)
        if ratio >= 1 - margin:   # not beaten by the margin: half the pick, half the comb
            assert sum(halves.get(i, 0.0) for i in comb) >= 0.5 - 1e-9
            assert _mase(frames, halves) <= max(_mase(frames, free), _mase(frames, comb)) + 1e-9
    # the anchor never moves a pick that beats the comb by more than any margin asked for
    assert choice.choose(frames, fams, "mase", False, choice.Rule(shrink=1.0, anchor=1.0)) == comb


@needs_data
def test_anchor_needs_two_statistical_models_to_combine(stocks):
    frames, fams = stocks
    few = {i: f for i, f in frames.items() if fams[i] not in ("auto_theta", "auto_arima")}
    rule = choice.Rule(shrink=1.0, anchor=1.0)
    assert choice.choose(few, fams, "mase", False, rule) == choice.choose(few, fams, "mase", False,
                                                                          choice.Rule(shrink=1.0))


@needs_data
def test_per_family_pool_holds_the_best_trial_of_each_family(stocks):
    frames, fams = stocks
    values = {i: choice._value(f, "mase") for i, f in frames.items()}
    ranked = sorted(values, key=values.get)
    pool = choice._per_family(ranked, fams)
    assert len(pool) == len(set(fams.values()))
    assert [fams[i] for i in pool].count("lgbm_lags") == 1
    assert pool[0] == ranked[0]
    lgbm = [i for i in ranked if fams[i] == "lgbm_lags"]
    assert lgbm[0] in pool and not set(lgbm[1:]) & set(pool)
    kept = choice.choose(frames, fams, "mase", False, choice.Rule(shrink=1.0, per_family=True))
    assert len({fams[i] for i in kept}) == len(kept)      # no family twice in the blend
    assert np.isfinite(_mase(frames, kept))
