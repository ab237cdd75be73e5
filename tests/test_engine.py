"""The engine end to end on real shared data: search, exit criteria, artifacts, reproducibility."""
from __future__ import annotations

import json
import pickle
import threading
import time

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from automl_core import AutoML, AutoMLInputError
from automl_core.export.predict import load_model, predict_frame

# Whole searches with real budgets: left out of `make test-quick`.
pytestmark = pytest.mark.slow


def test_binary_bank_marketing_with_test_file(shared, tmp_path):
    train = pd.read_csv(shared / "bank_marketing_train.csv").sample(6000, random_state=0)
    automl = AutoML(time_budget=25, seed=0).fit(train, target="y", test_data=shared / "bank_marketing_test.csv")
    assert automl.task_.value == "binary"
    assert automl.metric_.name == "roc_auc"
    board = automl.leaderboard
    assert len(board) >= 3
    assert board["status"].iloc[0] == "ok"
    # the saved model is the best row, unless an ensemble could not be refit in the time left: then every
    # row above the saved one is an ensemble, and the note says the better one could not be refit
    saved_at = board.index[board["trial_id"] == automl.best_trial_.trial_id][0]
    above = board.iloc[:saved_at]
    assert set(above["model"]) <= {"ensemble", "stacking"}
    assert ("scored better" in automl.final_.note) if len(above) else (automl.final_.note == ""
                                                                     or automl.final_.final == "bag")
    assert automl.best_trial_.score > 0.9
    # every trial records every metric of its task
    ok = board[board["status"] == "ok"]
    for metric in ("roc_auc", "log_loss", "accuracy", "f1_macro", "norm_macro_recall"):
        assert ok[metric].notna().all()
    assert automl.test_score_ is not None and automl.test_score_ > 0.9
    assert automl.wall_seconds_ <= 25 * 1.5  # gross overruns only; the +10 % goal is benched
    # predict / predict_proba take raw columns, in any order, with extra columns
    test = pd.read_csv(shared / "bank_marketing_test.csv")
    shuffled = test[list(reversed(test.columns))].assign(extra=1)
    proba = automl.predict_proba(shuffled)
    pos = list(automl.model_.classes_).index("yes")
    assert roc_auc_score(test["y"] == "yes", proba[:, pos]) == pytest.approx(automl.test_score_, abs=1e-9)
    model_path, card_path = automl.save(tmp_path / "out")
    card = json.loads(card_path.read_text())
    assert card["task"] == "binary" and card["metric"] == "roc_auc"
    assert {"scikit-learn", "pandas", "numpy"} <= set(card["packages"])
    # LightGBM is pinned exactly when the saved pickle needs it (a single model or an ensemble member)
    assert ("lightgbm" in card["packages"]) == (b"lightgbm" in pickle.dumps(automl.model_))
    model, card2 = load_model(model_path)
    pred = predict_frame(model, card2, test)
    assert list(pred.columns[:1]) == ["prediction"]
    assert {"proba_no", "proba_yes"} <= set(pred.columns)


def test_regression_hardware_with_test_fraction(shared):
    df = pd.read_csv(shared / "hardware_performance_machine.csv")
    automl = AutoML(time_budget=15, test_size=0.25, seed=0).fit(df, target="ERP")
    assert automl.task_.value == "regression"
    assert automl.metric_.name == "rmse"
    assert automl.validation_.kind == "cv" and automl.validation_.n_splits == 10  # < 1,000 rows
    assert automl.test_score_ is not None and automl.test_score_ < df["ERP"].std()


def test_multiclass_penguins_max_trials_is_reproducible(shared):
    df = pd.read_csv(shared / "penguins.csv")

    def board():
        automl = AutoML(max_trials=6, time_budget=None, seed=3).fit(df, target="species")
        assert automl.task_.value == "multiclass"
        return automl.leaderboard[["trial_id", "model", "score"]]

    first, second = board(), board()
    assert len(first[~first["model"].isin(["ensemble", "stacking"])]) == 6
    pd.testing.assert_frame_equal(first, second)


def test_stop_keeps_finished_trials_and_still_yields_a_model(shared):
    df = pd.read_csv(shared / "wine_quality_white.csv")
    stop = threading.Event()
    finished = []

    def on_event(event):
        if event.kind == "trial_finished" and event.trial.status == "ok":
            finished.append(event.trial)
            if len(finished) == 2:
                stop.set()

    start = time.perf_counter()
    automl = AutoML(time_budget=120, seed=0).fit(df, target="quality", callbacks=[on_event], stop_event=stop)
    assert time.perf_counter() - start < 60
    assert automl.search_.stopped_by == "stopped by the user"
    assert len([t for t in automl.search_.trials if t.status == "ok"]) >= 2
    assert automl.predict(df.drop(columns="quality").head(5)).shape == (5,)


def test_score_threshold_and_early_termination(shared):
    df = pd.read_csv(shared / "breast_cancer_wisconsin.csv")
    automl = AutoML(time_budget=60, score_threshold=0.9, seed=0).fit(df, target="target")
    assert automl.search_.stopped_by.startswith("score threshold")
    assert len(automl.search_.trials) <= 3
    automl = AutoML(time_budget=60, early_stop_trials=3, seed=0).fit(df, target="target")
    assert automl.search_.stopped_by == "no improvement in 3 trials"


def test_allowed_models_and_per_trial_timeout(shared):
    df = pd.read_csv(shared / "islp_default.csv")
    automl = AutoML(time_budget=20, allowed_models=["linear", "knn"], seed=0).fit(df, target="default")
    assert set(automl.leaderboard["model"]) <= {"linear", "knn", "ensemble", "stacking"}
    assert {"linear", "knn"} & set(automl.leaderboard["model"])
    with pytest.raises(AutoMLInputError, match=r"Unknown table model\(s\): svm"):  # refused when configured
        AutoML(time_budget=5, allowed_models=["svm"])


def test_classes_name_the_columns_of_predict_proba(shared):
    df = pd.read_csv(shared / "penguins.csv")
    automl = AutoML(time_budget=30, max_trials=2, allowed_models="linear", ensembles=False, seed=0)
    assert not hasattr(automl, "classes_")  # not fitted yet, as in scikit-learn
    automl.fit(df, target="species")
    assert sorted(automl.classes_) == sorted(df["species"].unique())
    X = df.drop(columns="species")
    proba = automl.predict_proba(X)
    assert proba.shape[1] == len(automl.classes_)
    assert (automl.classes_[proba.argmax(axis=1)] == automl.predict(X)).all()
    regression = AutoML(time_budget=20, max_trials=1, allowed_models="linear", ensembles=False, seed=0)
    assert not hasattr(regression.fit(df.dropna(), target="body_mass_g"), "classes_")
