"""AppTest tests of every studio page: empty states, the wizard, bad uploads, live training, results,
history (open / clone / delete) and Resume of an interrupted experiment.

Each test runs on its own store (conftest's ``private_store``); training runs are tiny (iris,
a few seconds) because the machine is shared.
"""
from __future__ import annotations

import os

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from automl_core.search.results import TrialResult

from studio_fixtures import APP, app, stop_all_jobs, status_word, texts, wait_for  # noqa: F401  (fixture)

IRIS = "Iris flowers (multiclass classification)"
CANCER = "Breast cancer (binary classification)"
PAGES = ["data", "task", "configure", "train", "results", "predict", "experiments"]


def no_crash(at: AppTest) -> None:
    """No exception escaped and the friendly fallback did not fire."""
    assert not at.exception, at.exception
    assert "Something went wrong" not in texts(at), texts(at)


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload").set_value((name, data, "text/csv")).run()
    return at


def pick_sample(at: AppTest, label: str = IRIS) -> AppTest:
    at.switch_page("pages/data.py").run()
    at.selectbox(key="sample_dataset").select(label).run()
    return at


def start_iris(at: AppTest, budget: int = 10, max_trials: int = 0, test_mode: str = "none") -> str:
    """Sample -> Task -> Configure -> Start; returns the experiment id."""
    pick_sample(at, IRIS)
    at.switch_page("pages/task.py").run()
    assert at.selectbox(key="target").value == "target"
    at.switch_page("pages/configure.py").run()
    at.number_input(key="time_budget").set_value(budget).run()
    at.number_input(key="max_trials").set_value(max_trials).run()
    at.radio(key="test_mode").set_value(test_mode).run()
    at.button(key="start_training").click().run()
    no_crash(at)
    experiment_id = at.session_state["wizard"]["experiment_id"]
    at.switch_page("pages/train.py").run()
    return experiment_id


# --- empty states ------------------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_empty(app: AppTest, page: str) -> None:
    app.switch_page(f"pages/{page}.py").run()
    no_crash(app)
    assert app.info or app.file_uploader, f"{page} shows no guidance on an empty store"


def test_data_page_shows_upload_limit(app: AppTest) -> None:
    assert "1 GB" in texts(app)
    assert app.file_uploader(key="upload") is not None


# --- the data step -----------------------------------------------------------------------------

def test_sample_dataset_profile_and_roles(app: AppTest) -> None:
    pick_sample(app, CANCER)
    no_crash(app)
    assert app.session_state["wizard"]["dataset_id"].startswith("ds-")
    profile = app.dataframe[0].value
    assert {"missing %", "distinct", "min", "max", "mean", "top values"} <= set(profile.columns)
    assert len(profile) == 31
    assert [t.label for t in app.tabs] == ["Profile", "Preview", "Columns and roles"]


def test_good_csv_upload_is_saved_and_reusable(app: AppTest) -> None:
    csv = "a;b;y\n" + "".join(f"{i};{i % 3};{'yes' if i % 2 else 'no'}\n" for i in range(40))
    upload(app, "semi.csv", csv.encode())
    no_crash(app)
    assert not app.error
    assert app.session_state["parse_delimiter"] == ";"
    dataset_id = app.session_state["wizard"]["dataset_id"]
    # a fresh session finds it among the saved datasets
    other = AppTest.from_file(APP, default_timeout=60)
    other.run()
    other.selectbox(key="saved_dataset").select(dataset_id).run()
    assert other.session_state["wizard"]["dataset_id"] == dataset_id


@pytest.mark.parametrize("name, data, words", [
    ("empty.csv", b"", "empty"),
    ("garbage.csv", os.urandom(4096) + b"\x00" * 64, "binary"),
    ("one.csv", b"only\n1\n2\n3\n4\n", "one column"),
    ("header_only.csv", b"a,b,c\n", "no data rows"),
])
def test_bad_upload_gives_clear_message_and_app_stays_usable(app: AppTest, name: str, data: bytes, words: str) -> None:
    upload(app, name, data)
    no_crash(app)
    assert len(app.error) == 1
    message = app.error[0].value
    assert words in message.lower() and "Fix:" in message, message
    assert "Traceback" not in texts(app)
    # still usable: a sample loads and the next step works
    app.selectbox(key="sample_dataset").select(IRIS).run()
    no_crash(app)
    app.switch_page("pages/task.py").run()
    no_crash(app)
    assert app.selectbox(key="target").value == "target"


