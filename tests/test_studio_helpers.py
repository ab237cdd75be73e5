"""Unit tests of the studio's plain helpers: status words, progress, leaderboards, settings round trip."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from automl_core.config import AutoMLConfig
from automl_core.errors import AutoMLInputError
from studio import live
from studio.estimates import default_budget, measured_rate, trials_hint
from studio.jobs import spec_from_experiment
from studio.settings import build_spec, summary_rows, wizard_from_experiment


def _trials() -> pd.DataFrame:
    return pd.DataFrame({
        "trial_id": [0, 1, 2, 3], "family": ["lightgbm", "linear", "knn", "random_forest"],
        "params": [{}, {}, {}, {}], "status": ["ok", "ok", "failed", "ok"], "score": [0.2, 0.1, None, 0.3],
        "fit_seconds": [1.0, 0.5, 0.0, 2.0], "predict_seconds": [0.1] * 4,
        "started_at": [0.0, 1.0, 2.0, 3.0], "finished_at": [1.0, 2.0, 3.0, 5.0],
        "error": ["", "", "boom", ""], "note": ["", "", "", ""], "accuracy": [0.9, 0.95, None, 0.8]})


def test_status_words_are_the_contract() -> None:
    assert {live.status_word(s) for s in ("queued", "running")} == {"Running"}
    assert [live.status_word(s) for s in ("completed", "stopped", "failed", "interrupted")] == \
        ["Completed", "Stopped", "Failed", "Interrupted"]


def test_leaderboard_follows_metric_direction() -> None:
    lower = live.leaderboard(_trials(), "log_loss")
    assert list(lower["trial_id"]) == [1, 0, 3] and list(lower["rank"]) == [1, 2, 3]
    higher = live.leaderboard(_trials(), "roc_auc")
    assert list(higher["trial_id"]) == [3, 0, 1]
    assert "accuracy" in higher.columns and "roc_auc" in higher.columns
    assert list(live.failed_trials(_trials())["reason"]) == ["boom"]
    assert "details" not in higher.columns  # no notes, no empty column
    noted = _trials().assign(family=["ensemble", "linear", "knn", "random_forest"],
                             note=["weighted average of 2 models", "", "", ""])
    board = live.leaderboard(noted, "log_loss")
    assert board.set_index("trial_id").loc[0, "model"] == "#0 Ensemble (Caruana selection)"  # with its trial number
    assert board.set_index("trial_id").loc[0, "details"] == "weighted average of 2 models"


def test_the_linear_family_is_named_for_the_task_it_ran() -> None:
    """A regression run's linear model is ridge or elastic net (what the family builds for it), never
    'logistic'; a classification run's is logistic regression; without a task, the general name."""
    from automl_core.models.families import FAMILIES
    from automl_core.prepare.schema import Task
    linear = FAMILIES["linear"]
    for params, task in (({"kind": "ridge"}, Task.REGRESSION), ({"kind": "elasticnet"}, Task.REGRESSION),
                         ({}, Task.BINARY), ({}, Task.MULTICLASS)):
        built = type(linear.build(params, task, 1, 0)).__name__.lower()  # ridge, elasticnet, logisticregression
        label = live.family_label("linear", task.value).lower().replace(" ", "").replace("/", " ")
        assert built.replace("regression", "") in label.replace("regression", ""), (built, label)
    regression = live.leaderboard(_trials(), "rmse", task="regression")
    assert regression.set_index("trial_id").loc[1, "model"] == "#1 Linear (ridge / elastic net)"
    assert "logistic" not in " ".join(live.failed_trials(_trials().assign(family="linear"), "regression")["model"])
    assert "logistic" not in " ".join(live.best_over_time(_trials(), "rmse", "regression")["model"])
    assert live.family_label("linear", "binary") == "Linear (logistic regression)"
    assert live.family_label("linear") == "Linear (logistic / ridge / elastic net)"
    assert live.family_label("lightgbm", "regression") == "LightGBM"


def test_best_over_time_is_monotone() -> None:
    points = live.best_over_time(_trials(), "roc_auc")
    assert list(points["best"]) == [0.2, 0.2, 0.3]
    assert live.leaderboard(pd.DataFrame(), "roc_auc").empty


