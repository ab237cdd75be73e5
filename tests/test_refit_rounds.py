"""The refit of an early-stopped boosting trial uses the round count the rule makes of the folds' own
best rounds (search/trial.py ``refit_rounds``), recorded in the trial and the card."""
from __future__ import annotations

import json

import pandas as pd

from automl_core import AutoML
from automl_core.search.trial import refit, refit_rounds


def test_refit_uses_the_rule_of_the_folds_best_rounds(shared, tmp_path):
    df = pd.read_csv(shared / "iris.csv")
    # the bag keeps the fold models, which carry the rounds their early stopping chose
    a = AutoML(time_budget=None, max_trials=1, allowed_models=("lightgbm",), ensembles=False, n_jobs=1,
               final_model="bag", seed=0)
    a._keep_fold_models = True
    a.fit(df, target="target")
    trial = a.best_trial_
    folds = a._bagger.fold_models[trial.trial_id][0]
    rounds = [int(steps[-1][1].best_iteration_ or steps[-1][1].n_estimators_) for steps in folds]
    assert len(set(rounds)) > 1  # the folds disagree, so the rule matters
    assert trial.params["n_estimators"] == refit_rounds(rounds)
    final = refit(a._refit_data, trial.family, trial.params, 1, 0).steps[-1][1]
    assert final.booster_.num_trees() == refit_rounds(rounds) * 3  # one tree a class a round
    _, card_path = a.save(tmp_path / "model")
    card = json.loads(card_path.read_text())
    assert card["hyperparameters"]["n_estimators"] == refit_rounds(rounds)