def test_wrong_delimiter_is_explained_and_fixable(app: AppTest) -> None:
    csv = "x;y;z\n" + "".join(f"{i};{i * 2};{i % 2}\n" for i in range(30))
    upload(app, "data.csv", csv.encode())
    assert not app.error
    app.selectbox(key="parse_delimiter").select(",").run()
    no_crash(app)
    assert app.error and "delimiter" in app.error[0].value.lower() and "Fix:" in app.error[0].value
    app.selectbox(key="parse_delimiter").select(";").run()
    no_crash(app)
    assert not app.error


def test_schema_editor_exclusion_reaches_the_config(app: AppTest) -> None:
    pick_sample(app, IRIS)
    app.session_state["wizard"]["exclude_columns"] = ["petal width (cm)"]
    app.switch_page("pages/task.py").run()
    app.switch_page("pages/configure.py").run()
    no_crash(app)
    summary = app.dataframe[0].value
    assert "petal width (cm)" in summary.set_index("Setting").loc["Excluded columns", "Value"]


# --- the task and configure steps --------------------------------------------------------------

def test_task_detects_and_explains(app: AppTest) -> None:
    pick_sample(app, CANCER)
    app.switch_page("pages/task.py").run()
    no_crash(app)
    assert "Detected **binary**" in texts(app)
    assert app.selectbox(key="positive_class").value in (0, 1)
    assert "You chose" not in texts(app)
    app.selectbox(key="task").select("regression").run()
    no_crash(app)
    # "Detected binary" alone under a chosen regression read as if a classifier would train
    assert "Detected **binary**" in texts(app) and "You chose **regression**: that is what trains." in texts(app)
    app.selectbox(key="task").select("forecasting").run()
    no_crash(app)
    # forecasting asks for its time column before the run can be configured (see test_forecast_studio.py)
    assert "Choose the time column" in texts(app) and app.selectbox(key="time_column") is not None
    app.switch_page("pages/configure.py").run()
    no_crash(app)
    assert app.warning and "not ready" in app.warning[0].value
    assert not [b for b in app.button if b.key == "start_training"]


def test_target_with_one_value_is_refused_clearly(app: AppTest) -> None:
    csv = "a,b,c\n" + "".join(f"{i},{i * 3},same\n" for i in range(30))
    upload(app, "const.csv", csv.encode())
    app.switch_page("pages/task.py").run()
    app.selectbox(key="target").select("c").run()
    no_crash(app)
    assert app.error and "only one value" in app.error[0].value and "Fix:" in app.error[0].value


def test_configure_defaults_and_explanations(app: AppTest) -> None:
    pick_sample(app, CANCER)
    app.switch_page("pages/task.py").run()
    app.switch_page("pages/configure.py").run()
    no_crash(app)
    assert app.selectbox(key="metric").value == "roc_auc"
    assert app.number_input(key="time_budget").value == 60
    assert "counts them live" in texts(app) and "cross-validation" in texts(app)
    app.selectbox(key="metric").select("accuracy").run()
    assert "Higher is better" in texts(app)
    app.radio(key="validation_mode").set_value("holdout").run()
    app.radio(key="test_mode").set_value("fraction").run()
    app.radio(key="featurization_mode").set_value("custom").run()
    no_crash(app)
    rows = dict(app.dataframe[-1].value.to_numpy().tolist())
    assert "20% holdout" in rows["Validation"] and "10%" in rows["Test data"]
    # an impossible combination is refused with the fix, not a crash
    app.number_input(key="time_budget").set_value(0).run()
    no_crash(app)
    assert app.error and "Fix:" in app.error[0].value


