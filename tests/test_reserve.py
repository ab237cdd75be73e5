"""The time the search keeps free for ensembles and the refit is sized from the ensemble its trials
would make (their measured fit times), not from the five best trials."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.search import finalize
from automl_core.search.finalize import choose, likely_members
from shared_data import DATASETS, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def housing():
    df = pd.read_csv(DATASETS / "california_housing.csv").sample(2000, random_state=0)
    return AutoML(max_trials=10, time_budget=None, seed=0, n_jobs=1,
                  allowed_models=("lightgbm", "random_forest", "linear", "knn")).fit(df, "median_house_value")


def test_the_likely_ensemble_is_the_one_the_run_saves(housing, monkeypatch) -> None:
    a = housing
    assert a.best_trial_.family == "ensemble"
    monkeypatch.setattr(finalize, "LIKELY_ROWS", 10**9)  # all validation rows, as the final pick uses
    y_oof = a._y_codes[np.concatenate([v for _, v in a.validation_.splits])]
    likely = likely_members(a.search_.trials, a.search_.oof, y_oof, a.metric_, a.task_, a.prepared_.pos_index)
    assert [t.trial_id for t in likely] == [m.trial_id for m in a.final_.members]


def test_the_reserve_is_what_refitting_the_likely_ensemble_takes(housing) -> None:
    a, cost = housing, housing._cost
    trials = a.search_.trials
    likely = a.final_.members
    reserve = cost.final_stage(trials, a.metric_, True, likely)
    refit = cost.members(likely)
    build = 0.3 + 2e-5 * cost.n_validation_rows * 16
    assert reserve == pytest.approx(max(1.3 * refit + build, 1.3 * cost.single(a.search_.best))
                                    + cost.featurize_seconds + finalize.FIXED_SECONDS)
    # ... which is enough for that ensemble to be chosen when the search leaves exactly that
    ensembles = [t for t in a.trials_ if t.family == "ensemble"]
    assert choose(a.search_.best, ensembles, trials, a.metric_, cost, reserve).row.family == "ensemble"
    # the five best trials (the former sizing) keep at least as much of the budget from the search, and
    # more whenever the likely ensemble is smaller than five
    former = cost.final_stage(trials, a.metric_, True)
    assert len(likely) <= 5 and reserve <= former
    assert len(likely) == 5 or reserve < former