def test_progress_uses_budget_and_trials() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    exp = {"status": "running", "started_at": start, "config": {"time_budget": 100, "max_trials": 10}}
    frac, text = live.progress(exp, 8, now=start + timedelta(seconds=30))
    assert frac == pytest.approx(0.8) and "30 s elapsed" in text and "2 trials left" in text
    done = {**exp, "status": "completed", "finished_at": start + timedelta(seconds=61)}
    assert live.progress(done, 8) == (1.0, "1 min 01 s in total")


def test_settings_round_trip_through_clone(tmp_path) -> None:
    w = {"dataset_id": "ds-1", "target": "y", "task": "auto", "task_effective": "binary", "metric": "accuracy",
         "time_budget": 45, "max_trials": 0, "validation_mode": "cv", "cv_folds": 4, "test_mode": "fraction",
         "test_pct": 20, "blocked_models": ["knn"], "exclude_columns": ["id", "y"], "positive_class": "yes",
         "featurization_mode": "custom", "featurization_columns": {"a": "ordinal", "b": "auto"}}
    spec = build_spec(w)
    c = spec.config
    assert (c.time_budget, c.max_trials, c.cv_folds, c.test_size) == (45, None, 4, 0.2)
    assert c.exclude_columns == ("id",) and c.featurization == {"a": "ordinal"} and c.positive_class == "yes"
    assert dict(summary_rows(spec, "binary", "accuracy"))["Validation"] == "4-fold cross-validation"
    # the summary names the metric as the metric box does, not by its id
    assert dict(summary_rows(spec, "regression", "normalized_root_mean_squared_error"))["Primary metric"] == "Normalized RMSE"
    from automl_core.experiment import create_record
    from storage import Store
    store = Store(tmp_path / "s.duckdb")
    exp = store.get_experiment(create_record(store, target=spec.target, config=spec.config, dataset_id="ds-1",
                                             name="run", extras=spec.studio_extras()))
    again = wizard_from_experiment(exp)
    assert build_spec({**again, "task_effective": "binary"}).config == c
    resumed = spec_from_experiment(exp, config_changes={"time_budget": 20.0}, resumed_from=exp["experiment_id"])
    assert resumed.config.time_budget == 20.0 and resumed.resumed_from == exp["experiment_id"]


def test_invalid_settings_raise_one_line_errors() -> None:
    with pytest.raises(AutoMLInputError, match="Fix:"):
        build_spec({"dataset_id": "ds-1", "target": "y", "time_budget": 0, "max_trials": 0})


def test_estimates_are_sane() -> None:
    assert default_budget(500, 10) == 60 and default_budget(1_000_000, 50) == 900
    # measured: 2 runs, 60 trials in 20 s of search -> 3 a second -> about 77 in a 30 s budget
    runs = [pd.DataFrame({"status": ["ok"] * 40, "finished_at": np.linspace(0.2, 12.0, 40)}),
            pd.DataFrame({"status": ["ok"] * 20 + ["failed"], "finished_at": np.linspace(0.1, 8.0, 21)})]
    rate = measured_rate(runs)
    assert rate is not None and rate[0] == pytest.approx(3.0) and rate[1] == 2
    assert trials_hint(30, rate).startswith("≈ 76 trials fit in 30 s") and "2 earlier run(s)" in trials_hint(30, rate)
    assert measured_rate([]) is None and "≈" not in trials_hint(30, None)  # no measurement: no number
    assert "fit in 30 s" in trials_hint(30, None)  # but the budget it was asked about


def test_forecast_windows_default_to_the_engines_choice():
    from studio import forecast_settings
    w = {"task": "forecasting", "forecast_time_column": "date", "horizon": 14, "forecast_folds": 0}
    assert forecast_settings.config_fields(w)["cv_folds"] is None
    assert forecast_settings.config_fields({**w, "forecast_folds": 6})["cv_folds"] == 6
    c = AutoMLConfig(task="forecasting", time_column="date", horizon=14)
    assert forecast_settings.wizard_fields(c)["forecast_folds"] == 0
    assert "an automatic number of window(s) of 14" in dict(forecast_settings.summary_rows(c))["Validation"]
    # bike_share_daily's 731 days at h=14: ten windows, as the engine will use
    assert "10 (automatic) window(s) of 14" in dict(forecast_settings.summary_rows(c, 731))["Validation"]
    # the trial estimate counts the windows: each trial fits one model per window
    assert forecast_settings.window_count({**w, "forecast_series_rows": 731}) == 10
    assert forecast_settings.window_count({**w, "forecast_folds": 4}) == 4
    # many models: the Configure field reaches the config and comes back on Clone
    parted = AutoMLConfig(task="forecasting", **forecast_settings.config_fields({**w, "partition_by": ["Store"]}))
    assert parted.partition_by == ("Store",) and forecast_settings.wizard_fields(parted)["partition_by"] == ["Store"]
    assert dict(forecast_settings.summary_rows(parted))["Many models"] == "one model per partition of Store"
    assert forecast_settings.partition_options(["date", "y", "Store"], {**w, "target": "y"}) == ["Store"]


