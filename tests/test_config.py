"""Settings are checked once, where they are handed over: one error form, nothing checked deep inside."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from automl_core import AutoML, AutoMLConfig, AutoMLInputError
from automl_core.config import TASKS, model_names
from automl_core.prepare.tables import prepare
from shared_data import DATASETS, REPO, needs_data


@pytest.mark.parametrize("settings, words", [
    ({"task": "binary", "horizon": 3}, "horizon apply to forecasting only"),
    ({"frequency": "D"}, "frequency apply to forecasting only"),
    ({"task": "forecasting", "time_column": "t", "horizon": 3, "validation": "cv"}, "validation apply to tables only"),
    ({"task": "forecasting", "time_column": "t", "horizon": 3, "positive_class": "yes"}, "positive_class apply to tables"),
    ({"task": "forecasting", "horizon": 3}, "Forecasting needs a time column and a horizon (time_column not given)"),
    ({"allowed_models": ("lgbm",)}, "Unknown table model(s): lgbm"),
    ({"task": "forecasting", "time_column": "t", "horizon": 3, "blocked_models": ("lightgbm",)},
     "Unknown forecasting model(s): lightgbm"),
    ({"blocked_models": tuple(model_names(False))}, "No model is left to try"),
    ({"metric": "accuracy_score_of_doom"}, "Unknown metric"),
    ({"task": "regression", "partition_by": ("Store",)}, "partition_by apply to forecasting only"),
])
def test_bad_settings_are_refused_at_construction(settings, words):
    with pytest.raises(AutoMLInputError, match="Fix:") as err:
        AutoMLConfig(**settings)
    assert words in str(err.value)


def test_names_that_exist_pass():
    AutoMLConfig(metric="AUC", allowed_models=("lightgbm", "linear"))
    AutoMLConfig(task="forecasting", time_column="t", horizon=3, allowed_models=("auto_arima", "lgbm_lags"))


def test_the_cli_offers_the_config_tasks():
    out = subprocess.run([sys.executable, "-m", "automl_core", "train", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "{" + ",".join(TASKS) + "}" in out.replace("\n", "").replace(" ", "")


@needs_data
def test_fit_takes_data_or_prepared_not_both():
    df = pd.read_csv(DATASETS / "iris.csv")
    config = AutoMLConfig(max_trials=1, time_budget=None)
    prepared = prepare(df, "target", config)
    assert prepared.metric.name == "log_loss"  # resolved once, in prepare
    with pytest.raises(AutoMLInputError, match="both prepared data and train_data"):
        AutoML(config=config).fit(df, "target", prepared=prepared)
    with pytest.raises(AutoMLInputError, match="no training data"):
        AutoML(config=config).fit(None, "target")
