"""Times whose UTC offsets differ within one column -- what an export spanning a daylight-saving change
looks like (``...T10:00:00+01:00`` in winter, ``...T10:00:00+02:00`` in summer) -- through the roles,
the forecasting time column and prediction. Real tables (bike sharing) written out in Berlin time.
"""
from __future__ import annotations

import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.forecast import series as setup
from automl_core.prepare.roles import clean_frame, infer_roles, parse_datetime_column


def _berlin(stamps: pd.Series) -> pd.Series:
    """Local Berlin wall times as ISO strings with their offset (+01:00 in winter, +02:00 in summer)."""
    return stamps.dt.tz_localize("Europe/Berlin", ambiguous="NaT", nonexistent="NaT").map(
        lambda t: t.isoformat() if t is not pd.NaT else None)


@pytest.fixture(scope="module")
def daily(shared) -> pd.DataFrame:
    df = pd.read_csv(shared / "bike_share_daily.csv")[["date", "temp", "hum", "cnt"]]
    df["date"] = _berlin(pd.to_datetime(df["date"], format="%m/%d/%Y") + pd.Timedelta(hours=10))
    return df


@pytest.fixture(scope="module")
def hourly(shared) -> pd.DataFrame:
    df = pd.read_csv(shared / "bike_sharing_hourly.csv", nrows=3000)
    local = pd.to_datetime(df["dteday"]) + pd.to_timedelta(df["hr"], unit="h")
    # the same instants, written as an export would: Z for some rows, the local offset for the rest
    utc = local.dt.tz_localize("Europe/Berlin", ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    keep = utc.notna()
    df, utc = df[keep].reset_index(drop=True), utc[keep].reset_index(drop=True)
    df["when"] = [t.strftime("%Y-%m-%dT%H:%M:%SZ") if i % 3 == 0 else t.tz_convert("Europe/Berlin").isoformat()
                  for i, t in enumerate(utc)]
    return df[["when", "temp", "hum", "cnt"]]


def test_the_issue_example_parses_to_utc() -> None:
    raw = pd.Series(["2024-01-10T10:00:00Z", "2024-02-11T10:00:00+02:00"] * 20)
    cleaned, _ = clean_frame(pd.DataFrame({"t": raw}))
    info = infer_roles(cleaned)[0]
    assert info.role.value == "datetime"
    parsed = parse_datetime_column(raw, info.datetime_format)
    assert list(parsed[:2]) == [pd.Timestamp("2024-01-10 10:00", tz="UTC"), pd.Timestamp("2024-02-11 08:00", tz="UTC")]
    # as a forecasting time column the two are one value a day at 10:00 local: the local dates are kept
    frame = pd.DataFrame({"t": raw})
    assert list(setup.parse_time(frame, "t")[:2]) == [pd.Timestamp("2024-01-10 10:00"), pd.Timestamp("2024-02-11 10:00")]
    assert setup.time_offsets(frame, "t")[0] is True
    hours = pd.Series(["2024-01-10T11:00:00Z", "2024-02-11T10:00:00+02:00"] * 20)  # times of day differ: UTC
    assert list(setup.parse_time(pd.DataFrame({"t": hours}), "t")[:2]) == [pd.Timestamp("2024-01-10 11:00"),
                                                                         pd.Timestamp("2024-02-11 08:00")]


def test_tabular_run_with_mixed_offsets_says_utc_and_predicts_any_batch(daily) -> None:
    automl = AutoML(time_budget=30, max_trials=1, allowed_models="linear", ensembles=False, seed=0)
    automl.fit(daily, target="cnt")
    assert {c.name: c.role.value for c in automl.prepared_.columns}["date"] == "datetime"
    assert any("'date' mixes UTC offsets (+01:00, +02:00)" in n and "UTC" in n for n in automl.prepared_.notes)
    winter, summer = daily.iloc[[0, 1]], daily.iloc[[200, 201]]  # one offset per batch, and both together
    for batch in (winter, summer, pd.concat([winter, summer])):
        assert automl.predict(batch.drop(columns="cnt")).shape == (len(batch),)


def test_sub_daily_times_go_to_utc_on_a_regular_grid(hourly) -> None:
    parsed = setup.parse_time(hourly, "when")
    assert parsed.notna().all() and parsed.dt.tz is None
    assert (parsed.diff().dropna() == pd.Timedelta(hours=1)).mean() > 0.95  # UTC hours follow each other
    assert setup.time_offsets(hourly, "when") == (False, "time column 'when' mixes UTC offsets: converted to UTC "
                                                         "(offsets +01:00, +02:00, Z)")


def test_daily_forecast_keeps_local_dates_and_predicts_a_one_offset_batch(daily) -> None:
    automl = AutoML(task="forecasting", time_column="date", horizon=7, time_budget=30, max_trials=1, seed=0)
    automl.fit(daily.head(700), target="cnt")
    assert any("kept as local dates" in n for n in automl.prepared_.notes), automl.prepared_.notes
    assert automl.prepared_.freq == "D" and len(automl.prepared_.panel) == 700  # no gap inserted
    future = daily.iloc[700:707].drop(columns="cnt")  # December: +01:00 only
    assert pd.Series(automl.predict(future)).notna().all()


@pytest.mark.slow
def test_hourly_forecast_with_mixed_offsets_runs(hourly) -> None:
    automl = AutoML(task="forecasting", time_column="when", horizon=24, time_budget=40, max_trials=1, seed=0)
    automl.fit(hourly.head(2900), target="cnt")
    assert any("converted to UTC" in n for n in automl.prepared_.notes)
    assert pd.Series(automl.predict(hourly.iloc[2900:2924].drop(columns="cnt"))).notna().all()
