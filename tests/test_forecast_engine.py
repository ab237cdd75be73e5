"""Forecasting end to end from the command line on the shared sets: nyc_energy (hourly, horizon 48,
temp and precip exogenous, validation and test files) and oj_sales (9 weekly series); predict on new
rows; the saved model forecasting in a Python that cannot import this repository; bad input.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared_data import REPO, needs_data

pytestmark = needs_data


def cli(*args: str, store: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "automl_core", *args, "--store", str(store)] if args[0] == "train"
                          else [sys.executable, "-m", "automl_core", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def summary(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_nyc_energy_from_the_cli_with_validation_and_test_files(shared, tmp_path):
    out = tmp_path / "model"
    result = cli("train", str(shared / "nyc_energy_train.csv"), "--target", "demand", "--time-column", "timeStamp",
                 "--horizon", "48", "--validation-data", str(shared / "nyc_energy_validation.csv"),
                 "--test-data", str(shared / "nyc_energy_test.csv"), "--max-trials", "4", "--time-budget", "400",
                 "--out", str(out), "--json", store=tmp_path / "s.duckdb")
    s = summary(result)
    assert s["task"] == "forecasting" and s["metric"] == "normalized_root_mean_squared_error"
    assert "rolling-origin" in s["validation"] and s["n_trials"] >= 4
    lines = result.stdout
    assert "frequency h (seasonal period 24), 1 series, horizon 48" in lines
    assert "precip, temp" in lines and "trial   1 seasonal_naive" in lines
    card = json.loads((out / "model.json").read_text())
    assert card["test"]["n_rows"] == 48 and s["test_score"] is not None
    # the test's 48 hours, forecast from the end of training: better than repeating yesterday
    assert s["test_score"] < 0.12, s
    assert card["forecast"]["horizon"] == 48 and len(card["forecast"]["error_by_step"]) == 48

    preds = tmp_path / "p.csv"
    done = cli("predict", "--model", str(out / "model.joblib"), str(shared / "nyc_energy_test.csv"), "--out", str(preds),
               store=tmp_path / "s.duckdb")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(preds)
    test = pd.read_csv(shared / "nyc_energy_test.csv")
    assert len(got) == 48 and list(got["timeStamp"]) == list(test["timeStamp"])
    assert got["prediction"].notna().all()
    assert (got["prediction_lo_80"] < got["prediction"]).all() and (got["prediction"] < got["prediction_hi_95"]).all()
    assert (got["prediction_hi_95"] - got["prediction_lo_95"] > got["prediction_hi_80"] - got["prediction_lo_80"]).all()
    mape = float(np.mean(np.abs(got["prediction"] - test["demand"]) / test["demand"]))
    assert mape < 0.08, mape
    # rows in reverse order and without the target: the same forecast for each row's timestamp
    shuffled = tmp_path / "shuffled.csv"
    test.drop(columns="demand").iloc[::-1].to_csv(shuffled, index=False)
    again = cli("predict", "--model", str(out / "model.joblib"), str(shuffled), "--out", str(tmp_path / "q.csv"),
                store=tmp_path / "s.duckdb")
    assert again.returncode == 0, again.stderr
    np.testing.assert_allclose(pd.read_csv(tmp_path / "q.csv")["prediction"].to_numpy()[::-1], got["prediction"], rtol=1e-9)
    _forecast_in_fresh_python(out, got)


def _forecast_in_fresh_python(folder: Path, expected: pd.DataFrame) -> None:
    """The bundle loads with joblib alone and its models forecast without this repository."""
    script = textwrap.dedent("""
        import json, joblib, pandas as pd
        b = joblib.load("model.joblib")
        h = b["horizon"]
        future = []
        for uid, end in b["last_timestamp"].items():
            future.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(end, periods=h + 1, freq=b["freq"])[1:]}))
        X = pd.concat(future)
        test = pd.read_csv(%r, parse_dates=["timeStamp"]).rename(columns={"timeStamp": "ds"})
        X = X.merge(test[["ds", *b["future_columns"]]], on="ds", how="left")
        total = 0
        for name, model in b["models"].items():
            col = name.split("#")[0]
            stats = type(model).__name__ == "StatsForecast"
            pred = model.predict(h=h) if stats else model.predict(h=h, X_df=X[["unique_id", "ds", *b["x_columns"]]])
            total = total + b["weights"][name] * pred[col].to_numpy()
        try:
            import automl_core
            leaked = True
        except ImportError:
            leaked = False
        print(json.dumps({"forecast": [float(v) for v in total], "leaked": leaked}))
    """) % str(Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets")) / "nyc_energy_test.csv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-I", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["leaked"] is False
    np.testing.assert_allclose(np.clip(result["forecast"], 0, None), expected["prediction"], rtol=1e-6)


@pytest.mark.slow
def test_oj_sales_nine_weekly_series_from_the_cli(shared, tmp_path):
    out = tmp_path / "model"
    result = cli("train", str(shared / "oj_sales_train.csv"), "--target", "Quantity", "--time-column", "WeekStarting",
                 "--horizon", "8", "--series-id", "Store,Brand", "--metric", "mase", "--max-trials", "6",
                 "--time-budget", "400", "--out", str(out), "--json", store=tmp_path / "s.duckdb")
    s = summary(result)
    assert "9 series" in result.stdout and "57 missing timestamp(s) inserted" in result.stdout
    assert s["best_model"] in ("ensemble", "lgbm_lags", "linear_lags", "auto_ets", "auto_theta", "auto_arima", "naive")
    # better than the seasonal-naive forecast (MASE 1.0 by construction on the history)
    assert s["validation_score"] < 0.9, s
    board = subprocess.run([sys.executable, "-m", "automl_core", "show", s["experiment_id"], "--store",
                            str(tmp_path / "s.duckdb"), "--json"], cwd=REPO, capture_output=True, text=True)
    trials = json.loads(board.stdout)["trials"]
    families = {t["family"] for t in trials}
    assert {"seasonal_naive", "naive", "lgbm_lags"} <= families
    # the next 8 weeks of every series: rows after the end, with this week's price and advert
    train = pd.read_csv(shared / "oj_sales_train.csv", parse_dates=["WeekStarting"])
    last = train.sort_values("WeekStarting").groupby(["Store", "Brand"]).tail(1)
    future = pd.concat([last.assign(WeekStarting=last["WeekStarting"] + pd.Timedelta(weeks=k)) for k in range(1, 9)])
    future = future.drop(columns="Quantity")
    path = tmp_path / "future.csv"
    future.to_csv(path, index=False)
    done = subprocess.run([sys.executable, "-m", "automl_core", "predict", "--model", str(out / "model.joblib"), str(path),
                           "--out", str(tmp_path / "p.csv")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(tmp_path / "p.csv")
    assert len(got) == 72 and got["prediction"].notna().all() and (got["prediction"] >= 0).all()
    per_series = got.groupby(["Store", "Brand"])["prediction"].mean()
    history = train.groupby(["Store", "Brand"])["Quantity"].mean()
    ratio = (per_series / history).to_numpy()
    assert ((ratio > 0.2) & (ratio < 5)).all(), ratio  # each series forecast on its own scale


# --- bad input: one readable line, exit code 2 -------------------------------------------------

def _train_error(tmp_path: Path, csv: str, *args: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(csv)
    result = cli("train", str(path), "--target", "y", "--task", "forecasting", *args, store=tmp_path / "s.duckdb",
                 timeout=120)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_bad_time_column_is_one_clear_line(tmp_path):
    csv = "when,y\n" + "".join(f"2020-01-{d:02d},{d}\n" for d in range(1, 20)) + "soon,3\n"
    line = _train_error(tmp_path, csv, "--time-column", "when", "--horizon", "3")
    assert "not dates" in line and "'soon'" in line and "Fix:" in line


def test_horizon_longer_than_history_is_one_clear_line(tmp_path):
    csv = "when,y\n" + "".join(f"2020-01-{d:02d},{d}\n" for d in range(1, 20))
    line = _train_error(tmp_path, csv, "--time-column", "when", "--horizon", "30")
    assert "horizon (30 rows) is too long" in line and "Fix:" in line


def test_forecasting_without_time_column_is_one_clear_line(tmp_path):
    line = _train_error(tmp_path, "when,y\n2020-01-01,1\n2020-01-02,2\n", "--horizon", "3")
    assert "needs a time column and a horizon" in line and "--time-column" in line


def test_conflicting_duplicates_across_the_table_ask_for_series_ids(tmp_path):
    rows = "".join(f"2020-01-{d:02d},{d * k}\n" for d in range(1, 25) for k in (1, 2))
    line = _train_error(tmp_path, "when,y\n" + rows, "--time-column", "when", "--horizon", "3")
    assert "more than once with different targets" in line and "series id" in line


@pytest.mark.slow
def test_stop_ends_a_forecasting_search_and_keeps_its_best_model(shared):
    import threading

    from automl_core import AutoML

    stop = threading.Event()
    events: list[str] = []

    def listen(event) -> None:
        events.append(event.kind)
        if event.kind == "trial_finished":
            stop.set()  # as the Stop button does, while the next trials run

    automl = AutoML(task="forecasting", time_column="timeStamp", horizon=48, time_budget=600, seed=0)
    automl.fit(shared / "nyc_energy_validation.csv", target="demand", callbacks=[listen], stop_event=stop)
    assert automl.search_.stopped_by == "stopped by the user"
    assert events[0] == "experiment_started" and events[-1] == "experiment_finished" and "refit_started" in events
    finished = [t for t in automl.trials_ if t.status == "ok"]
    assert finished and len(automl.trials_) <= 3  # the running ones are cut off, none is started after Stop
    forecast = automl.predict(pd.read_csv(shared / "nyc_energy_validation.csv").tail(5))
    assert np.isnan(forecast).all()  # rows inside the history get no forecast


@pytest.mark.slow  # a fresh pool and six forecasting trials: ~40 s on the loaded 2 cores
def test_a_naive_forecast_trial_costs_its_own_seconds_not_the_libraries_imports(shared):
    """bike_share_daily: Naive and Seasonal naive trials took ~15 s each (3 of 10 trials in 60 s). The seconds
    were statsforecast's import in the trial, paid again after every lag-model trial because loky replaced each
    worker that grew by the libraries' 300 MB. The workers now import them once as they start."""
    from automl_core import AutoML
    df = pd.read_csv(shared / "bike_share_daily.csv").drop(columns=["casual", "registered"])
    automl = AutoML(task="forecasting", time_column="date", horizon=14, max_trials=6, time_budget=600, ensembles=False,
                    seed=0,
                    allowed_models=["naive", "seasonal_naive", "lgbm_lags", "linear_lags", "drift"])
    automl.fit(df, target="cnt")
    seconds = {(t.trial_id, t.family): t.fit_seconds for t in automl.trials_ if t.status == "ok"}
    assert len(seconds) >= 4 and {"naive", "seasonal_naive", "lgbm_lags"} <= {f for _, f in seconds}, seconds
    # a statsforecast import alone is 3.5 s on an idle core, mlforecast's more: neither may be in a cheap trial
    cheap = {k: s for k, s in seconds.items() if k[1] != "lgbm_lags"}
    assert max(cheap.values()) < 2.5, seconds