def _events(rows: list[tuple[str, dict, float]], now: datetime) -> pd.DataFrame:
    """Events newest first (as Store.events returns them); seconds are how long ago each was written."""
    rows = list(reversed(rows))
    return pd.DataFrame({"kind": [k for k, _, _ in rows], "payload": [p for _, p, _ in rows],
                         "created_at": [now - timedelta(seconds=ago) for _, _, ago in rows]})


def test_after_the_search_the_live_view_names_the_stage_with_its_own_time_left() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    searching = [("trial_finished", {}, 30.0)]
    refit = searching + [("refit_started", {"family": "ensemble", "members": [3, 7], "estimate_seconds": 8.0}, 2.0)]
    explaining = refit + [("explaining_started", {"budget_seconds": 3.0}, 1.0),
                          ("explaining_progress", {"fraction": 0.4, "text": "SHAP values of member 2 of 5"}, 0.5)]
    assert live.stage(_events(searching, now), now) is None
    stage = live.stage(_events(refit, now), now)
    assert stage.name == "refit" and "ensemble's 2 models" in stage.title
    assert live.stage_progress(stage) == (0.25, "Refitting the ensemble's 2 models on all training rows · 2 s of about 8 s · about 6 s left")
    stage = live.stage(_events(explaining, now), now)
    fraction, text = live.stage_progress(stage)
    assert stage.name == "explaining" and fraction == pytest.approx(0.4)
    assert text == "Explaining the model: SHAP values of member 2 of 5 · 1 s of at most 3 s · about 2 s left"
    done = explaining + [("explaining_finished", {"method": "weighted member SHAP", "seconds": 2.9}, 0.0)]
    assert live.stage(_events(done, now), now) is None
    # the progress ticks drive the bar, not the list of recent events
    lines = live.events_frame(_events(done, now).assign(elapsed=0.0, trial_id=None))["event"].tolist()
    assert lines[0].startswith("Explained in 3 s: weighted member SHAP") and not any("SHAP values of" in e for e in lines)


def test_resume_continues_with_what_the_run_had_not_used() -> None:
    from studio.jobs import MIN_RESUME_SECONDS, resume_plan

    trials = pd.DataFrame({"finished_at": [3.0, 12.5, None]})
    assert resume_plan({"config": {"time_budget": 60.0}}, trials) == ({"time_budget": 47.5}, "48 s")
    # a run interrupted near its end still gets a useful amount of time
    assert resume_plan({"config": {"time_budget": 20.0}}, trials)[0] == {"time_budget": MIN_RESUME_SECONDS}
    # a trial count continues from the trials already finished; nothing finished: the whole budget
    assert resume_plan({"config": {"max_trials": 10}, "n_trials": 4}, trials) == ({"max_trials": 6}, "6 trials")
    assert resume_plan({"config": {"time_budget": 60.0}}, pd.DataFrame({"finished_at": []}))[0] == {"time_budget": 60.0}


def test_long_model_names_keep_their_words_in_the_live_chart_and_tiles() -> None:
    """The walk saw "Histogram gradier" in the best-score legend (entries cut at half its width) and
    "#8 Stackin…" in the Best model tile: legend entries are as wide as their names, tile values wrap."""
    from studio.charts import best_score_chart
    from studio import nav
    import inspect
    trials = _trials().assign(family=["hist_gradient_boosting", "stacking", "knn", "random_forest"])
    fig = best_score_chart(live.best_over_time(trials, "roc_auc"), "roc_auc")
    assert "Histogram gradient boosting" in {t.name for t in fig.data}
    assert fig.layout.legend.entrywidth is None and fig.layout.legend.entrywidthmode is None
    assert '[data-testid="stMetricValue"] .stMarkdownEllipsis' in inspect.getsource(nav.step_header)