# --- training, results, history ----------------------------------------------------------------

def test_train_live_results_and_history(app: AppTest) -> None:
    # a trial limit keeps it quick whatever the machine's load; 10 % of the rows held out as test data
    experiment_id = start_iris(app, budget=180, max_trials=3, test_mode="fraction")
    assert status_word(app) == "Running"
    wait_for(app, lambda a: status_word(a) in ("Completed", "Stopped", "Failed"), timeout=240)
    no_crash(app)
    assert status_word(app) == "Completed", texts(app)
    assert app.dataframe[0].value.shape[0] >= 1  # the leaderboard
    assert any(b.key == "download_model" for b in app.get("download_button"))

    app.switch_page("pages/results.py").run()
    no_crash(app)
    assert app.selectbox(key="results_experiment").value == experiment_id
    keys = {b.key for b in app.get("download_button")}
    assert {"download_model", "download_model_card", "download_test_predictions"} <= keys
    test_card = next(m for m in app.metric if m.label.startswith("Test "))
    assert test_card.value not in ("no test data", "")  # the test score is shown apart from validation
    from studio.state import get_store
    trials = get_store().trials(experiment_id)
    done = next(m for m in app.metric if m.label == "Trials done")  # counted as the Train page counts them
    assert done.value == str(int((trials["status"] == "ok").sum())) and "including failed ones" in done.help
    predictions = pd.read_csv(get_store().artifact_dir(experiment_id) / "test_predictions.csv")
    assert {"actual_target", "prediction"} <= set(predictions.columns) and len(predictions) == 15
    # predict a table with the saved model, on the Predict page
    app.switch_page("pages/predict.py").run()
    no_crash(app)
    assert app.selectbox(key="predict_experiment").value == experiment_id
    frame = pd.DataFrame({"sepal length (cm)": [5.1, 6.7], "sepal width (cm)": [3.5, 3.0],
                          "petal length (cm)": [1.4, 5.2], "petal width (cm)": [0.2, 2.3]})
    app.file_uploader(key="predict_upload").set_value(("new.csv", frame.to_csv(index=False).encode(), "text/csv")).run()
    no_crash(app)
    assert any(b.key == "download_predictions" for b in app.get("download_button"))
    # a table without the training columns: a clear message
    app.file_uploader(key="predict_upload").set_value(("bad.csv", b"foo,bar\n1,2\n3,4\n", "text/csv")).run()
    no_crash(app)
    assert app.error and "column(s) the model needs" in app.error[0].value

    app.switch_page("pages/experiments.py").run()
    no_crash(app)
    table = app.dataframe[0].value
    assert list(table["status"]) == ["Completed"]
    app.selectbox(key="experiment_pick").select(experiment_id).run()
    app.button(key="clone_experiment").click().run()
    no_crash(app)
    assert app.session_state["wizard"]["time_budget"] == 180
    assert app.session_state["wizard"]["max_trials"] == 3
    app.switch_page("pages/experiments.py").run()
    app.selectbox(key="experiment_pick").select(experiment_id).run()
    app.button(key="delete_experiment").click().run()
    assert "cannot be undone" in texts(app)
    app.button(key="confirm_delete").click().run()
    no_crash(app)
    assert app.info and "No experiments yet" in app.info[0].value


