"""The studio's forecasting wizard (AppTest): oj_sales (9 weekly series) from upload to a forecast
chart per series and a downloadable forecast of the next horizon; nyc_energy's hourly setup; bad
forecasting input shown as one message with the fix."""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from shared_data import DATASETS, needs_data
from studio_fixtures import app, status_word, texts, wait_for  # noqa: F401  (fixture)

pytestmark = needs_data


def no_crash(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert "Something went wrong" not in texts(at), texts(at)


def upload(at: AppTest, name: str) -> None:
    at.switch_page("pages/data.py").run()
    at.file_uploader(key="upload").set_value((name, (DATASETS / name).read_bytes(), "text/csv")).run()
    no_crash(at)


def forecasting_task(at: AppTest, target: str, time_column: str, horizon: int, series: list[str] = ()) -> None:
    at.switch_page("pages/task.py").run()
    at.selectbox(key="target").select(target).run()
    at.selectbox(key="task").select("forecasting").run()
    at.selectbox(key="time_column").select(time_column).run()
    at.number_input(key="horizon").set_value(horizon).run()
    if series:
        at.multiselect(key="series_id").set_value(list(series)).run()
    no_crash(at)


def test_hourly_setup_is_read_and_explained(app: AppTest) -> None:
    upload(app, "nyc_energy_validation.csv")
    forecasting_task(app, "demand", "timeStamp", 48)
    shown = texts(app)
    assert "1 series · frequency h (seasonal period 24)" in shown, shown
    assert "precip, temp" in shown and "not supported" not in shown
    app.selectbox(key="country").select("US").run()
    no_crash(app)
    app.switch_page("pages/configure.py").run()
    no_crash(app)
    summary = dict(app.dataframe[-1].value.to_numpy().tolist())
    assert summary["Horizon"] == "48 step(s)" and summary["Holidays"] == "US"
    assert summary["Validation"].startswith("rolling origin: 3 (automatic) window(s) of 48")
    assert [r for r in app.radio if r.key == "test_mode"][0].options == ["None", "Test file (the rows right after the training data)"]
    # many models: any column but the target and the time may partition the run
    assert [m for m in app.multiselect if m.key == "partition_by"][0].options == ["precip", "temp"]


@pytest.mark.parametrize("time_column, words", [("Brand", "are not dates"), ("WeekStarting", "")])
def test_bad_forecasting_setup_is_one_message_with_the_fix(app: AppTest, time_column: str, words: str) -> None:
    upload(app, "oj_sales_train.csv")
    forecasting_task(app, "Quantity", time_column, 8)
    if words:
        assert app.error and words in app.error[0].value and "Fix:" in app.error[0].value
        app.switch_page("pages/configure.py").run()
        assert app.warning and "not ready" in app.warning[0].value
        return
    # without the series ids the 9 series look like one with conflicting duplicates: ask for them
    assert app.error and "several series: name the series id" in app.error[0].value
    app.number_input(key="horizon").set_value(500).run()
    app.multiselect(key="series_id").set_value(["Store", "Brand"]).run()
    assert app.error and "horizon (500 rows) is too long" in app.error[0].value


@pytest.mark.slow
def test_oj_sales_through_the_wizard_to_a_forecast(app: AppTest) -> None:
    upload(app, "oj_sales_train.csv")
    forecasting_task(app, "Quantity", "WeekStarting", 8, ["Store", "Brand"])
    assert "9 series · frequency W-THU" in texts(app)
    app.switch_page("pages/configure.py").run()
    app.selectbox(key="metric").select("mase").run()
    app.number_input(key="max_trials").set_value(4).run()
    app.number_input(key="time_budget").set_value(300).run()
    app.button(key="start_training").click().run()
    no_crash(app)
    app.switch_page("pages/train.py").run()
    wait_for(app, lambda a: status_word(a) in ("Completed", "Stopped", "Failed"), timeout=400, every=2)
    no_crash(app)
    assert status_word(app) == "Completed", texts(app)

    app.switch_page("pages/results.py").run()
    no_crash(app)
    assert "Frequency W-THU · horizon 8 · 9 series" in texts(app)
    series = app.selectbox(key="forecast_series")
    assert len(series.options) == 9
    series.select(series.options[4]).run()
    no_crash(app)
    charts = [c for c in app.get("plotly_chart")]
    assert len(charts) >= 2
    assert app.radio(key="forecast_step_metric").options == ["MAE", "sMAPE", "MASE"]  # names, not ids
    # the next 8 weeks after the latest data (the Predict step): the whole history uploaded again,
    # with 9 series x 8 rows out
    app.switch_page("pages/predict.py").run()
    no_crash(app)
    data = (DATASETS / "oj_sales_train.csv").read_bytes()
    app.file_uploader(key="predict_upload").set_value(("latest.csv", data, "text/csv")).run()
    no_crash(app)
    table = app.dataframe[-1].value
    assert len(table) == 72 and table["prediction"].notna().all() and (table["prediction"] >= 0).all()
    assert {"prediction_lo_80", "prediction_hi_95", "step"} <= set(table.columns)
    assert any(b.key == "download_predictions" for b in app.get("download_button"))
