"""Forecast intervals on a target that never goes below zero (bike rentals, a count) stop at 0, in the saved
model itself (so the CLI, the API and the studio all get it), and the model card says so."""
from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from automl_core.forecast.bundle import _with_intervals, interval_description, next_horizon
from automl_core.forecast.series import ID
from shared_data import needs_data

pytestmark = needs_data


def _fit(df: pd.DataFrame, tmp_path, name: str) -> tuple[dict, dict]:
    from automl_core import AutoML
    automl = AutoML(task="forecasting", time_column="date", horizon=14, max_trials=2, time_budget=120,
                    ensembles=False, seed=0, allowed_models=["naive", "drift"])
    automl.fit(df, target="cnt")
    automl.save(tmp_path / name)
    return joblib.load(tmp_path / name / "model.joblib"), json.loads((tmp_path / name / "model.json").read_text())


def test_the_lower_bound_is_cut_at_zero_only_for_a_nonnegative_history() -> None:
    bundle = {"interval_levels": [80, 95], "interval_widths": {"80": [1.0, 2.0], "95": [2.0, 4.0]},
              "scales": {"a": 10.0}, "nonnegative": True}
    out = pd.DataFrame({ID: ["a", "a"], "prediction": [15.0, 15.0]})
    cut, _ = _with_intervals(bundle, out.copy(), np.array([1, 2]), [])
    assert cut["prediction_lo_80"].tolist() == [5.0, 0.0] and cut["prediction_lo_95"].tolist() == [0.0, 0.0]
    assert cut["prediction_hi_95"].tolist() == [35.0, 55.0]
    kept, _ = _with_intervals({**bundle, "nonnegative": False}, out.copy(), np.array([1, 2]), [])
    assert kept["prediction_lo_95"].tolist() == [-5.0, -25.0]


@pytest.mark.slow
def test_intervals_of_a_count_stop_at_zero_and_the_card_says_so(shared, tmp_path) -> None:
    df = pd.read_csv(shared / "bike_share_daily.csv", usecols=["date", "cnt"]).tail(200)
    df.loc[df.index[-1], "cnt"] = 20  # a last value near 0: a naive forecast's 95 % band reaches below it
    bundle, card = _fit(df, tmp_path, "counts")
    ahead = next_horizon(bundle)
    assert ahead["prediction_lo_95"].min() == 0 and (ahead.filter(like="prediction_lo") >= 0).all().all()
    assert "clipped at 0" in card["forecast"]["conformal"]
    # the same series shifted below zero keeps its lower bounds where they fall
    shifted = df.assign(cnt=df["cnt"] - 1000)
    bundle, card = _fit(shifted, tmp_path, "shifted")
    assert next_horizon(bundle)["prediction_lo_95"].min() < 0
    assert card["forecast"]["conformal"] == interval_description(False) and "clipped" not in interval_description(False)