def test_stop_keeps_results(app: AppTest) -> None:
    start_iris(app, budget=120)
    wait_for(app, lambda a: status_word(a) == "Running" and a.dataframe and len(a.dataframe[0].value) >= 1
             and "trial_id" in a.dataframe[0].value.columns, timeout=90)
    app.button(key="stop_training").click().run()
    wait_for(app, lambda a: status_word(a) in ("Stopped", "Completed", "Failed"), timeout=90)
    no_crash(app)
    assert status_word(app) == "Stopped", texts(app)
    assert any(b.key == "download_model" for b in app.get("download_button"))


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_interrupted_experiment_offers_resume(app: AppTest) -> None:
    from studio.state import get_store

    pick_sample(app, IRIS)
    store = get_store()
    dataset_id = app.session_state["wizard"]["dataset_id"]
    config = {"task": "auto", "metric": "auto", "time_budget": 40.0, "target": "target", "studio": {}}
    old = store.create_experiment("iris run", dataset_id=dataset_id, task="multiclass", metric="log_loss",
                                  config=config)
    store.set_status(old, "running")
    earlier = TrialResult(1, "linear", {"C": 1.0, "class_weight": "none"}, "ok", 0.2, {"log_loss": 0.2},
                          0.1, 0.01, 1.0, 2.0)
    store.add_trial(old, earlier)
    store.set_status(old, "interrupted")  # what mark_interrupted does after a server restart
    app.switch_page("pages/train.py").run()
    app.query_params["experiment"] = old
    app.run()
    no_crash(app)
    assert status_word(app) == "Interrupted"
    resume = app.button(key="resume_training")
    assert "38 s" in resume.label  # 40 s less the 2 s its finished trial had used
    resume.click().run()
    no_crash(app)
    # the same record continues: the earlier trial is kept, numbering goes on, its settings come first
    assert app.session_state["wizard"]["experiment_id"] == old
    from studio.state import get_jobs
    get_jobs().join(old, 180)
    exp = store.get_experiment(old)
    assert exp["status"] == "completed", exp.get("error")
    trials = store.trials(old).sort_values("trial_id")
    assert trials["trial_id"].iloc[0] == 1 and trials["score"].iloc[0] == 0.2
    assert trials["trial_id"].iloc[1] == 2 and trials["family"].iloc[1] == "linear"
    assert trials["params"].iloc[1]["C"] == 1.0


def test_resume_can_be_given_more_time(app: AppTest, monkeypatch) -> None:
    """An interrupted run offered only what its budget had left (at least 30 s): the walk wanted to resume
    one with more time and could not say so; now the rest of the budget is a field, the remaining time first."""
    from studio.state import get_jobs, get_store

    store = get_store()
    config = {"task": "auto", "metric": "auto", "time_budget": 40.0, "target": "target", "studio": {}}
    old = store.create_experiment("iris run", dataset_id="ds-x", task="multiclass", metric="log_loss", config=config)
    store.set_status(old, "running")
    store.add_trial(old, TrialResult(1, "linear", {"C": 1.0}, "ok", 0.2, {"log_loss": 0.2}, 0.1, 0.01, 1.0, 2.0))
    store.set_status(old, "interrupted")
    started = []
    monkeypatch.setattr(get_jobs(), "start", lambda store, spec, **kw: started.append((spec, kw)) or old)
    app.switch_page("pages/train.py").run()
    app.query_params["experiment"] = old
    app.run()
    no_crash(app)
    budget = app.number_input(key="resume_budget")
    assert budget.value == 38 and "38 s" in app.button(key="resume_training").label  # 40 s less the 2 s used
    budget.set_value(300).run()
    assert app.button(key="resume_training").label == "Resume with a budget of 5 min 00 s"
    app.button(key="resume_training").click().run()
    no_crash(app)
    (spec, kw), = started
    assert kw == {"resume_id": old} and spec.config.time_budget == 300.0


def test_a_best_score_of_zero_is_shown_as_zero(app: AppTest) -> None:
    """A real best score of 0.0 (an R² of 0, say) reads 0 on the Train page, not nan."""
    from studio.state import get_store

    store = get_store()
    config = {"task": "regression", "metric": "r2_score", "time_budget": 10.0, "target": "y", "studio": {}}
    eid = store.create_experiment("flat run", dataset_id=None, task="regression", metric="r2_score", config=config)
    store.set_status(eid, "running")
    store.finish_experiment(eid, status="completed", best_trial_id=1, best_model="linear", best_score=0.0,
                            test_score=None, model_path=None, summary={})
    app.switch_page("pages/train.py").run()
    app.query_params["experiment"] = eid
    app.run()
    no_crash(app)
    shown = [s.value for s in app.success]
    assert any("validation R² 0 " in s or s.endswith("validation R² 0") for s in shown), shown
    assert not any("nan" in s for s in shown), shown
