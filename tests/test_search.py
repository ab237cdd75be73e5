"""The search: ensembles, parallel and reproducible trials, cost control, stopping, Dask scale-out."""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import StackingClassifier, VotingClassifier

from automl_core import AutoML, AutoMLConfig, AutoMLInputError
from automl_core import automl as automl_module
from automl_core.search.ensemble import stack_features
from automl_core.search.finalize import FinalChoice, fit_final, label_order, member_predictions
from automl_core.models.families import FAMILIES, load_portfolio, select_families
from automl_core.search.scheduler import Scheduler
from automl_core.prepare.schema import Task


def test_scheduler_skips_warm_starts_that_do_not_fit_the_time_left():
    families = select_families(None, (), 1000)
    portfolio = load_portfolio()["classification"]
    scheduler = Scheduler(families, Task.BINARY, portfolio, seed=0, deterministic=False)
    n_warm = len(scheduler.warm)
    first = scheduler.warm[0][0]
    family, params = scheduler.next(1, fits=lambda f: f != first)
    assert family != first and family in FAMILIES and params
    assert len(scheduler.warm) < n_warm - 1  # the too-slow warm start was dropped, not just postponed
    assert scheduler.next(2, fits=lambda f: False) == (None, None)


def test_first_lightgbm_trial_is_the_library_default_and_beats_the_mined_one_on_tiny_data():
    """Issue 25: the mined first LightGBM configuration (min_child_samples 92) cannot split a fold of
    wine's 118 rows, so a short search without LightGBM's own defaults lost to one plain LGBMClassifier()."""
    import lightgbm as lgb
    from sklearn.datasets import load_wine
    keys = ("learning_rate", "num_leaves", "min_child_samples", "subsample", "colsample_bytree")
    library = lgb.LGBMClassifier().get_params()
    automl = AutoML(task="multiclass", metric="log_loss", max_trials=2, time_budget=None, seed=0, ensembles=False,
                    cv_folds=3, allowed_models=["lightgbm"]).fit(load_wine(as_frame=True).frame, "target")
    first, second = sorted(automl.trials_, key=lambda t: t.trial_id)
    assert {k: first.params[k] for k in keys} == {k: library[k] for k in keys}
    assert second.params["min_child_samples"] == load_portfolio()["classification"]["lightgbm"][0]["min_child_samples"]
    assert first.score < 0.5 * second.score  # log loss: the default splits, the mined one barely can


def test_max_concurrent_trials_is_validated():
    with pytest.raises(AutoMLInputError, match="max_concurrent_trials"):
        AutoMLConfig(max_concurrent_trials=0)
    with pytest.raises(AutoMLInputError, match="dask_scheduler"):
        AutoMLConfig(dask_scheduler="localhost")


