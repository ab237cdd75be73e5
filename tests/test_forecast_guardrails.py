"""Forecasting's guardrails (automl_core/forecast/guardrails.py) on the shared series: bike_share_daily's
casual + registered leak entry, healthexp's gaps and short yearly series, oj_sales partitioned with
partitions that get no model, exact and conflicting duplicate timestamps, and Results showing them."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from automl_core.config import AutoMLConfig
from automl_core.forecast.guardrails import check_forecast, merge
from automl_core.forecast.partitions import prepare_partitions
from automl_core.forecast.series import prepare_forecast
from automl_core.forecast.windows import Folds
from shared_data import DATASETS, needs_data

pytestmark = needs_data


def config(**kw) -> AutoMLConfig:
    return AutoMLConfig(**{"task": "forecasting", "time_budget": 1, **kw})


def by_name(stored: dict) -> dict[str, dict]:
    return {g["name"]: g for g in [*stored["data"], *stored["model"]]}


def healthexp() -> pd.DataFrame:
    return pd.read_csv(DATASETS / "healthexp.csv")


def test_bike_parts_of_the_target_are_a_done_leak_entry_naming_them():
    data = prepare_forecast(pd.read_csv(DATASETS / "bike_share_daily.csv"), "cnt", config(time_column="date", horizon=14))
    checks = by_name(check_forecast(data, Folds(3, 14, 14, 8), [], None))
    leak = checks["Target leakage"]
    assert leak["status"] == "Done" and set(leak["columns"]) == {"casual", "registered"}
    assert "same time step" in leak["finding"] and "R²" in leak["finding"] and "past-only" in leak["action"]
    assert checks["Known-future columns"]["status"] == "Done" and "temp" in checks["Known-future columns"]["columns"]
    assert checks["Gaps and irregular timestamps"]["status"] == "Passed"  # 731 days, none missing
    assert "731 rows" in checks["Series length"]["finding"]
    # vouching for the columns' future values leaves nothing to flag
    vouched = prepare_forecast(pd.read_csv(DATASETS / "bike_share_daily.csv"), "cnt",
                               config(time_column="date", horizon=14, future_columns=("casual", "registered")))
    assert by_name(check_forecast(vouched, Folds(3, 14, 14, 8), [], None))["Target leakage"]["status"] == "Passed"


def test_healthexp_gaps_and_series_too_short_for_every_window():
    cfg = config(time_column="Year", horizon=5, series_id=("Country",))
    data = prepare_forecast(healthexp(), "Life_Expectancy", cfg)
    lengths = data.panel.groupby("unique_id").size()
    gaps = by_name(check_forecast(data, Folds(3, 5, 5, 6), [], None))["Gaps and irregular timestamps"]
    missing = int((~data.observed).sum())
    assert missing > 0 and f"{missing:,} of {len(data.panel):,} rows" in gaps["finding"]
    assert gaps["status"] in ("Done", "Alerted") and "never scored" in gaps["action"]
    worst = (~data.observed).groupby(data.panel["unique_id"].to_numpy()).sum().idxmax()
    assert f"most in {worst}" in gaps["finding"]
    # ten windows of five years need more history than the shortest country has: said, with who and how many
    folds = Folds(10, 5, 5, 6)
    entered = folds.windows_per_series(lengths)
    assert (entered < 10).any()
    series = by_name(check_forecast(data, folds, [], None))["Series length"]
    assert series["status"] == "Alerted" and "scored on fewer windows" in series["finding"]
    assert all(str(k) in series["finding"] for k in entered[entered < 10].index[:5])
    # a horizon longer than one country's history drops it, by name
    cut = healthexp()
    cut = cut[(cut["Country"] != "France") | (cut["Year"] >= 2014)]  # 7 years: fewer than h + 4
    dropped = prepare_forecast(cut, "Life_Expectancy", cfg)
    entry = by_name(check_forecast(dropped, Folds(3, 5, 5, 6), [], None))["Series length"]
    assert entry["status"] == "Alerted" and entry["columns"] == ["France"] and "dropped" in entry["finding"]


def test_the_baseline_and_a_fallback_refit_are_model_entries():
    from automl_core.search.results import TrialResult
    data = prepare_forecast(pd.read_csv(DATASETS / "bike_share_daily.csv"), "cnt", config(time_column="date", horizon=14))
    mase = data.metric.name == "mase"
    naive = TrialResult(1, "seasonal_naive", {}, "ok", 1.40 if mase else 0.21, {"mase": 1.40}, 0.1, 0.0, 0.0, 0.0, "", "")
    close = TrialResult(2, "auto_ets", {}, "ok", naive.score * 0.99, {"mase": 1.386}, 0.5, 0.0, 0.0, 0.0, "", "")
    better = TrialResult(3, "lgbm_lags", {}, "ok", naive.score * 0.6, {"mase": 0.84}, 0.5, 0.0, 0.0, 0.0, "", "")
    folds = Folds(3, 14, 14, 8)
    assert by_name(check_forecast(data, folds, [naive, close], close))["Against the simple baseline"]["status"] == "Alerted"
    checks = by_name(check_forecast(data, folds, [naive, better], better))
    assert checks["Against the simple baseline"]["status"] == "Passed" and "40% better" in checks["Against the simple baseline"]["finding"]
    assert checks["Final model"]["status"] == "Passed"
    data.facts["refit_fallback"] = "auto_arima"  # what the runner records when the refit overran the budget
    final = by_name(check_forecast(data, folds, [naive, better], better))["Final model"]
    assert final["status"] == "Alerted" and "AutoARIMA" in final["finding"] and "LightGBM" in final["finding"]


def test_duplicate_timestamps_exact_and_conflicting():
    df = pd.read_csv(DATASETS / "daily_min_temperatures.csv").head(400)
    target, time = df.columns[1], df.columns[0]
    twice = pd.concat([df, df.iloc[10:13]], ignore_index=True)  # three rows copied
    moved = df.iloc[[20]].assign(**{target: df[target].iloc[20] + 5})  # one day recorded twice, differently
    data = prepare_forecast(pd.concat([twice, moved], ignore_index=True), target, config(time_column=time, horizon=7))
    entry = by_name(check_forecast(data, Folds(3, 7, 7, 8), [], None))["Duplicate timestamps"]
    assert entry["status"] == "Done" and "3 exact duplicate" in entry["finding"]
    assert "1 timestamp(s) appear more than once" in entry["finding"] and "mean" in entry["finding"]


def test_oj_sales_partitions_without_a_model_are_alerted_and_the_rest_merged():
    oj = pd.read_csv(DATASETS / "oj_sales_train.csv")
    weeks = sorted(oj["WeekStarting"].unique())
    cut = oj[(oj["Store"] != 5) | oj["WeekStarting"].isin(weeks[:6])]  # store 5: six weeks, too few for h=8
    data = prepare_partitions(cut, "Quantity", config(time_column="WeekStarting", horizon=8, series_id=("Brand",),
                                                      partition_by=("Store",)))
    assert list(data.left_out) == ["5"] and set(data.parts) == {"2", "8"}
    per = {k: check_forecast(p, Folds(3, 8, 8, 53), [], None) for k, p in data.parts.items()}
    merged = by_name(merge(per, {"8": "RuntimeError: worker died"}, data.left_out))
    missing = merged["Partitions without a model"]
    assert missing["status"] == "Alerted" and missing["columns"] == ["5", "8"]
    assert "horizon" in missing["finding"] and "worker died" in missing["finding"] and "no forecast" in missing["action"]
    future = merged["Known-future columns"]
    assert future["status"] == "Done" and {"Advert", "Price"} <= set(future["columns"])
    assert merged["Target leakage"]["status"] == "Passed"


@pytest.mark.slow
def test_a_stored_run_keeps_them_and_results_shows_them(tmp_path, monkeypatch):
    """A short yearly panel (healthexp) through run_experiment: the card, the summary and guardrails.json
    hold them, the baseline entry matches the trials, and Results lists them."""
    from automl_core.experiment import run_experiment
    from storage import Store
    from studio_fixtures import open_experiment, texts
    store_path = tmp_path / "s.duckdb"
    store = Store(store_path)
    cfg = config(time_column="Year", horizon=5, series_id=("Country",), max_trials=4, time_budget=None,
                 allowed_models=("naive", "seasonal_naive", "drift", "auto_ets"), seed=0)
    outcome = run_experiment(store, healthexp(), "Life_Expectancy", cfg)
    try:
        exp = store.get_experiment(outcome.experiment_id)
        stored = exp["summary"]["guardrails"]
        on_disk = json.loads((store.artifact_dir(outcome.experiment_id) / "guardrails.json").read_text())
        events = store.events(outcome.experiment_id, limit=10_000)
    finally:
        store.close()
    assert on_disk == stored == outcome.automl.card_["guardrails"]
    checks = by_name(stored)
    # the data checks were stored as the search started (the live page shows them), the same as at the end
    started = events[events["kind"] == "experiment_started"]["payload"].iloc[0]["guardrails"]
    assert started["data"] == stored["data"] and started["model"] == []
    assert {"Target leakage", "Series length", "Gaps and irregular timestamps", "Duplicate timestamps",
            "Known-future columns", "Against the simple baseline"} <= set(checks)
    naive = next(t for t in outcome.automl.trials_ if t.family == "naive" and t.status == "ok")
    baseline = checks["Against the simple baseline"]
    if outcome.automl.best_trial_.family == "naive":
        assert baseline["status"] == "Done" and "Short yearly" in baseline["action"]
    else:
        assert f"{naive.score:.4g}" in baseline["finding"]
        if baseline["status"] == "Passed":  # yearly, ~50 rows: the caution the evidence asks for
            assert "short yearly" in baseline["action"]
    at = open_experiment(store_path, "results", outcome.experiment_id, monkeypatch)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Guardrails:" in " ".join(e.label for e in at.expander), [e.label for e in at.expander]
    for name in ("Series length", "Gaps and irregular timestamps", "Against the simple baseline"):
        assert name in shown, shown


@pytest.mark.slow
def test_a_partitioned_oj_sales_run_merges_its_partitions_checks():
    from automl_core import AutoML
    oj = pd.read_csv(DATASETS / "oj_sales_train.csv")
    weeks = sorted(oj["WeekStarting"].unique())
    cut = oj[(oj["Store"] != 5) | oj["WeekStarting"].isin(weeks[:6])]  # store 5 cannot be prepared
    automl = AutoML(task="forecasting", time_column="WeekStarting", horizon=8, series_id=("Brand",),
                    partition_by=("Store",), max_trials=2, time_budget=None, seed=0,
                    allowed_models=("seasonal_naive", "auto_ets")).fit(cut, target="Quantity")
    checks = by_name(automl.card_["guardrails"])
    assert checks["Partitions without a model"]["status"] == "Alerted"
    assert checks["Partitions without a model"]["columns"] == ["5"]
    baseline = checks["Against the simple baseline"]
    # each partition compared its own pick with its own seasonal-naive trial
    assert "partition 2" in baseline["finding"] or "In every partition" in baseline["finding"]
    assert "seasonal naive" in baseline["finding"]
