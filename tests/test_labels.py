"""Class labels come back exactly as the training data spells them (issue 25 item 5).

A public census table spells its target `` <=50K`` / `` >50K`` with a leading space; cleaning strips it to
decide the task, but predictions, ``proba_<class>`` columns, ``classes_`` and model.json must keep it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.prepare.task import match_classes, prepare_target

REPO = Path(__file__).resolve().parents[1]
PADDED = [" no", " yes"]


def _padded_bank(shared: Path, rows: int, seed: int) -> pd.DataFrame:
    df = pd.read_csv(shared / "bank_marketing_validation.csv").sample(rows, random_state=seed)
    df["y"] = " " + df["y"]
    return df.reset_index(drop=True)


def test_prepare_target_keeps_padded_labels_and_names_merged_spellings(shared):
    df = pd.read_csv(shared / "titanic.csv")
    df["Embarked"] = df["Embarked"].map({"S": " S", "C": "C ", "Q": "Q"})
    prepared = prepare_target(df, "Embarked")
    assert prepared.classes == [" S", "C ", "Q"]
    assert set(prepared.y) == {" S", "C ", "Q"}

    # " S" on most rows and "S" on a few: one class, named by its most frequent spelling, said in a note.
    df.loc[df.index[:20], "Embarked"] = df.loc[df.index[:20], "Embarked"].str.strip()
    prepared = prepare_target(df, "Embarked")
    assert prepared.classes == [" S", "C ", "Q"]
    assert set(prepared.y) == {" S", "C ", "Q"}
    assert any("' S'" in n and "'S'" in n and "one class" in n for n in prepared.notes), prepared.notes


def test_positive_class_in_either_spelling_and_numbers_stay_numbers(shared):
    df = _padded_bank(shared, 300, 0)
    assert prepare_target(df, "y").positive_class == " yes"            # the 'yes' side, as spelled
    assert prepare_target(df, "y", positive_class=" no").positive_class == " no"
    assert prepare_target(df, "y", positive_class="no").positive_class == " no"
    titanic = pd.read_csv(shared / "titanic.csv", dtype=str)              # "0"/"1" as text
    titanic["Survived"] = " " + titanic["Survived"]
    assert prepare_target(titanic, "Survived").classes == [0, 1]         # a number is a number


def test_test_labels_match_in_training_spelling(shared):
    labels = pd.Series([" yes", "yes", "no ", "maybe", "?", None])
    assert match_classes(labels, PADDED).tolist() == [" yes", " yes", " no", None, None, None]
    assert match_classes(pd.Series(["1", " 0", 1]), [0, 1]).tolist() == [1, 0, 1]


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_api_predictions_probabilities_and_card_use_the_given_labels(shared, tmp_path):
    df = _padded_bank(shared, 800, 1)
    test = df.iloc[600:].copy()
    test["y"] = test["y"].str.strip()  # a test file spelled without the padding still scores
    automl = AutoML(time_budget=None, max_trials=2, allowed_models=("lightgbm",), ensembles=False,
                    n_jobs=1, seed=0).fit(df.iloc[:600], target="y", test_data=test)
    assert list(automl.classes_) == PADDED
    assert set(automl.predict(test)) <= set(PADDED)
    assert automl.predict_proba(test).shape == (200, 2)
    assert automl.test_score_ is not None and automl.card_["test"]["n_rows"] == 200
    _, card_path = automl.save(tmp_path / "model")
    card = json.loads(card_path.read_text())
    assert card["classes"] == PADDED and card["positive_class"] == " yes"
    assert not hasattr(AutoML(max_trials=1), "classes_")  # unfitted, as scikit-learn estimators say


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_cli_prediction_csv_keeps_padded_labels(shared, tmp_path):
    df = _padded_bank(shared, 600, 2)
    train_csv, new_csv = tmp_path / "train.csv", tmp_path / "new.csv"
    df.iloc[:500].to_csv(train_csv, index=False)
    df.iloc[500:].drop(columns="y").to_csv(new_csv, index=False)
    env = {**os.environ, "AUTOML_STORE": str(tmp_path / "s.duckdb")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "automl_core", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=240)

    out = tmp_path / "model"
    # a trial count, and a budget wide enough that reading and checking the data on a busy machine leave
    # time for the trials (the budget's clock starts before the data is read)
    result = cli("train", str(train_csv), "--target", "y", "--max-trials", "2", "--allowed-models", "lightgbm",
                 "--no-ensembles", "--n-jobs", "1", "--time-budget", "300", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    preds = tmp_path / "preds.csv"
    result = cli("predict", "--model", str(out / "model.joblib"), str(new_csv), "--out", str(preds), "--quiet")
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(preds, dtype=str, keep_default_na=False)
    assert set(got["prediction"]) <= set(PADDED) and len(got) == 100
    assert [c for c in got.columns if c.startswith("proba_")] == [f"proba_{c}" for c in PADDED]
    np.testing.assert_allclose(got[[f"proba_{c}" for c in PADDED]].astype(float).sum(axis=1), 1.0, atol=1e-6)