def test_event_lines_name_models_as_the_runs_task_has_them() -> None:
    # The walk of a regression run read "New best: Linear (logistic / ridge / elastic net)" under a
    # leaderboard that said "Linear (ridge / elastic net)".
    events = pd.DataFrame({"kind": ["new_best", "trial_started"], "elapsed": [3.0, 1.0], "trial_id": [1, None],
                           "payload": [{"family": "linear", "score": 1.6}, {"trial_id": 1, "family": "linear"}]})
    lines = live.events_frame(events, task="regression")["event"].tolist()
    assert lines == ["New best: Linear (ridge / elastic net) scored 1.6", "Trial 1 started: Linear (ridge / elastic net)"]
    refit = pd.DataFrame({"kind": ["refit_started"], "created_at": [pd.Timestamp.now(tz="UTC")],
                          "payload": [{"family": "linear"}]})
    assert "logistic" not in live.stage(refit, task="regression").title


def test_history_names_the_best_model_by_its_task() -> None:
    from studio.history import history_table

    history = pd.DataFrame({"experiment_id": ["e1", "e2"], "name": ["a", "b"], "dataset_id": ["d", "d"],
                            "dataset_name": ["t.csv", "t.csv"], "task": ["regression", "binary"],
                            "metric": ["rmse", "roc_auc"], "best_score": [1.0, 0.9], "test_score": [None, None],
                            "best_model": ["linear", "linear"], "n_trials": [3, 3], "status": ["completed"] * 2,
                            "created_at": pd.to_datetime(["2026-12-07 10:00", "2026-12-07 11:00"])})
    assert history_table(history)["best model"].tolist() == ["Linear (ridge / elastic net)", "Linear (logistic regression)"]
    # and says how each run ended next to its name (the walk found the status scrolled out of sight at 1280 px)
    assert list(history_table(history).columns[:2]) == ["name", "status"]


def test_a_table_run_says_it_is_preparing_the_data_before_its_first_trial() -> None:
    # 6,433 taxi rows with two date columns spent 15 s featurizing under load while the live page counted
    # the 25 s budget down with no trial and no word of what was happening.
    from sklearn.datasets import load_diabetes

    from automl_core import AutoML

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    seen: list = []
    AutoML(time_budget=10, max_trials=1, seed=0).fit(X.assign(y=y).head(120), target="y", callbacks=[seen.append])
    kinds = [e.kind for e in seen]
    assert kinds.index("featurizing_started") < kinds.index("experiment_started")
    payload = seen[kinds.index("featurizing_started")].payload
    now = pd.Timestamp.now(tz="UTC")
    events = pd.DataFrame({"kind": ["featurizing_started"], "created_at": [now - pd.Timedelta(seconds=4)],
                           "payload": [payload]})
    fraction, text = live.stage_progress(live.stage(events, now.to_pydatetime()))
    assert text == "Preparing the data: featurizing the validation folds (120 rows × 10 columns)"
    assert live.describe_event("featurizing_started", payload, None) == text


def test_a_resumed_runs_re_run_of_an_earlier_trial_says_so() -> None:
    # The walk resumed an interrupted run: its one new trial, #5, re-ran #1's settings and sat beside it
    # in the leaderboard with the same score and nothing to tell them apart.
    trials = _trials().assign(params=[{"a": 1}, {"kind": "ridge"}, {}, {"n": 5}])
    again = trials.iloc[[1]].assign(trial_id=5, score=0.1, note="")
    board = live.leaderboard(pd.concat([trials, again], ignore_index=True), "log_loss")
    details = dict(zip(board["trial_id"], board["details"]))
    assert details[5] == "same settings as #1" and details[1] == "" and details[0] == ""
    assert list(board.columns[:4]) == ["rank", "model", "log_loss", "details"]  # in sight, not past every metric
    assert "details" not in live.leaderboard(trials, "log_loss").columns  # nothing repeated: no column


