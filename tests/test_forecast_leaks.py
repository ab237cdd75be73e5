"""Forecasting's leak check (automl_core/forecast/leaks.py) on the shared sets: bike_share_daily's
casual and registered add up to the target, so they are used past-only with a note naming them and
the fix; oj_sales' and nyc_energy's drivers (price, adverts, temperature) stay known-in-future."""
from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from automl_core.cli import _config, _parser
from automl_core.config import AutoMLConfig
from automl_core.forecast.leaks import LEAK_NOTE, same_time_leaks
from automl_core.forecast.series import prepare_forecast
from shared_data import DATASETS, needs_data
from studio_fixtures import app, texts  # noqa: F401  (fixture)

pytestmark = needs_data


def config(**kw) -> AutoMLConfig:
    return AutoMLConfig(task="forecasting", time_budget=1, **kw)


def bike() -> pd.DataFrame:
    return pd.read_csv(DATASETS / "bike_share_daily.csv")


def test_parts_of_the_target_are_used_past_only_and_said():
    data = prepare_forecast(bike(), "cnt", config(time_column="date", horizon=14))
    assert set(data.past_columns) == {"casual", "registered"}
    assert not {"casual", "registered"} & set(data.future_columns) and "temp" in data.future_columns
    leak = [n for n in data.notes if n.startswith(LEAK_NOTE)]
    assert len(leak) == 1 and "casual" in leak[0] and "registered" in leak[0] and "--future-columns" in leak[0]
    # every kept column's role is named (the note used to stop at 10 columns)
    roles = " ".join(data.notes)
    assert all(c in roles for c in ("season", "windspeed", "casual", "registered", "instant"))


def test_the_user_can_vouch_for_future_values_or_exclude():
    df = bike()
    vouched = prepare_forecast(df, "cnt", config(time_column="date", horizon=14, future_columns=("casual", "registered")))
    assert {"casual", "registered"} <= set(vouched.future_columns) and not vouched.past_columns
    assert not any(n.startswith(LEAK_NOTE) for n in vouched.notes)
    gone = prepare_forecast(df, "cnt", config(time_column="date", horizon=14, exclude_columns=("casual", "registered")))
    assert not gone.past_columns and not any(n.startswith(LEAK_NOTE) for n in gone.notes)
    assert any("excluded by you: casual, registered" in n for n in gone.notes)


def test_a_rescaled_copy_of_the_target_is_caught_alone():
    df = bike()
    found, why = same_time_leaks(df["cnt"], pd.DataFrame({"temp": df["temp"], "cnt_k": df["cnt"] / 1000 + 0.01 * df["temp"]}))
    assert found == ["cnt_k"] and "correlation" in why


def test_ordinary_drivers_are_not_leaks():
    oj = prepare_forecast(pd.read_csv(DATASETS / "oj_sales_train.csv"), "Quantity",
                          config(time_column="WeekStarting", horizon=8, series_id=("Store", "Brand")))
    assert {"Advert", "Price"} <= set(oj.future_columns) and not oj.past_columns
    energy = prepare_forecast(pd.read_csv(DATASETS / "nyc_energy_train.csv"), "demand",
                              config(time_column="timeStamp", horizon=48))
    assert "temp" in energy.future_columns and not energy.past_columns
    for data in (oj, energy):
        assert not any(n.startswith(LEAK_NOTE) for n in data.notes)


def test_cli_passes_past_only_and_future_columns():
    args = _parser().parse_args(["train", "x.csv", "--target", "cnt", "--task", "forecasting",
                                 "--time-column", "date", "--horizon", "14", "--past-only", "temp,hum",
                                 "--future-columns", "casual"])
    c = _config(args)
    assert c.past_only_columns == ("temp", "hum") and c.future_columns == ("casual",)


def test_task_and_configure_pages_warn_and_take_the_override(app: AppTest) -> None:
    app.switch_page("pages/data.py").run()
    app.file_uploader(key="upload").set_value(("bike_share_daily.csv", (DATASETS / "bike_share_daily.csv").read_bytes(),
                                               "text/csv")).run()
    app.switch_page("pages/task.py").run()
    app.selectbox(key="target").select("cnt").run()
    app.selectbox(key="task").select("forecasting").run()
    app.selectbox(key="time_column").select("date").run()
    assert not app.exception, app.exception
    warned = " ".join(str(w.value) for w in app.warning)
    assert LEAK_NOTE in warned and "registered, casual" in warned and "--future-columns" in warned, texts(app)
    app.switch_page("pages/configure.py").run()
    assert not app.exception, app.exception
    assert any("Possible leak: registered, casual" in str(w.value) for w in app.warning), texts(app)
    app.multiselect(key="future_columns").set_value(["casual", "registered"]).run()
    assert not app.exception, app.exception
    assert not any("Possible leak" in str(w.value) for w in app.warning), texts(app)
    summary = dict(app.dataframe[-1].value.to_numpy().tolist())
    assert summary["Known-future columns"] == "casual, registered"

def test_trending_levels_are_no_leak_but_an_identity_with_a_slip_is():
    """statsmodels' macrodata: GDP, consumption, prices and population all trend together (level
    correlations >= 0.98) yet none gives the others away; realint = tbilrate - infl does, even with
    the one row where the published numbers disagree."""
    import statsmodels.api as sm
    m = sm.datasets.macrodata.load_pandas().data
    m["date"] = pd.to_datetime(m.year.astype(int).astype(str) + "-" + (3 * m.quarter.astype(int) - 2).astype(str) + "-01")
    m = m.drop(columns=["year", "quarter"])
    for target in ("realgdp", "cpi", "pop", "unemp"):
        assert not prepare_forecast(m, target, config(time_column="date", horizon=4)).past_columns, target
    data = prepare_forecast(m, "realint", config(time_column="date", horizon=4))
    assert set(data.past_columns) == {"infl", "tbilrate"}


def test_the_task_page_check_reads_the_data_pages_exclusions():
    from studio import forecast_settings
    found = forecast_settings.check(bike(), "cnt", "date", 14, (), None, None)
    assert set(found["leaks"]) == {"casual", "registered"}
    found = forecast_settings.check(bike(), "cnt", "date", 14, (), None, None, ("casual", "registered"))
    assert not found["leaks"] and any("excluded by you: casual, registered" in n for n in found["notes"])
