"""What the search's workers read: the validation folds, featurized once, written to one file.

Also the rows behind them (a sample of the training table when it is large, or when a text table's
folds would take too much of the time left to featurize) and what the final model's refit needs.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ..config import AutoMLConfig
from ..prepare.folds import ValidationPlan, plan_validation, split_test
from ..prepare.tables import Prepared
from .bag import KEEP_MODEL_BYTES
from .trial import RefitData, TrainingData, featurize_folds

#: Search trials run on a random sample of at most this many training rows (the refit uses all).
MAX_SEARCH_ROWS = 250_000


@dataclass
class SearchData:
    path: str                      # the file the workers load (a TrainingData)
    plan: ValidationPlan
    y_codes: np.ndarray            # targets (codes) of the rows the plan indexes
    y_labels: np.ndarray           # the same targets as given
    table_rows: np.ndarray         # plan rows -> rows of the training table (validation-file rows follow)
    refit: RefitData               # every training row, for the final model
    featurize_seconds: float       # featurizing one fold
    fold_featurizers: list[Any]    # each fold's featurizer when the fold models may become the saved bag


def write_search_data(p: Prepared, config: AutoMLConfig, tmp: str, text: bool = False,
                      vectors: dict | None = None, seconds_left: float = math.inf) -> SearchData:
    """Featurize the validation folds once and write what the workers need to a file in ``tmp``.

    Beyond ``MAX_SEARCH_ROWS`` training rows, the search runs on a random sample of them (time
    and memory); so it does on a text table whose folds would take too much of ``seconds_left``
    to featurize (``search_rows_for_time``). The final model is still refit on every row.
    """
    n = len(p.X)
    codes_train = p.codes(p.y)
    search = np.arange(n)
    limit, why = MAX_SEARCH_ROWS, "time and memory"
    if text:
        from ..models.text_families import search_rows_for_time  # text_families imports the family registry
        rows, need = search_rows_for_time(p.X, codes_train, p.columns, p.task, config.featurization,
                                          config.seed, seconds_left)
        if rows < min(n, limit):
            limit, why = rows, (f"featurizing every row's text for the validation folds would take about "
                                f"{need:.0f} s of the {seconds_left:.0f} s left")
    if n > limit:
        search = split_test(n, codes_train, fraction=(n - limit) / n,
                            classification=p.task.is_classification, seed=config.seed)[0]
        p.notes.append(f"search trials used a random sample of {len(search):,} of the {n:,} training rows "
                       f"({why}); the final model was refit on all of them")
    X, y = p.X.iloc[search], p.y[search]
    if p.X_valid is not None:
        X = pd.concat([X, p.X_valid], ignore_index=True)
        y = np.concatenate([y, p.y_valid])
    codes = p.codes(y)
    groups = None if p.groups is None else p.groups[search]
    plan = plan_validation(codes[:len(search)], classification=p.task.is_classification, config=config,
                           groups=groups, n_validation_rows=0 if p.X_valid is None else len(p.X_valid))
    start = time.perf_counter()
    featurizers: list[Any] = []
    folds = featurize_folds(X, codes, plan.splits, p.columns, p.task, config.featurization, config.seed, featurizers)
    featurize_seconds = (time.perf_counter() - start) / max(plan.n_splits, 1)
    # k-fold on the training rows: the trials' fold models may become the saved bag (search/bag.py)
    bag = plan.n_splits >= 2 and p.X_valid is None and config.final_model != "refit"
    data = TrainingData(y_codes=codes, splits=plan.splits, folds=folds, task=p.task,
                        n_classes=len(p.classes) if p.classes else 0, pos_index=p.pos_index,
                        # text families featurize the raw rows per trial (their TF-IDF is searched)
                        raw=X.reset_index(drop=True) if text else None, columns=tuple(p.columns),
                        featurization=config.featurization, seed=config.seed, embeddings=vectors,
                        keep_models_bytes=KEEP_MODEL_BYTES if bag else 0)
    path = os.path.join(tmp, "training.joblib")
    joblib.dump(data, path)
    refit = RefitData(p.X, p.y if p.task.is_classification else codes_train, tuple(p.columns),
                      p.task, config.featurization, folds[0][0])
    return SearchData(path=path, plan=plan, y_codes=codes, y_labels=np.asarray(y),
                      table_rows=np.concatenate([search, n + np.arange(len(X) - len(search))]), refit=refit,
                      featurize_seconds=featurize_seconds, fold_featurizers=featurizers if bag else [])