def test_the_choice_reads_only_trials_whose_forecasts_were_kept(shared):
    """A 60 s search on bike_share_daily finished over 40 trials once naive trials became cheap; the search keeps
    the validation forecasts of the best 40 only, and the choice looked up every finished trial's (KeyError)."""
    from automl_core import AutoML
    from automl_core.forecast import runner
    from automl_core.search.loop import Clock
    df = pd.read_csv(shared / "healthexp.csv")[["Year", "Country", "Life_Expectancy"]]
    automl = AutoML(task="forecasting", time_column="Year", series_id=["Country"], horizon=3, max_trials=4,
                    time_budget=600, seed=0, allowed_models=["naive", "drift", "auto_theta", "auto_ets"])
    automl.fit(df, target="Life_Expectancy")
    ok = [t for t in automl.trials_ if t.status == "ok" and t.family != "ensemble"]
    assert len(ok) == 4
    worst = max(ok, key=lambda t: automl.metric_.loss(t.score))
    scored = {i: f for i, f in automl.search_.oof.items() if i != worst.trial_id}  # as if it fell past the 40 kept
    best, members, weights = runner._choose(ok, scored, automl.metric_, True, lambda *a, **k: None, Clock(None),
                                            automl.prepared_)
    assert worst.trial_id not in weights and set(weights) <= set(scored)
    assert members and abs(sum(weights.values()) - 1) < 1e-9
