"""What a newcomer tripped over in a walk through the studio (issue 21): CLI-made experiments,
ID columns, disguised missing values, state across reloads, and the texts and tables around them.

Each test runs on its own store (conftest's ``private_store``) with small real samples.
"""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from automl_core.search.results import TrialResult

from studio_fixtures import app, texts  # noqa: F401  (fixture)


def no_crash(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert "Something went wrong" not in texts(at), texts(at)


def _cli_experiment(store, name: str = "cli run", score: float = 0.2, summary: dict | None = None) -> str:
    """An experiment as the command line records it: no dataset in the store."""
    config = {"task": "auto", "metric": "auto", "time_budget": 10.0, "target": "y"}
    experiment_id = store.create_experiment(name, dataset_id=None, task="regression", metric="rmse", config=config)
    store.set_status(experiment_id, "running")
    store.add_trial(experiment_id, TrialResult(1, "linear", {"alpha": 1.0}, "ok", score, {"rmse": score},
                                               0.1, 0.01, 1.0, 2.0))
    store.finish_experiment(experiment_id, status="completed", best_trial_id=1, best_model="linear",
                            best_score=score, test_score=None, model_path=None, summary=summary or {})
    return experiment_id


# --- item 2: experiments made by the CLI ---------------------------------------------------------

def test_experiments_page_with_cli_made_experiments(app: AppTest) -> None:
    from studio.state import get_store

    store = get_store()
    _cli_experiment(store, "first", 0.3)
    _cli_experiment(store, "second", 0.2)
    app.switch_page("pages/experiments.py").run()
    no_crash(app)
    table = app.dataframe[0].value
    assert "None" not in table["dataset"].astype(str).tolist()
    assert set(table["dataset"]) == {"command line"}
    # both CLI regression runs are comparable: one chart over them
    assert app.selectbox(key="compare_dataset").value is not None
    assert app.selectbox(key="compare_dataset").format_func(app.selectbox(key="compare_dataset").value) == \
        "command line · regression"
    assert len(app.get("plotly_chart")) == 1
    # the bars are told apart by start time (two wizard runs share a name) and the header says which way is better
    assert "**Best RMSE per experiment** (lower is better)" in texts(app)
    import json
    bars = json.loads(app.get("plotly_chart")[0].proto.spec)["data"][0]["x"]
    assert all(" · " in label for label in bars), bars


def test_experiments_page_lets_a_person_choose_which_runs_to_compare(app: AppTest) -> None:
    import json
    from studio.state import get_store

    store = get_store()
    ids = [_cli_experiment(store, name, score) for name, score in (("a", 0.3), ("b", 0.2), ("c", 0.25))]
    app.switch_page("pages/experiments.py").run()
    no_crash(app)
    pick = app.multiselect(key="compare_experiments_cli:regression")
    assert set(pick.value) == set(ids)  # every run of the dataset to start with (fewer than COMPARE_FIRST)
    bars = lambda: json.loads(app.get("plotly_chart")[0].proto.spec)["data"][0]["x"]  # noqa: E731
    assert len(bars()) == 3
    pick.set_value([ids[0]]).run()
    assert not app.get("plotly_chart") and "Choose at least two experiments to compare them." in texts(app)
    app.multiselect(key="compare_experiments_cli:regression").set_value([ids[0], ids[2]]).run()
    no_crash(app)
    assert len(bars()) == 2 and {b.split(" · ")[0] for b in bars()} == {"a", "c"}


# --- item 4: one reading of disguised missing values ----------------------------------------------

def test_profile_roles_and_preview_agree_on_missing_values(app: AppTest) -> None:
    from shared_data import DATASETS

    app.file_uploader(key="upload").set_value(("penguins.csv", (DATASETS / "penguins.csv").read_bytes(),
                                               "text/csv")).run()
    no_crash(app)
    profile = app.dataframe[0].value.set_index("column")
    n_rows = 344
    assert profile.loc["sex", "missing %"] == pytest.approx(100 * 11 / n_rows, abs=0.01)  # 'NA' x11
    assert "NA (" not in profile.loc["sex", "top values"]
    assert "sex 11" in texts(app)  # the caption says the missing % counts 'NA' texts
    from studio.state import get_store
    meta = get_store().get_dataset(app.session_state["wizard"]["dataset_id"])
    reason = next(  # the "Why" of Columns and roles
        c["reason"] for c in meta["columns"] if c["name"] == "sex")
    assert "11 missing" in reason and "'NA' x11" in reason
    # no table shows Python's None for a missing value
    assert all(d.proto.placeholder == "—" for d in app.dataframe)
    assert "None" not in profile["mean"].astype(str).tolist()


# --- item 9: the wizard's choices survive a reload and follow the person -----------------------------

def _links(at: AppTest) -> list[str]:
    return [e.proto.label for e in at.get("page_link")]


def test_reload_on_task_keeps_the_dataset_and_target(app: AppTest) -> None:
    from studio_fixtures import APP

    app.switch_page("pages/data.py").run()
    app.selectbox(key="sample_dataset").select("Iris flowers (multiclass classification)").run()
    app.switch_page("pages/task.py").run()
    no_crash(app)
    assert app.selectbox(key="target").value == "target"
    params = {k: app.query_params[k] for k in app.query_params}
    assert params["dataset"] == app.session_state["wizard"]["dataset_id"] and params["target"] == "target"
    # a reload is a new session with the same URL
    fresh = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        fresh.query_params[k] = v
    fresh.run()
    fresh.switch_page("pages/task.py").run()
    no_crash(fresh)
    assert "Choose a dataset first" not in texts(fresh)
    assert fresh.selectbox(key="target").value == "target"
    assert any(link.startswith("✓ Data") for link in _links(fresh))
    # a reload on Configure keeps them too, and says where the task is confirmed (not "not ready")
    again = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        again.query_params[k] = v
    again.run()
    again.switch_page("pages/configure.py").run()
    no_crash(again)
    assert "are kept" in texts(again) and "not ready" not in texts(again)


def test_a_new_sample_does_not_show_the_old_ticks(app: AppTest) -> None:
    from studio.state import get_store

    app.switch_page("pages/data.py").run()
    app.selectbox(key="sample_dataset").select("Iris flowers (multiclass classification)").run()
    experiment_id = _cli_experiment(get_store())
    app.session_state["wizard"]["target"] = "target"
    app.session_state["wizard"]["experiment_id"] = experiment_id
    app.run()
    assert "✓ Train" in _links(app)
    app.selectbox(key="sample_dataset").select("Breast cancer (binary classification)").run()
    no_crash(app)
    assert [link for link in _links(app) if link.startswith("✓")] == [], _links(app)  # Data is current: ▶


def test_experiment_chosen_on_results_is_the_one_on_predict(app: AppTest) -> None:
    from studio.state import get_store

    store = get_store()
    older = _cli_experiment(store, "older", 0.3)
    _cli_experiment(store, "newer", 0.2)
    app.switch_page("pages/results.py").run()
    app.selectbox(key="results_experiment").select(older).run()
    # the step bar's link to Predict carries it (a browser drops the URL's parameters between pages)
    link = next(e.proto for e in app.get("page_link") if e.proto.label.endswith("Predict"))
    assert f"experiment={older}" in link.query_string
    app.query_params.clear()
    app.switch_page("pages/predict.py").run()
    assert app.selectbox(key="predict_experiment").value == older


# --- item 7: Configure says what it can know -------------------------------------------------------

def test_configure_estimate_is_measured_and_expert_settings_are_folded(app: AppTest) -> None:
    from studio.state import get_store

    app.switch_page("pages/data.py").run()
    app.selectbox(key="sample_dataset").select("Iris flowers (multiclass classification)").run()
    app.switch_page("pages/task.py").run()
    app.switch_page("pages/configure.py").run()
    no_crash(app)
    assert "≈" not in texts(app)  # no run on this dataset yet: no made-up number
    assert app.selectbox(key="metric").format_func(app.selectbox(key="metric").value) == "Log loss"
    assert texts(app).count("is better") == 1 and "(lower is better)" not in texts(app)
    advanced = next(e for e in app.expander if e.label == "Advanced")
    assert {w.key for w in advanced.text_input} == {"dask_scheduler"}
    assert {w.key for w in advanced.number_input} == {"max_concurrent_trials", "seed"}
    # an earlier run on the dataset: 30 trials in 10 s of search
    store = get_store()
    dataset_id = app.session_state["wizard"]["dataset_id"]
    old = store.create_experiment("earlier", dataset_id=dataset_id, task="multiclass", metric="log_loss", config={})
    store.set_status(old, "running")
    for i in range(1, 31):
        store.add_trial(old, TrialResult(i, "linear", {}, "ok", 0.2, {"log_loss": 0.2}, 0.1, 0.01, i / 3 - 0.3, i / 3))
    store.finish_experiment(old, status="completed", best_trial_id=1, best_model="linear", best_score=0.2,
                            test_score=None, model_path=None, summary={})
    app.number_input(key="time_budget").set_value(60).run()
    assert "≈ 153 trials fit in 60 s" in texts(app), texts(app)


# --- items 5-6: comparing models ------------------------------------------------------------------

@pytest.fixture
def titanic_run(private_store):
    """A finished binary experiment on titanic (a handful of trials), recorded as the studio does."""
    from automl_core.config import AutoMLConfig
    from automl_core.experiment import run_experiment
    from shared_data import DATASETS
    from studio.state import get_store

    store = get_store()
    df = pd.read_csv(DATASETS / "titanic.csv")
    dataset_id = store.add_dataset("titanic.csv", df)
    config = AutoMLConfig(task="binary", time_budget=120, max_trials=4, seed=0, n_jobs=1, ensembles=False)
    outcome = run_experiment(store, df, "Survived", config, dataset_id=dataset_id, name="titanic")
    assert outcome.status == "completed", outcome.error
    return outcome.experiment_id


@pytest.mark.slow
def test_results_compare_models_by_one_name(app: AppTest, titanic_run: str) -> None:
    from studio.state import get_store

    app.switch_page("pages/results.py").run()
    no_crash(app)
    trials = get_store().trials(titanic_run)
    board = app.dataframe[0].value
    best = board.iloc[0]
    assert best["model"].startswith(f"#{int(best['trial_id'])} ")  # the trial number goes with the rank
    # the comparison table: full width, best first, readable metric names, sensible precision
    table = next(d for d in app.dataframe if "model" in d.value.columns and "fit s" in d.value.columns).value
    assert table["model"].iloc[0].startswith(f"#{int(best['trial_id'])} ")
    assert "ROC AUC" in table.columns and "roc_auc" not in table.columns
    assert all(len(v.split(".")[-1]) <= 4 for v in table["ROC AUC"])
    # one small chart per metric, and ROC / PR curves of the selected models overlaid
    panels = next(c for c in app.get("plotly_chart") if c.proto.id and "compare_chart" in c.proto.id)
    import json
    figure = json.loads(panels.proto.spec)
    from automl_core.models.metrics import METRICS
    n_metrics = len([c for c in trials.columns if c in METRICS])
    titles = [a["text"] for a in figure["layout"]["annotations"]]  # one panel, with its own axis, per metric
    assert len(titles) == n_metrics and "ROC AUC" in titles
    roc = next(c for c in app.get("plotly_chart") if "compare_roc" in c.proto.id)
    names = {t["name"].split(" (")[0] for t in json.loads(roc.proto.spec)["data"] if t.get("name") != "chance"}
    assert len(names) >= 2 and all(n.startswith("#") for n in names)
    # the explanations' caption is a sentence ("Explained by tree SHAP ..."), not a lowercase "tree SHAP ..."
    assert any(str(c.value).startswith("Explained by ") for c in app.caption), [c.value for c in app.caption]
    # hyperparameters as a table, not a JSON tree
    assert not app.json
    assert any(list(d.value.columns) == ["parameter", "value"] for d in app.dataframe)
    # the tile says ROC AUC at four decimals
    tile = next(m for m in app.metric if m.label.startswith("Validation"))
    assert tile.label == "Validation ROC AUC" and len(tile.value.split(".")[-1]) == 4

    # Predict: short tiles, and the table a person downloads has the page's column order
    from shared_data import DATASETS
    from studio.scoring import predictions_first

    app.switch_page("pages/predict.py").run()
    no_crash(app)
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Model"].startswith("#") and "(" not in tiles["Model"] and tiles["Predicts (binary)"] == "Survived"
    new = pd.read_csv(DATASETS / "titanic.csv").drop(columns=["Survived"]).head(20)
    app.file_uploader(key="predict_upload").set_value(("new.csv", new.to_csv(index=False).encode(), "text/csv")).run()
    no_crash(app)
    shown = app.dataframe[-1].value
    assert list(shown.columns)[0] == "prediction" and list(shown.columns)[-len(new.columns):] == list(new.columns)
    scored = pd.concat([new, shown.drop(columns=list(new.columns))], axis=1)  # as _scored builds it: inputs first
    assert list(predictions_first(scored, new.columns).columns) == list(shown.columns)


# --- item 8: the training code of an ensemble's member -------------------------------------------

@pytest.mark.slow
def test_training_code_of_an_ensemble_member() -> None:
    """The Training-code tab said "view a member model's code" with no way to pick one: each member of
    a saved ensemble gets its own train.py, with its family, hyperparameters and validation score."""
    from automl_core import AutoML
    from automl_core.export.codegen import generate, member_model
    from automl_core.errors import AutoMLInputError
    from shared_data import DATASETS

    df = pd.read_csv(DATASETS / "titanic.csv")
    automl = AutoML(task="binary", time_budget=60, max_trials=4, allowed_models="lightgbm,linear", seed=0,
                    n_jobs=1).fit(df, target="Survived")
    card = automl.card_
    if not card.get("members"):
        pytest.skip("the search's best model is not an ensemble this time")
    with pytest.raises(AutoMLInputError):
        generate(automl.model_, card)
    for member in card["members"]:
        model, member_card = member_model(automl.model_, card, member["trial_id"])
        assert member_card["best_model"] == member["family"] and not member_card["members"]
        assert list(model.predict(df.drop(columns=["Survived"]).head(5))) is not None
        code = generate(model, member_card)
        assert f"Recorded validation {card['metric']}: {member['validation_score']}" in code.train_py
    with pytest.raises(AutoMLInputError, match="not a member"):
        member_model(automl.model_, card, 999)


# --- item 8: forecasting on Results and Predict ------------------------------------------------------

FRED = "fred_retail_S4248SM144SCEN.csv"


@pytest.fixture
def forecast_run(private_store):
    """A finished forecasting experiment on the FRED retail series (two trials), with its model saved."""
    from automl_core.config import AutoMLConfig
    from automl_core.experiment import run_experiment
    from shared_data import DATASETS
    from studio.state import get_store

    store = get_store()
    df = pd.read_csv(DATASETS / FRED)
    dataset_id = store.add_dataset(FRED, df)
    config = AutoMLConfig(task="forecasting", time_column="observation_date", horizon=6, max_trials=2,
                          time_budget=120, seed=0, n_jobs=1)
    outcome = run_experiment(store, df, "S4248SM144SCEN", config, dataset_id=dataset_id, name="fred")
    assert outcome.status == "completed", outcome.error
    return outcome.experiment_id


@pytest.mark.slow
def test_forecast_predict_draws_the_next_horizon(app: AppTest, forecast_run: str) -> None:
    import json

    from shared_data import DATASETS

    app.switch_page("pages/results.py").run()
    no_crash(app)
    words = texts(app)
    assert "appear here once the data has been checked" not in words and "Against the simple baseline" in words  # its own guardrails (issue 20)
    chart = next(c for c in app.get("plotly_chart") if "forecast_chart" in c.proto.id)
    figure = json.loads(chart.proto.spec)
    last = max(max(t["x"]) for t in figure["data"] if t.get("x"))
    assert figure["layout"]["xaxis"]["range"][1] > last  # the last forecast point is not cut in half

    app.switch_page("pages/predict.py").run()
    no_crash(app)
    words = texts(app)
    assert "model.json's usage" not in words and "the chart above" not in words
    assert any("predict_forecast_chart" in c.proto.id for c in app.get("plotly_chart"))  # before any upload
    # ... with its numbers and a download, not only a chart (the walk found no way to get them)
    ahead = app.dataframe[-1].value
    assert len(ahead) == 6 and {"prediction", "prediction_lo_95", "prediction_hi_95"} <= set(ahead.columns)
    assert any("download_predictions" in b.proto.id for b in app.get("download_button"))
    app.file_uploader(key="predict_upload").set_value(("latest.csv", (DATASETS / FRED).read_bytes(),
                                                       "text/csv")).run()
    no_crash(app)
    assert any("predict_forecast_chart" in c.proto.id for c in app.get("plotly_chart"))  # an upload is drawn too
    assert len(app.dataframe[-1].value) == 6


# --- item 10: small layouts --------------------------------------------------------------------------

def test_train_chart_legend_sits_below_and_events_get_the_width() -> None:
    from studio import live
    from studio.charts import best_score_chart

    points = pd.DataFrame({"seconds": [1.0, 2.0, 3.0, 4.0], "score": [0.5, 0.4, 0.45, 0.3],
                           "best": [0.5, 0.4, 0.4, 0.3], "trial_id": [1, 2, 3, 4],
                           "model": ["LightGBM", "Linear (logistic / ridge / elastic net)", "Random forest", "Extra trees"]})
    figure = best_score_chart(points, "log_loss")
    assert "Linear" in [t.name for t in figure.data]  # short names: a long one took a legend row of its own
    legend = figure.layout.legend
    assert legend.y < 0 and legend.yanchor == "top"  # below the plot, not over it
    assert live.EVENT_COLUMNS["event"]["width"] == "large" and live.EVENT_COLUMNS["at"]["width"] < 100


def test_score_charts_name_the_metric_in_words_and_an_empty_one_says_why() -> None:
    from studio.charts import best_score_chart, score_vs_time_chart

    points = pd.DataFrame({"seconds": [1.0, 2.0], "score": [3.0, 2.5], "best": [3.0, 2.5], "trial_id": [1, 2],
                           "model": ["LightGBM", "Random forest"]})
    assert best_score_chart(points, "rmse").layout.yaxis.title.text == "RMSE"  # not the id "rmse"
    board = pd.DataFrame({"trial_id": [1, 2], "fit_seconds": [0.5, 1.0], "roc_auc": [0.8, 0.9], "model": ["a", "b"]})
    assert score_vs_time_chart(board, "roc_auc", [1]).layout.yaxis.title.text == "ROC AUC"
    empty = best_score_chart(points.iloc[:0], "rmse")  # before the first trial: no bare -1..4 axis
    assert empty.layout.yaxis.visible is False and "first finished trial" in empty.layout.annotations[0].text


def test_train_and_results_leaderboards_title_metric_columns_in_words() -> None:
    from studio import live

    board = pd.DataFrame({"rank": [1], "model": ["#1 LightGBM"], "rmse": [1.42],
                          "normalized_root_mean_squared_error": [0.01], "fit_seconds": [2.0], "trial_id": [1]})
    config = live.leaderboard_columns(board)
    # the Train page showed the ids ("rmse", "normalized_root_mean_squared_error") as column titles
    assert config["rmse"]["label"] == "RMSE" and config["normalized_root_mean_squared_error"]["label"] == "Normalized RMSE"
    assert "Lower is better" in config["rmse"]["help"] and config["fit_seconds"]["label"] == "fit s"
    import pathlib
    pages = pathlib.Path(__file__).resolve().parents[1] / "pages"
    for page in ("train.py", "results.py"):  # one helper for both leaderboards
        assert "live.leaderboard_columns(board)" in (pages / page).read_text()


def test_results_says_why_the_saved_model_is_not_the_top_row(app: AppTest) -> None:
    from studio.state import get_store

    note = ("the ensemble (caruana selection) scored better, but refitting its members would have taken "
            "longer than the time left; the best single model was saved")
    experiment_id = _cli_experiment(get_store(), "cut short", 0.3, summary={"choice_note": note})
    app.switch_page("pages/results.py").run()
    app.query_params["experiment"] = experiment_id
    app.run()
    no_crash(app)
    # german_credit: "Best model LightGBM 0.8052" above a leaderboard led by an ensemble at 0.8123, unexplained
    assert f"Why this model: {note}." in texts(app)


def test_error_by_step_chart_names_the_metric() -> None:
    from studio.forecast_charts import error_by_step_chart

    rows = [{"step": 1, "mae": 3.0, "smape": 10.0, "mase": 0.9}, {"step": 2, "mae": 4.0, "smape": 12.0, "mase": 1.1}]
    figure = error_by_step_chart(rows, "smape")
    assert figure.layout.yaxis.title.text == "sMAPE" and figure.data[0].name == "sMAPE"  # not "smape"


def test_metric_panels_print_large_scores_without_an_exponent() -> None:
    from studio.charts import metric_panels_chart

    table = pd.DataFrame({"model": ["#5 Ensemble", "#2 Naive"], "RMSE": [1636.2, 1641.0], "R²": [0.2625, 0.258]})
    figure = metric_panels_chart(table, ["RMSE", "R²"])
    labels = [t.text[0] for t in figure.data]
    assert labels[:2] == ["1,636", "1,641"] and "e+" not in "".join(labels), labels  # bike share's RMSE read 1.64e+03


def test_results_guardrails_stay_collapsed_and_an_alert_is_one_line_above_them(app: AppTest) -> None:
    from studio.state import get_store

    checks = {"data": [{"name": "Missing values", "status": "Passed", "finding": "No feature column has missing values.",
                        "action": "Nothing to do."}],
              "model": [{"name": "Overfitting", "status": "Alerted", "action": "More rows may generalise better.",
                         "finding": "On the training rows ROC AUC is 0.957, on validation 0.806 (gap +0.151)."}]}
    _cli_experiment(get_store(), "guarded", 0.2, summary={"guardrails": checks})
    app.switch_page("pages/results.py").run()
    no_crash(app)
    box = next(e for e in app.expander if e.label.startswith("Guardrails:"))
    assert box.label == "Guardrails: 1 alerted · 0 done · 1 passed" and not box.proto.expanded
    assert any("**Overfitting**: On the training rows ROC AUC is 0.957" in m.value for m in app.markdown)
    assert not any("**Missing values**:" in m.value for m in app.markdown)  # passed checks only in the list


@pytest.mark.slow
def test_predict_page_shows_a_0_1_multilabel_models_columns_first(app: AppTest) -> None:
    """Trained on three 0/1 columns, the model predicts one ``prediction_<column>`` 0/1 column each: the Predict page
    shows them (and the CSV holds them) before the uploaded columns, beside the label list and the probabilities."""
    from automl_core.config import AutoMLConfig
    from automl_core.experiment import run_experiment
    from studio.state import get_store
    from test_multilabel_indicators import LABELS, spread

    df = spread("train", 300)
    store = get_store()
    dataset_id = store.add_dataset("arxiv_01.csv", df)
    outcome = run_experiment(store, df, LABELS, AutoMLConfig(max_trials=1, allowed_models=("linear",), seed=0, n_jobs=1),
                             dataset_id=dataset_id, name="arxiv 0/1")
    assert outcome.status == "completed", outcome.error
    new = spread("test", 20).drop(columns=LABELS)
    app.switch_page("pages/predict.py").run()
    no_crash(app)
    app.file_uploader(key="predict_upload").set_value(("new.csv", new.to_csv(index=False).encode(), "text/csv")).run()
    no_crash(app)
    shown = app.dataframe[-1].value
    columns = list(shown.columns)
    wanted = ["prediction", *[f"prediction_{c}" for c in LABELS], *[f"proba_{c}" for c in LABELS]]
    assert columns[:len(wanted)] == wanted and len(shown) == 20
    for c in LABELS:
        assert set(shown[f"prediction_{c}"].unique()) <= {0, 1}
    assert any("download_predictions" in b.proto.id for b in app.get("download_button"))
