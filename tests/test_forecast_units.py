"""Unit tests of the forecasting pieces: time parsing, frequency, gaps and duplicates, short series,
features (lags, calendar, holidays, past-only columns), rolling-origin windows, metrics, intervals,
ensemble weights. Real shared data where a piece reads a table; small frames where a rule is checked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_core.config import AutoMLConfig
from automl_core.errors import AutoMLInputError
from automl_core.forecast import features
from automl_core.forecast import accuracy
from automl_core.forecast import series
from automl_core.forecast.choice import caruana as ensemble_weights
from automl_core.forecast.windows import Folds, default_folds, min_history, split
from shared_data import needs_data


def config(**kw) -> AutoMLConfig:
    return AutoMLConfig(task="forecasting", time_budget=10, **kw)


# --- time parsing ------------------------------------------------------------------------------

@needs_data
@pytest.mark.parametrize("file, column, first, last", [
    ("co2_mauna_loa_weekly.csv", "date", "1958-03-29", "2001-12-29"),        # yyyymmdd integers
    ("healthexp.csv", "Year", "1970-01-01", "2020-01-01"),                  # plain years
    ("stocks.csv", "date", "2000-01-01", "2010-03-01"),                     # "Jan 1 2000"
    ("monthly_sunspots.csv", "Month", "1749-01-01", "1983-12-01"),          # "1749-01"
    ("bike_share_daily.csv", "date", "2011-01-01", "2012-12-31"),           # m/d/yyyy
])
def test_time_column_formats(shared, file, column, first, last):
    parsed = series.parse_time(pd.read_csv(shared / file), column)
    assert parsed.min() == pd.Timestamp(first) and parsed.max() == pd.Timestamp(last)


@needs_data
def test_time_assembled_from_date_and_hour_columns(shared):
    df = pd.read_csv(shared / "bike_sharing_hourly.csv", nrows=30)
    parsed = series.parse_time(df, "dteday,hr")
    assert parsed.iloc[0] == pd.Timestamp("2011-01-01 00:00") and parsed.iloc[5] == pd.Timestamp("2011-01-01 05:00")


def test_time_assembled_from_year_month_day_hour():
    df = pd.DataFrame({"year": [2020, 2020], "month": [3, 3], "day": [1, 1], "hour": [0, 1]})
    assert list(series.parse_time(df, "year,month,day,hour")) == [pd.Timestamp("2020-03-01 00:00"),
                                                                pd.Timestamp("2020-03-01 01:00")]


def test_time_column_that_does_not_parse_names_values_and_fix():
    df = pd.DataFrame({"when": ["2020-01-01", "yesterday", "2020-01-03"], "y": [1, 2, 3]})
    with pytest.raises(AutoMLInputError, match=r"1 value\(s\) of the time column 'when' are not dates.*'yesterday'.*Fix:"):
        series.parse_time(df, "when")


# --- frequency, gaps, duplicates, short series -------------------------------------------------

@needs_data
@pytest.mark.parametrize("file, kw, freq, season", [
    ("nyc_energy_validation.csv", dict(target="demand", time_column="timeStamp"), "h", 24),
    ("oj_sales_train.csv", dict(target="Quantity", time_column="WeekStarting", series_id=("Store", "Brand")), "W-THU", 52),
    ("fred_retail_S4248SM144SCEN.csv", dict(target="S4248SM144SCEN", time_column="observation_date"), "MS", 12),
    ("healthexp.csv", dict(target="Life_Expectancy", time_column="Year", series_id=("Country",)), "YS", 1),
])
def test_frequency_detected(shared, file, kw, freq, season):
    target = kw.pop("target")
    data = series.prepare_forecast(pd.read_csv(shared / file), target, config(horizon=3, **kw))
    assert (data.freq, data.season) == (freq, season)


@needs_data
def test_missing_weeks_are_inserted_filled_and_not_scored(shared):
    df = pd.read_csv(shared / "oj_sales_train.csv")
    data = series.prepare_forecast(df, "Quantity", config(time_column="WeekStarting", horizon=8, series_id=("Store", "Brand")))
    assert len(data.panel) == len(df) + 57 and int((~data.observed).sum()) == 57
    assert data.panel["y"].notna().all()
    assert any("57 missing timestamp(s) inserted" in n for n in data.notes)
    assert set(data.static_columns) >= {"INCOME", "Large HH"} and set(data.future_columns) == {"Advert", "Price"}


def test_frequency_override_is_checked():
    df = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=40, freq="D").astype(str), "y": range(40)})
    with pytest.raises(AutoMLInputError, match="not a pandas frequency"):
        series.prepare_forecast(df, "y", config(time_column="t", horizon=3, frequency="fortnightly"))
    data = series.prepare_forecast(df, "y", config(time_column="t", horizon=3, frequency="2D"))
    assert data.freq == "2D"


def _daily(n=40, **cols):
    return pd.DataFrame({"t": pd.date_range("2021-01-01", periods=n, freq="D"), "y": np.arange(n, dtype=float), **cols})


def test_conflicting_duplicates_are_averaged_and_said():
    df = pd.concat([_daily(), pd.DataFrame({"t": [pd.Timestamp("2021-01-05")], "y": [100.0]})], ignore_index=True)
    data = series.prepare_forecast(df, "y", config(time_column="t", horizon=3))
    assert data.panel.loc[data.panel["ds"] == "2021-01-05", "y"].item() == pytest.approx((4 + 100) / 2)
    assert any("appear more than once with different targets" in n and "mean" in n for n in data.notes)
    summed = series.prepare_forecast(df, "y", config(time_column="t", horizon=3, aggregation="sum"))
    assert summed.panel.loc[summed.panel["ds"] == "2021-01-05", "y"].item() == 104
    with pytest.raises(AutoMLInputError, match="more than once"):
        series.prepare_forecast(df, "y", config(time_column="t", horizon=3, aggregation="error"))


def test_many_duplicated_timestamps_ask_for_series_ids():
    df = pd.concat([_daily(), _daily().assign(y=lambda d: d["y"] * 3)], ignore_index=True)
    with pytest.raises(AutoMLInputError, match="several series: name the series id"):
        series.prepare_forecast(df, "y", config(time_column="t", horizon=3))


def test_horizon_longer_than_history_is_refused():
    with pytest.raises(AutoMLInputError, match=r"horizon \(60 rows\) is too long.*longest series has 40.*at most 36"):
        series.prepare_forecast(_daily(), "y", config(time_column="t", horizon=60))


def test_series_with_one_row_is_dropped_and_reported():
    one = pd.DataFrame({"t": [pd.Timestamp("2021-01-01")], "y": [5.0], "shop": ["tiny"]})
    df = pd.concat([_daily(shop="big"), one], ignore_index=True)
    data = series.prepare_forecast(df, "y", config(time_column="t", horizon=3, series_id=("shop",)))
    assert list(data.panel["unique_id"].unique()) == ["big"]
    assert any("1 series shorter than 7 rows dropped" in n and "tiny (1 rows)" in n for n in data.notes)
    with pytest.raises(AutoMLInputError, match="No series has two different timestamps|too long"):
        series.prepare_forecast(one, "y", config(time_column="t", horizon=3, series_id=("shop",)))


# --- features ----------------------------------------------------------------------------------

@needs_data
def test_lags_include_the_daily_cycle_for_hourly_demand(shared):
    df = pd.read_csv(shared / "nyc_energy_validation.csv")
    data = series.prepare_forecast(df, "demand", config(time_column="timeStamp", horizon=48))
    plan = features.plan_features(data.panel, data.freq, data.season, 48, None)
    assert set(range(1, 25)) <= set(plan.lags) and 48 in plan.lags  # two days back is strongly correlated
    assert plan.date_features == ("hour", "dayofweek", "dayofyear") and 24 in plan.windows


def test_holiday_flags_come_from_the_holidays_package():
    ds = pd.Series(pd.to_datetime(["2023-07-04 10:00", "2023-07-05 10:00", "2023-12-25 00:00"]))
    assert list(features.holiday_flags(ds, "US")) == [1.0, 0.0, 1.0]
    with pytest.raises(AutoMLInputError, match="not a country"):
        features.check_country("XX")


def test_past_only_column_is_lagged_by_the_horizon_and_never_leaks():
    panel = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2021-01-01", periods=10, freq="D"),
                          "y": np.arange(10.0), "visits": np.arange(100.0, 110.0)})
    plan = features.FeaturePlan((1,), (), (), None, past_lag=3)
    frame = features.model_frame(panel, plan, ("visits",))
    assert "visits" not in frame.columns and frame["visits_lag3"].iloc[5] == 102.0
    future = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2021-01-11", periods=4, freq="D")})
    X = features.future_frame(panel, future, plan, (), ("visits",), ())
    # step s uses the value 3 rows before it: known at the origin for s <= 3, the last known value beyond
    assert list(X["visits_lag3"]) == [107.0, 108.0, 109.0, 109.0]


@needs_data
def test_row_number_column_is_left_out_unless_the_user_keeps_it(shared):
    df = pd.read_csv(shared / "bike_share_daily.csv")
    data = series.prepare_forecast(df, "cnt", config(time_column="date", horizon=14))
    kept = data.future_columns + data.past_columns + data.static_columns
    assert "instant" not in kept and "temp" in kept
    assert any("row-number column(s) left out of the features: instant" in n for n in data.notes)
    data = series.prepare_forecast(df, "cnt", config(time_column="date", horizon=14, column_roles={"instant": "numeric"}))
    assert "instant" in data.future_columns + data.past_columns
    assert not any("row-number" in n for n in data.notes)


# --- validation windows, metrics, intervals, ensemble ------------------------------------------

def test_rolling_origin_windows_end_at_each_series_end():
    panel = pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2020-01-01", periods=n, freq="D"),
                                     "y": np.arange(n, dtype=float)}) for uid, n in (("a", 30), ("b", 20))])
    folds = Folds(3, 2, 4)
    last_train, last_window = split(panel, folds, 2)
    assert last_window.groupby("unique_id")["y"].agg(list).to_dict() == {"a": [26, 27, 28, 29], "b": [16, 17, 18, 19]}
    assert last_train.groupby("unique_id").size().to_dict() == {"a": 26, "b": 16}
    first_train, first_window = split(panel, folds, 0)
    assert first_window.loc[first_window["unique_id"] == "a", "y"].tolist() == [22, 23, 24, 25]
    assert not (first_train.merge(first_window, on=["unique_id", "ds"]).shape[0])


def test_default_windows_cover_about_140_rows_within_the_latest_half_of_a_series():
    assert default_folds(14, 14, pd.Series([731])) == 10       # daily, two weeks ahead: ten windows
    assert default_folds(48, 48, pd.Series([5000])) == 3       # hourly, two days ahead: three
    assert default_folds(8, 8, pd.Series([121] * 9)) == 7      # 60 of 121 weeks at most
    assert default_folds(3, 3, pd.Series([44, 35, 50, 43, 51, 51])) == 7   # the median series (47 rows)
    assert default_folds(12, 12, pd.Series([40])) == 3         # never fewer than three
    assert default_folds(14, 7, pd.Series([731])) == 10 and default_folds(14, 70, pd.Series([731])) == 5


def test_metrics_against_hand_computed_values():
    y, f = np.array([100.0, 200.0, 0.0]), np.array([110.0, 180.0, 0.0])
    assert accuracy.smape(y, f) == pytest.approx(100 * (20 / 210 + 40 / 380 + 0) / 3)
    assert accuracy.mape(y, f) == pytest.approx(100 * (0.1 + 0.1) / 2)  # the zero actual is left out
    assert accuracy.seasonal_scale(np.array([1.0, 2, 3, 5, 6, 8]), 2) == pytest.approx(np.mean([2, 3, 3, 3]))
    scored = pd.DataFrame({"unique_id": "s", "fold": [0, 0, 1, 1], "step": [1, 2, 1, 2], "y": [10.0, 12, 14, 16],
                           "yhat": [11.0, 12, 13, 18], "scale": [2.0, 2, 2, 2]})
    m = accuracy.score(scored)
    assert m["mae"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(np.sqrt(6 / 4))
    assert m["normalized_root_mean_squared_error"] == pytest.approx(np.sqrt(6 / 4) / 6)
    assert m["mase"] == pytest.approx(np.mean([0.5 / 2, 1.5 / 2]))
    assert m["r2_score"] == pytest.approx(1 - (6 / 4) / np.var([10, 12, 14, 16]))


def test_a_series_enters_a_window_only_with_history_for_a_season_and_the_longest_lag():
    assert min_history(12, (1, 2, 12, 24), (3, 12), pd.Series([123, 68]), 12) == 25
    assert min_history(1, (1, 2, 3), (3,), pd.Series([44]), 3) == 4
    assert min_history(52, (1, 52), (), pd.Series([40]), 8) == series.MIN_TRAIN_ROWS  # none is that long
    panel = pd.DataFrame({"unique_id": ["long"] * 40 + ["short"] * 14, "ds": 0, "y": 1.0})
    train, window = split(panel, Folds(3, 4, 4, min_train=10), 0)
    assert set(window["unique_id"]) == {"long"}          # "short" has 2 rows before its earliest window
    assert set(split(panel, Folds(3, 4, 4, min_train=10), 2)[1]["unique_id"]) == {"long", "short"}
    folds = Folds(3, 4, 4, min_train=10)
    lengths = panel.groupby("unique_id").size()
    entered = folds.windows_per_series(lengths)
    assert entered.to_dict() == {"long": 3, "short": 1}
    assert entered.to_dict() == {u: sum(u in set(split(panel, folds, k)[1]["unique_id"]) for k in range(3))
                                 for u in lengths.index}
    assert "1 of 2 series too short for all of them" in folds.describe(lengths) and "enter 1 window(s)" in folds.describe(lengths)
    assert "too short" not in folds.describe(lengths[["long"]])


def test_conformal_widths_cover_and_grow_with_the_step():
    rng = np.random.default_rng(0)
    n = 400
    steps = np.tile(np.arange(1, 5), n // 4)
    scored = pd.DataFrame({"unique_id": "s", "fold": 0, "step": steps, "y": rng.normal(0, steps, n), "yhat": 0.0,
                           "scale": 1.0})
    widths = accuracy.conformal_quantiles(scored, 4)
    assert np.all(np.diff(widths["80"]) >= 0) and np.all(np.array(widths["95"]) > np.array(widths["80"]))
    inside = np.abs(scored["y"]) <= np.array(widths["80"])[steps - 1]
    assert 0.75 < inside.mean() < 0.85


def test_ensemble_weights_prefer_a_blend_of_complementary_forecasts():
    base = pd.DataFrame({"unique_id": "s", "fold": 0, "step": [1, 2, 3, 4], "y": [10.0, 10, 10, 10], "scale": 1.0})
    high, low, bad = base.assign(yhat=12.0), base.assign(yhat=8.0), base.assign(yhat=20.0)
    weights = ensemble_weights({1: high, 2: low, 3: bad}, "mae", greater=False)
    assert weights == {1: 0.5, 2: 0.5}


def test_test_fraction_holds_out_the_end_of_every_series():
    df = pd.concat([_daily(40, shop="a"), _daily(20, shop="b")], ignore_index=True)
    data = series.prepare_forecast(df, "y", config(time_column="t", horizon=3, series_id=("shop",), test_size=0.25))
    assert data.test.groupby("unique_id")["y"].agg(list).to_dict() == {"a": list(range(30, 40)), "b": list(range(15, 20))}
    assert data.panel.groupby("unique_id").size().to_dict() == {"a": 30, "b": 15}
    with pytest.raises(AutoMLInputError, match="smaller test fraction"):
        series.prepare_forecast(df, "y", config(time_column="t", horizon=12, series_id=("shop",), test_size=0.5))


@needs_data
def test_arima_validation_windows_reuse_the_models_fit_on_the_earliest_one(shared):
    from automl_core.forecast import families
    data = series.prepare_forecast(pd.read_csv(shared / "healthexp.csv"), "Life_Expectancy",
                                  config(time_column="Year", horizon=3, series_id=("Country",)))
    plan = features.plan_features(data.panel, data.freq, data.season, 3, None)
    problem = families.Problem(data.freq, data.season, 3, plan, (), (), (), True)
    panel, folds = data.panel[["unique_id", "ds", "y"]], Folds(3, 3, 3)
    once = families.FitOnce("auto_arima", problem)
    uids = sorted(panel["unique_id"].unique())
    train, window = split(panel[panel["unique_id"] != uids[-1]], folds, 0)
    first, _ = once.forecast(train, window)
    fresh = families.predict(families.fit("auto_arima", {}, train, problem), "auto_arima", 3, None)
    both = first.merge(fresh, on=["unique_id", "ds"], suffixes=("", "_fresh"))
    assert len(both) == len(window) == 3 * (len(uids) - 1)
    assert np.allclose(both["yhat"], both["yhat_fresh"], rtol=1e-6)   # forward on its own data = the fit's forecast

    fitted = dict(once.models)
    train, window = split(panel, folds, 2)
    later, _ = once.forecast(train, window)
    assert all(once.models[u] is fitted[u] for u in fitted)           # not refit: same orders and coefficients
    assert set(once.models) == set(uids)                              # the series new to this window was fit
    assert later[["unique_id", "ds"]].equals(window.sort_values(["unique_id", "ds"])[["unique_id", "ds"]].reset_index(drop=True))
    assert np.isfinite(later["yhat"]).all()


def _windows(errors: dict[int, list[float]]) -> dict[int, pd.DataFrame]:
    """Scored frames of two series over four windows, each trial off by its error in every row of a window."""
    rows = pd.DataFrame([(s, f, step) for s in ("a", "b") for f in range(4) for step in (1, 2)],
                        columns=["unique_id", "fold", "step"]).assign(y=10.0, scale=1.0)
    return {i: rows.assign(yhat=10.0 + np.array(e)[rows["fold"]]) for i, e in errors.items()}


def test_choice_keeps_naive_on_short_low_frequency_series_unless_beaten_by_the_margin():
    from automl_core.forecast import choice
    rule = choice.Rule(prior=0.2)
    margin = rule.prior
    fams = {1: "naive", 2: "auto_ets"}
    slightly = _windows({1: [1, 1, 1, 1], 2: [0.5, 0.5, 1 - margin / 2, 1 - margin / 2]})  # better, not by the margin
    assert choice.choose(slightly, fams, "mase", False, rule, short=True) == {1: 1.0}
    assert choice.choose(slightly, fams, "mase", False, rule, short=False) == {2: 1.0}
    clearly = _windows({1: [1, 1, 1, 1], 2: [1, 1, 0.5, 0.5]})  # only the later windows count for the guard
    assert choice.choose(clearly, fams, "mase", False, rule, short=True) == {2: 1.0}


@needs_data
def test_short_low_frequency_reads_the_frequency_and_the_typical_length(shared):
    from automl_core.forecast import choice
    data = series.prepare_forecast(pd.read_csv(shared / "healthexp.csv"), "Life_Expectancy",
                                  config(time_column="Year", horizon=3, series_id=("Country",)))
    lengths = data.panel.groupby("unique_id").size()
    assert choice.short_low_frequency(data.freq, lengths)                       # yearly, ~50 points a country
    assert not choice.short_low_frequency(data.freq, lengths * 2)               # yearly but long
    assert not choice.short_low_frequency("MS", lengths)                        # monthly
    assert choice.short_low_frequency("QS", lengths) and not choice.short_low_frequency("nonsense", lengths)


def test_default_choice_weights_caruanas_members_equally():
    from automl_core.forecast import choice
    base = pd.DataFrame({"unique_id": "s", "fold": 0, "step": [1, 2], "y": [10.0, 10.0], "scale": 1.0})
    frames = {1: base.assign(yhat=11.5), 2: base.assign(yhat=7.0), 3: base.assign(yhat=20.0)}
    assert choice.caruana(frames, "mae", greater=False) == pytest.approx({1: 2 / 3, 2: 1 / 3})
    fams = {1: "lgbm_lags", 2: "auto_ets", 3: "naive"}
    assert choice.choose(frames, fams, "mae", False, choice.DEFAULT) == pytest.approx({1: 0.5, 2: 0.5})


def test_choice_anchor_keeps_the_statistical_comb_unless_a_pick_beats_it_by_the_margin():
    from automl_core.forecast import choice
    fams = {1: "lgbm_lags", 2: "auto_ets", 3: "auto_theta"}
    comb = {2: 0.5, 3: 0.5}
    # the comb (ETS and Theta err in opposite directions) is off by 0.5; LightGBM by 0.45: better, not by 20 %
    close = _windows({1: [0.45] * 4, 2: [1.5] * 4, 3: [-0.5] * 4})
    assert choice.choose(close, fams, "mase", False, choice.Rule(top=1)) == {1: 1.0}
    assert choice.choose(close, fams, "mase", False, choice.Rule(top=1, anchor=0.2)) == comb
    halves = choice.choose(close, fams, "mase", False, choice.Rule(top=1, anchor=0.2, anchor_blend=True))
    assert halves == pytest.approx({1: 0.5, 2: 0.25, 3: 0.25})
    clear = _windows({1: [0.2] * 4, 2: [1.5] * 4, 3: [-0.5] * 4})   # beaten by more than the margin
    assert choice.choose(clear, fams, "mase", False, choice.Rule(top=1, anchor=0.2)) == {1: 1.0}