def test_the_summary_names_the_models_short_and_by_task() -> None:
    # The walk's Configure summary read "LightGBM, Linear (logistic / ridge / e…" for a regression: the whole
    # list of families ran off its cell and named a logistic model.
    base = {"dataset_id": "d", "target": "y", "task": "regression", "metric": "rmse", "time_budget": 25}
    rows = dict(summary_rows(build_spec(base), "regression", "rmse"))
    assert rows["Models"] == "all"
    rows = dict(summary_rows(build_spec({**base, "blocked_models": ["knn"]}), "regression", "rmse"))
    assert rows["Models"].startswith("all but ") and "logistic" not in rows["Models"]
    rows = dict(summary_rows(build_spec({**base, "allowed_models": ["linear", "lightgbm"]}), "regression", "rmse"))
    assert rows["Models"] == "Linear (ridge / elastic net), LightGBM"
    assert trials_hint(30, (1 / 30, 1)).startswith("≈ 1 trial fits in 30 s")


def test_the_best_score_axis_stays_at_or_above_zero_for_scores_that_cannot_go_below() -> None:
    # The walk's penguins run showed its one log loss of 0.036 on an axis from -0.5 to 1.
    from studio.charts import best_score_chart

    one = _trials().head(1).assign(score=[0.036])
    assert best_score_chart(live.best_over_time(one, "log_loss"), "log_loss").layout.yaxis.rangemode == "nonnegative"
    negative = _trials().head(2).assign(score=[-0.2, 0.3])  # an R² can be below zero: the axis must show it
    assert best_score_chart(live.best_over_time(negative, "r2_score"), "r2_score").layout.yaxis.rangemode is None


def test_an_unexpected_page_error_reaches_the_server_log(caplog) -> None:
    # The walk saw "Something went wrong on this page" once as a run finished; the server's log had nothing.
    from studio.state import friendly

    def page() -> None:
        raise ZeroDivisionError("walk")

    with caplog.at_level("ERROR", logger="studio"):
        friendly(page)
    assert any(r.name == "studio" and r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def test_the_live_page_says_the_trial_workers_are_starting() -> None:
    # After "Started", a busy machine spent 10-12 s starting the trial processes with nothing on the page.
    now = pd.Timestamp.now(tz="UTC")
    events = pd.DataFrame({"kind": ["workers_starting", "experiment_started"],
                           "created_at": [now - pd.Timedelta(seconds=3), now - pd.Timedelta(seconds=4)],
                           "payload": [{"workers": 2}, {}]})
    fraction, text = live.stage_progress(live.stage(events, now.to_pydatetime()))
    assert text.startswith("Starting the trial workers: 2 Python processes loading")
    later = pd.concat([pd.DataFrame({"kind": ["trial_started"], "created_at": [now], "payload": [{}]}), events])
    assert live.stage(later, now.to_pydatetime()) is None


def test_a_slow_worker_start_is_announced_once(monkeypatch) -> None:
    import time as _time
    from concurrent.futures import Future

    from automl_core.search import loop

    class SlowPool(loop.LocalPool):  # workers that need 1.5 s to come up
        def __init__(self) -> None:
            pass

        def submit(self, fn, *args):
            f: Future = Future()
            import threading
            threading.Timer(1.5, f.set_result, [None]).start()
            return f

    said = []
    monkeypatch.setattr(loop, "WARM_NOTICE_SECONDS", 0.3)
    t = _time.perf_counter()
    loop._warm(SlowPool(), 2, "unused", __import__("threading").Event(), loop.TABULAR,
               lambda kind, **p: said.append((kind, p)))
    assert said == [("workers_starting", {"workers": 2})] and _time.perf_counter() - t >= 1.4


def test_an_instant_refit_does_not_read_zero_seconds_of_about_zero() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    refit = [("trial_finished", {}, 3.0), ("refit_started", {"family": "lightgbm", "members": [], "estimate_seconds": 0.2}, 0.1)]
    fraction, text = live.stage_progress(live.stage(_events(refit, now), now))
    assert "of about" not in text and " 0 s" not in text and text.startswith("Refitting")


def test_a_label_set_in_brackets_has_no_brackets_of_its_own() -> None:
    from automl_core.models.families import unnest

    assert unnest("LightGBM (lags (1..24))") == "LightGBM, lags, 1..24"
    assert unnest("LightGBM on lags (global)") == "LightGBM on lags, global" and unnest("XGBoost") == "XGBoost"
    now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    refit = [("trial_finished", {}, 3.0), ("refit_started", {"family": "linear", "members": [], "estimate_seconds": 4.0}, 1.0)]
    stage = live.stage(_events(refit, now), now, task="binary")
    assert "))" not in stage.title and "the best model (Linear, " in stage.title
