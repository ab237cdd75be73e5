"""Many models (issue #20, item 3): one forecasting model per partition, side by side, one artifact.

Real data: two stores of the oj_sales sample (3 brands each, weekly), partitioned by store.
"""
from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML, AutoMLConfig, AutoMLInputError
from automl_core.forecast.partition_bundle import next_horizon
from automl_core.forecast.partitions import MIN_SECONDS, partition_budget
from automl_core.prepare.tables import prepare
from shared_data import needs_data

SETTINGS = {"task": "forecasting", "time_column": "WeekStarting", "horizon": 8, "series_id": ("Store", "Brand"),
            "partition_by": ("Store",), "metric": "mase"}


def _two_stores(shared) -> pd.DataFrame:
    df = pd.read_csv(shared / "oj_sales_train.csv")
    return df[df["Store"].isin(sorted(df["Store"].unique())[:2])].reset_index(drop=True)


def _next_rows(automl: AutoML) -> pd.DataFrame:
    """The raw rows of the next horizon of every series (Store, Brand, WeekStarting and the prices)."""
    ahead = next_horizon(automl.model_)
    parts = ahead["unique_id"].str.split(" / ", expand=True)
    return pd.DataFrame({"WeekStarting": ahead["ds"].dt.strftime("%Y-%m-%d"), "Store": parts[0].astype(int),
                         "Brand": parts[1]})


def test_the_budget_is_shared_by_the_rounds_of_partitions_left():
    assert partition_budget(100.0, 3, 2) == pytest.approx(45.0)   # 3 unfinished, 2 side by side: two rounds
    assert partition_budget(50.0, 1, 2) == pytest.approx(45.0)    # the last partition gets what is left
    assert partition_budget(10.0, 40, 2) == MIN_SECONDS           # never less than the floor


@needs_data
def test_a_partition_column_not_in_the_data_is_refused(shared):
    df = _two_stores(shared)
    with pytest.raises(AutoMLInputError, match="partition column.*'Region' are not in the data") as err:
        prepare(df, "Quantity", AutoMLConfig(**{**SETTINGS, "partition_by": ("Region",)}, max_trials=2))
    assert "Fix:" in str(err.value)


@needs_data
@pytest.mark.slow
def test_partitions_on_a_dask_cluster_give_the_local_forecasts_and_one_routing_artifact(shared, tmp_path):
    distributed = pytest.importorskip("distributed")
    df = _two_stores(shared)
    settings = {**SETTINGS, "max_trials": 3, "time_budget": None, "seed": 0}
    local = AutoML(**settings).fit(df, target="Quantity")
    board = local.partitions_
    assert list(board["partition"]) == ["2", "5"] and (board["n_trials"] >= 3).all()  # 3 + an ensemble
    assert local.best_trial_.family == "many_models" and local.best_trial_.score > 0
    assert len(local.trials_) == 2 * 3 + 1 + int((local.leaderboard["model"] == "ensemble").sum())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            remote = AutoML(**settings, dask_scheduler=cluster.scheduler_address).fit(df, target="Quantity")
        ran = [t for t in stream.data if str(t.get("key", "")).startswith("fit_partition")]
    assert len(ran) == 2  # one task per partition, on the cluster
    rows = _next_rows(local)
    forecast = local.predict(rows)
    assert np.isfinite(forecast).all() and len(forecast) == 2 * 3 * 8
    np.testing.assert_allclose(remote.predict(rows), forecast, rtol=1e-9)
    assert list(remote.partitions_["best_model"]) == list(board["best_model"])

    # One artifact, loaded without the engine's objects: each row gets its own partition's forecast.
    local.save(tmp_path)
    saved = joblib.load(tmp_path / "model.joblib")
    assert saved["format"] == "automl-studio-forecast-partitioned/1" and set(saved["partitions"]) == {"2", "5"}
    from automl_core.forecast.bundle import forecast_table
    for store in ("2", "5"):
        mine = rows["Store"].astype(str).to_numpy() == store
        alone, _ = forecast_table(saved["partitions"][store], rows[mine])
        np.testing.assert_allclose(forecast[mine], alone["prediction"].to_numpy())

    # An unseen partition: no forecast and a note naming it; only unseen partitions: a clear error.
    from automl_core.forecast import predict_forecast
    mixed = pd.concat([rows.head(2), rows.head(2).assign(Store=999)], ignore_index=True)
    out = predict_forecast(saved, local.card_, mixed)
    assert np.isfinite(out["prediction"].iloc[:2]).all() and out["prediction"].iloc[2:].isna().all()
    assert any("999" in n and "no model" in n for n in out.attrs["notes"])
    with pytest.raises(AutoMLInputError, match="None of the rows belongs to a partition.*999"):
        predict_forecast(saved, local.card_, rows.head(2).assign(Store=999))
    with pytest.raises(AutoMLInputError, match="lacks the partition column"):
        predict_forecast(saved, local.card_, rows.drop(columns="Store"))
