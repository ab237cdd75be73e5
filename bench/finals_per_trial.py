"""Every final model one search could save, on a package-bundled set: per trial (and ensemble row), the
test score of its refit on all training rows and of its bag of fold models (search/bag.py).

    python bench/finals_per_trial.py wine 12      # set (scikit-learn's wine or digits), trial count

Same 75/25 split and test metric as bench/bench_engine.py (log loss); a fixed trial count and seed, so the
scores do not depend on the machine's load. Prints one table (numbers are copied into bench/results by hand).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits, load_wine
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from automl_core import AutoML  # noqa: E402
from automl_core.search.finalize import FinalChoice, fit_final, label_order  # noqa: E402


def main(name: str, trials: int) -> None:
    warnings.filterwarnings("ignore")
    df = {"wine": load_wine, "digits": load_digits}[name](as_frame=True).frame
    train, test = train_test_split(df, test_size=0.25, random_state=0, stratify=df["target"])
    X_test, y_test = test.drop(columns="target"), test["target"]
    a = AutoML(max_trials=trials, time_budget=None, seed=0, final_model="bag", task="multiclass", metric="log_loss")
    a._keep_fold_models = True  # every trial's refit and bag below come from this one search
    a.fit(train, target="target")
    bagger, p = a._bagger, a.prepared_
    y_oof = a._y_codes[np.concatenate([v for _, v in a.validation_.splits])]
    by_id = {t.trial_id: t for t in a.trials_}
    rows = []
    for t in (t for t in a.trials_ if t.status == "ok"):
        members = [by_id[m] for m in t.params.get("members", [])]
        choice = FinalChoice(t, members, [float(w) for w in t.params.get("weights", [])])
        ids = [m.trial_id for m in members] or [t.trial_id]
        model, _ = fit_final(a._refit_data, choice, a.search_.oof, y_oof, label_order(p.classes, p.y), 2, 0,
                             best=a.search_.best, cost=a._cost, mode="refit")
        rec = {"trial": t.trial_id, "family": t.family, "validation": t.score, "rounds": t.params.get("n_estimators"),
               "refit": log_loss(y_test, model.predict_proba(X_test), labels=model.classes_), "bag": np.nan}
        if t.family != "stacking" and bagger.available(*ids):
            bag = bagger.pipeline(ids, choice.weights or None)
            rec["bag"] = log_loss(y_test, bag.predict_proba(X_test), labels=bag.classes_)
        rows.append(rec)
    print(f"{name}: {bagger.k} folds of {bagger.fold_rows} validation rows; {trials} trials, seed 0")
    print(pd.DataFrame(rows).round(5).to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