@pytest.mark.slow
def test_ensembles_are_rows_of_their_own_and_saved_as_scikit_learn_estimators(shared):
    df = pd.read_csv(shared / "breast_cancer_wisconsin.csv")
    train, test = df.iloc[:450], df.iloc[450:]
    automl = AutoML(max_trials=14, time_budget=None, seed=0).fit(train, target="target", test_data=test)
    board = automl.leaderboard
    kinds = {k: board[board["model"] == k].iloc[0] for k in ("ensemble", "stacking")}
    singles = board[~board["model"].isin(["ensemble", "stacking"])]
    assert len(singles) == 14
    for row in kinds.values():
        assert set(row["params"]["members"]) <= set(singles["trial_id"])
        assert row["status"] == "ok" and np.isfinite(row["score"])
    weights = kinds["ensemble"]["params"]["weights"]
    assert sum(weights) == pytest.approx(1.0, abs=1e-3) and len(weights) >= 2

    trials = automl.trials_
    by_id = {t.trial_id: t for t in trials}
    plan = automl.validation_
    val_rows = np.concatenate([v for _, v in plan.splits])
    p = automl.prepared_
    y_oof = p.codes(p.y)[val_rows]
    order = label_order(p.classes, p.y)
    oof = automl.search_.oof
    X_test = test.drop(columns="target")
    for kind, estimator_type in (("ensemble", VotingClassifier), ("stacking", StackingClassifier)):
        row = by_id[int(kinds[kind]["trial_id"])]
        members = [by_id[m] for m in row.params["members"]]
        choice = FinalChoice(row, members, list(row.params.get("weights", [])))
        pipeline, saved = fit_final(automl._refit_data, choice, oof, y_oof, order, threads=1, seed=0)
        assert saved is choice
        model = pipeline.named_steps["model"]
        assert isinstance(model, estimator_type)
        proba = pipeline.predict_proba(X_test)
        parts = member_predictions(pipeline, X_test, p.classes)
        assert sorted(parts) == sorted(f"trial_{m.trial_id}" for m in members)
        stacked = [parts[f"trial_{m.trial_id}"] for m in members]
        if kind == "ensemble":  # a weighted average of the members, weights as on the leaderboard
            expected = np.tensordot(np.array(choice.weights), np.stack(stacked), axes=1)
        else:  # the learner fit on out-of-fold predictions, applied to the members' predictions
            assert model.final_estimator_.n_features_in_ == len(members)  # binary: one column per member
            expected = model.final_estimator_.predict_proba(stack_features(stacked, p.task, order))
        np.testing.assert_allclose(proba, expected, atol=1e-9)

    # no time left, not even for the first member (it is checked too): no member is fit, the best single
    # model is saved, and the note says why
    row = by_id[int(kinds["ensemble"]["trial_id"])]
    choice = FinalChoice(row, [by_id[m] for m in row.params["members"]], list(row.params["weights"]))
    best = automl.search_.best
    pipeline, saved = fit_final(automl._refit_data, choice, oof, y_oof, order, threads=1, seed=0, best=best,
                                cost=automl._cost, seconds_left=0.0)
    assert saved.row is best and not saved.members and "time left" in saved.note and "1 of" not in saved.note
    assert not isinstance(pipeline.named_steps["model"], VotingClassifier)
    alone, _ = fit_final(automl._refit_data, FinalChoice(best), oof, y_oof, order, threads=1, seed=0)
    np.testing.assert_allclose(pipeline.predict_proba(X_test), alone.predict_proba(X_test), atol=1e-9)
    # stacking with no time left: its best member is saved, refit the same way as on its own
    row = by_id[int(kinds["stacking"]["trial_id"])]
    choice = FinalChoice(row, [by_id[m] for m in row.params["members"]])
    pipeline, saved = fit_final(automl._refit_data, choice, oof, y_oof, order, threads=1, seed=0, best=choice.members[0],
                                cost=automl._cost, seconds_left=0.0)
    assert saved.row is choice.members[0] and "time left" in saved.note and "1 of" not in saved.note
    alone, _ = fit_final(automl._refit_data, FinalChoice(choice.members[0]), oof, y_oof, order, threads=1, seed=0)
    assert [name for name, _ in pipeline.steps] == [name for name, _ in alone.steps]
    np.testing.assert_allclose(pipeline.predict_proba(X_test), alone.predict_proba(X_test), atol=1e-9)


@pytest.mark.slow
def test_fixed_seed_and_trial_count_give_the_same_leaderboard_with_parallel_trials(shared):
    df = pd.read_csv(shared / "german_credit.csv")

    def board():
        automl = AutoML(max_trials=10, time_budget=None, seed=5, max_concurrent_trials=2).fit(df, target="class")
        return automl.leaderboard[["trial_id", "model", "score", "params"]].astype({"params": str})

    first, second = board(), board()
    assert len(first) >= 10
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.slow
def test_two_concurrent_trials_complete_more_trials_than_one(shared):
    df = pd.read_csv(shared / "breast_cancer_wisconsin.csv")
    counts = {}
    for n in (1, 2):
        automl = AutoML(time_budget=15, seed=0, max_concurrent_trials=n, ensembles=False).fit(df, target="target")
        counts[n] = len(automl.search_.trials)
    assert counts[2] > counts[1], counts


@pytest.mark.slow
def test_large_folds_start_with_low_fidelity_trials(shared, monkeypatch):
    monkeypatch.setattr(automl_module, "LOW_FIDELITY_ROWS", 1500)
    df = pd.read_csv(shared / "bank_marketing_train.csv").sample(4000, random_state=0)
    automl = AutoML(max_trials=12, time_budget=None, seed=0).fit(df, target="y")
    trials = automl.search_.trials
    sampled = [t for t in trials if t.note.startswith("fit on a")]
    assert sampled and len(sampled) < len(trials)  # the warm starts on a sample, then full data
    assert all("row sample" in t.note for t in sampled)
    assert automl.best_trial_.note == "" or automl.best_trial_.family in ("ensemble", "stacking")


