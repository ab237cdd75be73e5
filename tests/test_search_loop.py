"""The one search loop: every exit criterion means the same for tables and for forecasting.

Both tasks run through ``search.loop.run_search``; only the scheduler and the worker-side evaluator
differ. Each case runs a real search on a small real set and reads why it stopped.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.search import loop

pytestmark = pytest.mark.slow  # whole (small) searches


def _task(kind: str, shared) -> tuple[pd.DataFrame, str, dict]:
    if kind == "tabular":
        return pd.read_csv(shared / "iris.csv"), "target", {"metric": "accuracy"}
    df = pd.read_csv(shared / "fred_retail_S4248SM144SCEN.csv")
    # Fast families only: the criteria, not the models, are under test.
    return df, "S4248SM144SCEN", {"task": "forecasting", "time_column": "observation_date", "horizon": 12,
                                  "metric": "mase", "cv_folds": 3,
                                  "allowed_models": ("seasonal_naive", "naive", "drift", "linear_lags", "lgbm_lags")}


KINDS = ["tabular", "forecasting"]


@pytest.mark.parametrize("kind", KINDS)
def test_max_trials_runs_exactly_that_many(kind, shared):
    df, target, settings = _task(kind, shared)
    automl = AutoML(**settings, max_trials=4, time_budget=None, ensembles=False, seed=0).fit(df, target=target)
    assert automl.search_.stopped_by == "4 trials done"
    assert [t.trial_id for t in automl.search_.trials] == [1, 2, 3, 4]


@pytest.mark.parametrize("kind", KINDS)
def test_score_threshold_ends_the_search_once_reached(kind, shared):
    df, target, settings = _task(kind, shared)
    # Every model reaches these (accuracy >= 0.5 on iris; MASE <= 50 on monthly retail sales).
    threshold = 0.5 if kind == "tabular" else 50.0
    automl = AutoML(**settings, score_threshold=threshold, time_budget=120, ensembles=False, seed=0,
                    max_concurrent_trials=1).fit(df, target=target)
    assert automl.search_.stopped_by == f"score threshold {threshold} reached"
    assert len(automl.search_.trials) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_early_stop_after_trials_without_improvement(kind, shared):
    df, target, settings = _task(kind, shared)
    automl = AutoML(**settings, early_stop_trials=2, max_trials=40, time_budget=None, ensembles=False,
                    seed=0, max_concurrent_trials=1).fit(df, target=target)
    trials = automl.search_.trials
    assert automl.search_.stopped_by == "no improvement in 2 trials"
    assert len(trials) < 40
    best = automl.search_.best.trial_id
    assert [t.trial_id for t in trials if t.trial_id > best] == [best + 1, best + 2]


@pytest.mark.parametrize("kind", KINDS)
def test_trial_timeout_ends_that_trial_only(kind, shared, monkeypatch):
    """A trial past the per-trial limit is recorded as timed out; its worker is killed and the
    search goes on with new workers."""
    df, target, settings = _task(kind, shared)
    caller = "automl_core.forecast.runner" if kind == "forecasting" else "automl_core.automl"
    real = loop.run_search

    def first_trial_hangs(**kwargs):
        inner = kwargs["evaluator"].run if "evaluator" in kwargs else loop.TABULAR.run
        load = kwargs["evaluator"].load if "evaluator" in kwargs else loop.TABULAR.load

        def run(spec, *data):  # pickled by value (cloudpickle) into the worker
            if spec.trial_id == 1:
                time.sleep(600)
            return inner(spec, *data)

        return real(**{**kwargs, "evaluator": loop.Evaluator(run, load)})

    monkeypatch.setattr(f"{caller}.run_search", first_trial_hangs)
    automl = AutoML(**settings, max_trials=3, time_budget=None, trial_timeout=20, ensembles=False, seed=0,
                    max_concurrent_trials=1).fit(df, target=target)
    statuses = [(t.trial_id, t.status) for t in automl.search_.trials]
    assert statuses == [(1, "timeout"), (2, "ok"), (3, "ok")], automl.search_.trials
    assert "per-trial time limit" in automl.search_.trials[0].error


def test_forecasting_trials_run_on_a_dask_local_cluster_with_the_same_results(shared):
    distributed = pytest.importorskip("distributed")
    df, target, settings = _task("forecasting", shared)
    local = AutoML(**settings, max_trials=4, time_budget=None, seed=0).fit(df, target=target)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            remote = AutoML(**settings, max_trials=4, time_budget=None, seed=0,
                            dask_scheduler=cluster.scheduler_address).fit(df, target=target)
        ran = [t for t in stream.data if str(t.get("key", "")).startswith("run_trial")]
    assert len(ran) == 4
    assert [(t.family, t.score) for t in remote.trials_] == [(t.family, t.score) for t in local.trials_]
    last = pd.Timestamp(df["observation_date"].iloc[-1])
    future = pd.DataFrame({"observation_date": pd.date_range(last, periods=13, freq="MS")[1:]})
    forecast = local.predict(future)
    assert np.isfinite(forecast).all()
    assert remote.predict(future).tolist() == pytest.approx(forecast.tolist())


@pytest.mark.parametrize("kind", KINDS)
def test_a_budget_gone_before_any_model_still_ends_with_one(kind, shared, monkeypatch):
    """Preparation alone takes longer than this budget: the search runs on for the grace period rather
    than ending in 'No trial finished', and says so."""
    monkeypatch.setattr(loop, "GRACE_MIN_SECONDS", 120.0)  # a first trial of a loaded 2-core machine fits
    df, target, settings = _task(kind, shared)
    events = []
    automl = AutoML(**settings, time_budget=0.2, ensembles=False, seed=0).fit(df, target=target,
                                                                              callbacks=[events.append])
    assert automl.search_.best is not None and automl.search_.best.status == "ok"
    messages = [e.payload.get("text", "") for e in events if e.kind == "message"]
    assert any("ran out before any model finished" in m for m in messages), messages
