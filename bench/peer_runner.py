"""Runs one peer AutoML system on one split; executed by the peer's own virtual environment.

    <venv>/bin/python bench/peer_runner.py SYSTEM TRAIN.parquet TEST.parquet TARGET TASK BUDGET OUT.json

Writes {"fit_s", "versions", "classes", "predictions"} to OUT.json: class probabilities (columns in
sorted class order) or values for the test rows. Scoring is done by the bench, the same way for
every system. Only public packages are imported here, never this repository.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from importlib import metadata

import numpy as np
import pandas as pd

METRICS = {"flaml": {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"},
           "autogluon": {"binary": "roc_auc", "multiclass": "log_loss", "regression": "root_mean_squared_error"}}


def run_flaml(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float) -> tuple:
    from flaml import AutoML
    automl = AutoML()
    X, y = train.drop(columns=target), train[target]
    automl.fit(X, y, task="regression" if task == "regression" else "classification",
               metric=METRICS["flaml"][task], time_budget=budget, n_jobs=2, seed=0, verbose=0)
    X_test = test.drop(columns=target)
    if task == "regression":
        return automl.predict(X_test), None
    return automl.predict_proba(X_test), [str(c) for c in automl.classes_]


def run_autogluon(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float) -> tuple:
    from autogluon.tabular import TabularPredictor
    with tempfile.TemporaryDirectory() as path:
        problem = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[task]
        predictor = TabularPredictor(label=target, eval_metric=METRICS["autogluon"][task], path=path,
                                     problem_type=problem, verbosity=0)
        predictor.fit(train, time_limit=budget, presets="medium_quality", num_cpus=2, num_gpus=0,
                      excluded_model_types=["NN_TORCH", "FASTAI"])
        X_test = test.drop(columns=target)
        if task == "regression":
            return predictor.predict(X_test).to_numpy(), None
        proba = predictor.predict_proba(X_test)
        return proba.to_numpy(), [str(c) for c in proba.columns]


def main() -> None:
    system, train_path, test_path, target, task, budget, out = sys.argv[1:8]
    train, test = pd.read_parquet(train_path), pd.read_parquet(test_path)
    start = time.perf_counter()
    pred, classes = {"flaml": run_flaml, "autogluon": run_autogluon}[system](train, test, target, task, float(budget))
    fit_s = time.perf_counter() - start
    pred = np.asarray(pred, dtype=float)
    if classes is not None:  # columns in sorted class order, as the bench scores them
        order = np.argsort(np.array(classes, dtype=object))
        pred, classes = pred[:, order], [classes[i] for i in order]
    package = {"flaml": "flaml", "autogluon": "autogluon.tabular"}[system]
    versions = {p: metadata.version(p) for p in (package, "scikit-learn", "lightgbm") if _has(p)}
    with open(out, "w") as fh:
        json.dump({"fit_s": fit_s, "versions": versions, "classes": classes, "predictions": pred.tolist()}, fh)


def _has(package: str) -> bool:
    try:
        metadata.version(package)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