@pytest.mark.slow
def test_stop_ends_running_trials_at_once(shared, monkeypatch):
    monkeypatch.setenv("AUTOML_EXTRA_FAMILIES", "fault_families")
    import fault_families
    fault_families.register(FAMILIES)
    try:
        df = pd.read_csv(shared / "breast_cancer_wisconsin.csv")
        stop, stopped_at, ended_at = threading.Event(), [], []

        def on_event(event):
            if event.kind == "trial_finished" and event.trial.family == "linear" and not stop.is_set():
                stopped_at.append(time.perf_counter())
                stop.set()  # the "hangs" trial (a 600 s sleep) is running on the other worker
            if event.kind == "refit_started":
                ended_at.append(time.perf_counter())

        automl = AutoML(time_budget=120, seed=0, n_jobs=2, allowed_models=("hangs", "linear")).fit(
            df, target="target", callbacks=[on_event], stop_event=stop)
    finally:
        for name in ("raises", "crashes", "hangs"):
            FAMILIES.pop(name, None)
    assert automl.search_.stopped_by == "stopped by the user"
    assert ended_at[0] - stopped_at[0] < 10  # the target is 2 s (bench/); the hung trial would take 600
    assert automl.best_trial_.family == "linear"


@pytest.mark.slow
def test_whole_search_runs_on_a_dask_local_cluster(shared):
    distributed = pytest.importorskip("distributed")
    df = pd.read_csv(shared / "breast_cancer_wisconsin.csv")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            automl = AutoML(time_budget=25, seed=0, dask_scheduler=cluster.scheduler_address).fit(df, target="target")
        ran = [t for t in stream.data if str(t.get("key", "")).startswith("run_trial")]
    finished = [t for t in automl.search_.trials if t.status == "ok"]
    assert len(finished) >= 3
    assert len(ran) >= len(finished)
    assert automl.best_trial_.score > 0.98
    assert automl.predict(df.drop(columns="target").head(3)).shape == (3,)


@pytest.mark.slow
def test_unreachable_dask_scheduler_is_one_clear_line(shared):
    pytest.importorskip("distributed")
    df = pd.read_csv(shared / "iris.csv")
    with pytest.raises(AutoMLInputError, match="Could not reach the Dask scheduler"):
        AutoML(time_budget=5, dask_scheduler="tcp://127.0.0.1:9").fit(df, target="target")


@pytest.mark.slow
def test_large_data_searches_on_a_sample_and_refits_on_every_row(shared, monkeypatch):
    from automl_core.search import data as search_data
    monkeypatch.setattr(search_data, "MAX_SEARCH_ROWS", 2000)
    df = pd.read_csv(shared / "bank_marketing_train.csv").sample(6000, random_state=0)
    automl = AutoML(max_trials=6, time_budget=None, seed=0).fit(df, target="y")
    assert any("random sample of 2,000 of the 6,000 training rows" in n for n in automl.card_["notes"]), \
        automl.card_["notes"]
    rows = automl.predictions_["validation"].rows
    assert len(rows) == len(np.unique(rows)) and rows.max() < 6000
    labels = automl.predictions_["validation"].labels_true
    np.testing.assert_array_equal(labels, df["y"].to_numpy()[rows])  # rows point into the training table
    assert len(automl._refit_data.X) == 6000  # the saved model is fit on every row, not the sample


def test_a_family_never_measured_is_expected_to_cost_what_finished_trials_did_scaled_by_its_cost() -> None:
    """An unmeasured family once counted as 0 s, so XGBoost started with 1-2 s left before the reserve on a
    20 s budget and was killed. Now it is expected to take the finished trials' seconds per unit of relative
    cost times its own (bank_marketing's first trials: linear 0.3 s, LightGBM 1.0 s, CatBoost 3.7 s)."""
    from automl_core.search.loop import expected_seconds
    from automl_core.search.results import TrialResult

    cost = {"linear": 0.5, "lightgbm": 1.0, "catboost": 4.0, "xgboost": 2.0}.__getitem__
    done = [TrialResult(1, "linear", {}, "ok", 0.93, fit_seconds=0.3), TrialResult(2, "lightgbm", {}, "ok", 0.95, fit_seconds=1.0),
            TrialResult(4, "catboost", {}, "ok", 0.94, fit_seconds=3.7),
            TrialResult(5, "lightgbm", {}, "timeout", None, fit_seconds=0.0)]
    assert expected_seconds(None, "xgboost", done, cost) == pytest.approx(2 * 0.925)  # median of 0.6, 1.0, 0.925
    assert expected_seconds(4.2, "xgboost", done, cost) == 4.2  # its own measure wins
    assert expected_seconds(None, "xgboost", [], cost) == 0.0  # nothing measured yet: the grace rules apply
