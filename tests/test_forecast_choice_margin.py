"""The choice margin that grows with the trials compared (choice.Rule.margin, issue #20) and the row cap of
the statistical families, on a candidate table built on a real series: monthly US retail sales
(../shared/datasets/fred_retail_S4248SM144SCEN.csv), 10 windows of 12 months, each candidate's forecast
the actuals times a seeded error of known size."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_core.forecast import choice, families
from shared_data import DATASETS, needs_data

WINDOWS, H = 10, 12


@pytest.fixture(scope="module")
def actuals() -> pd.DataFrame:
    y = pd.read_csv(DATASETS / "fred_retail_S4248SM144SCEN.csv").iloc[:, 1].to_numpy(float)
    scale = float(np.abs(np.diff(y[:-WINDOWS * H], 12)).mean())   # seasonal naive's in-sample error
    tail = y[-WINDOWS * H:]
    return pd.DataFrame({"unique_id": 0, "fold": np.repeat(np.arange(WINDOWS), H), "step": np.tile(np.arange(H), WINDOWS),
                         "y": tail, "scale": scale})


def _candidate(actuals: pd.DataFrame, size: float, seed: int) -> pd.DataFrame:
    """A forecast off by about ``size`` (a share of the level) on every window, noise seeded."""
    rng = np.random.default_rng(seed)
    err = size * (1 + 0.3 * rng.standard_normal(len(actuals))) * rng.choice([-1, 1], len(actuals))
    return actuals.assign(yhat=actuals["y"] * (1 + err))


@needs_data
def test_margin_blends_the_families_tied_with_the_best_and_not_a_clearly_worse_one(actuals):
    frames = {0: _candidate(actuals, 0.03, 1), 1: _candidate(actuals, 0.03, 2), 2: _candidate(actuals, 0.09, 3)}
    fams = {0: "lgbm_lags", 1: "auto_ets", 2: "auto_theta"}
    ranked = sorted(frames, key=lambda i: choice._value(frames[i], "mase"))
    errors = {i: choice.unit_errors(f, "mase") for i, f in frames.items()}
    tied = choice.tied(errors, ranked, 1.0)
    assert set(tied) == {0, 1}                      # three times the error on every window is not a tie
    kept = choice.choose(frames, fams, "mase", False, choice.Rule(margin=1.0))
    assert kept == {0: 0.5, 1: 0.5}                 # one trial of each tied family, weighted equally
    no_blends = choice.Rule(top=1, margin=1.0)       # a run without ensembles keeps one trial
    assert choice.choose(frames, fams, "mase", False, no_blends) == {ranked[0]: 1.0}
    simple = choice.choose(frames, fams, "mase", False, choice.Rule(top=1, margin=1.0, margin_mode="simple"))
    assert simple == {1: 1.0}                       # AutoETS is simpler than LightGBM on lags
    assert choice.choose(frames, fams, "mase", False, choice.Rule(top=1)) == {ranked[0]: 1.0}   # no margin


@needs_data
def test_margin_widens_with_the_number_of_trials_compared(actuals):
    best, near = _candidate(actuals, 0.030, 1), _candidate(actuals, 0.036, 2)
    errors = {0: choice.unit_errors(best, "mase"), 1: choice.unit_errors(near, "mase")}
    d = np.log(errors[1] / errors[0])
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))  # how many standard errors the near one is behind
    # a margin just under what two trials would need ties them only when many more trials were compared
    margin = 0.95 * t / np.sqrt(2 * np.log(2))
    few, many = [0, 1], [0, 1] + list(range(2, 400))
    assert choice.tied(errors, few, margin) == [0]
    assert choice.tied(errors, many, margin) == [0, 1]


@needs_data
def test_margin_keeps_the_rule_when_the_tie_is_one_family_or_the_metric_has_no_units(actuals):
    frames = {0: _candidate(actuals, 0.030, 1), 1: _candidate(actuals, 0.031, 2), 2: _candidate(actuals, 0.2, 3)}
    fams = {0: "lgbm_lags", 1: "lgbm_lags", 2: "auto_ets"}
    assert choice.choose(frames, fams, "mase", False, choice.Rule(margin=1.0)) == choice.choose(
        frames, fams, "mase", False, choice.Rule())
    assert choice.unit_errors(frames[0], "rmse") is None


def test_statistical_rows_capped_on_long_seasons_only():
    weekly, monthly, hourly = 52, 12, 24
    capped = max(families.STATS_SEASONS * weekly, families.STATS_CAPPED_ROWS)
    for family in ("auto_ets", "auto_theta"):
        assert families.stats_rows(family, weekly) == capped < families.STATS_MAX_ROWS
        assert families.stats_rows(family, monthly) == families.STATS_MAX_ROWS   # unchanged
    assert families.stats_rows("auto_theta", hourly) == families.STATS_CAPPED_ROWS
    assert families.stats_rows("auto_ets", hourly) == families.STATS_MAX_ROWS   # mixed on hourly: not capped
    assert families.stats_rows("auto_arima", weekly) == 300                     # its own cap, unchanged
    assert families.stats_rows("mstl", hourly) >= 3 * 7 * hourly


@needs_data
def test_default_rule_blends_two_families_of_equal_error(actuals):
    """Equal true error, different noise: the engine's rule blends one trial of each family (before the margin,
    the lucky one was kept alone, or blended only when that beat it on the same windows)."""
    frames = {0: _candidate(actuals, 0.03, 1), 1: _candidate(actuals, 0.03, 4), 2: _candidate(actuals, 0.2, 3)}
    fams = {0: "lgbm_lags", 1: "auto_ets", 2: "naive"}
    assert choice.choose(frames, fams, "mase", False, choice.DEFAULT) == {0: 0.5, 1: 0.5}
