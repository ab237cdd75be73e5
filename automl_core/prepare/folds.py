"""How trials are validated: the split plan, chosen once per experiment.

Auto rule (as Azure AutoML): more than 20,000 rows -> a 10 % holdout; fewer than 1,000 -> 10-fold
cross-validation; otherwise 3-fold. Folds are stratified for classification and grouped when a
group column is given.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import (GroupKFold, GroupShuffleSplit, KFold, ShuffleSplit, StratifiedKFold,
                                     StratifiedShuffleSplit, train_test_split)

from ..config import AutoMLConfig
from ..errors import AutoMLInputError

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ValidationPlan:
    kind: str                 # "cv", "holdout" or "file"
    n_splits: int
    description: str          # in words, for the user
    splits: tuple[Split, ...]  # (train rows, validation rows); for "file", indexes into the concatenation


def auto_rule(n_rows: int) -> tuple[str, int | float, str]:
    """The validation Azure AutoML would pick for ``n_rows`` training rows, with the reason (the reason
    only: callers name the plan before it, and "3-fold cross-validation — ...: 3-fold cross-validation"
    said it twice)."""
    if n_rows > 20_000:
        return "holdout", 0.1, f"{n_rows:,} rows (> 20,000): one split is reliable and cheap"
    if n_rows < 1_000:
        return "cv", 10, f"{n_rows:,} rows (< 1,000): each model trains on 90 % of them"
    return "cv", 3, f"{n_rows:,} rows (1,000 to 20,000)"


def plan_validation(y: np.ndarray, *, classification: bool, config: AutoMLConfig,
                    groups: np.ndarray | None = None, n_validation_rows: int = 0) -> ValidationPlan:
    """Build the split plan for the training rows ``y`` (class codes or values).

    With ``n_validation_rows`` > 0 the user gave a validation file: its rows follow the training
    rows, and the single split is train -> file.
    """
    n = len(y)
    if n_validation_rows:
        idx = np.arange(n + n_validation_rows)
        return ValidationPlan("file", 1, f"the validation file you gave ({n_validation_rows:,} rows)",
                              ((idx[:n], idx[n:]),))
    kind, amount, reason = auto_rule(n)
    if config.validation == "cv" or (config.validation == "auto" and config.cv_folds):
        kind, amount, reason = "cv", config.cv_folds or 5, "as you chose"
    elif config.validation == "holdout" or (config.validation == "auto" and config.holdout_fraction):
        frac = config.holdout_fraction or 0.1
        kind, amount, reason = "holdout", frac, "as you chose"
    seed = config.seed
    stratify = classification and groups is None and _can_stratify(y, kind, amount)
    if kind == "cv":
        k = int(amount)
        if groups is not None:
            n_groups = len(np.unique(groups))
            if n_groups < k:
                raise AutoMLInputError(f"The group column has {n_groups} groups, fewer than the {k} folds",
                                       "choose fewer folds or a holdout, or another group column")
            splitter = GroupKFold(n_splits=k)
        elif stratify:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        else:
            splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
        splits = tuple(splitter.split(np.zeros(n), y, groups))
        desc = f"{k}-fold cross-validation{' (stratified)' if stratify else ''}{' by group' if groups is not None else ''} — {reason}"
        return ValidationPlan("cv", k, desc, splits)
    frac = float(amount)
    if groups is not None:
        splitter = GroupShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
    elif stratify:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
    else:
        splitter = ShuffleSplit(n_splits=1, test_size=frac, random_state=seed)
    splits = tuple(splitter.split(np.zeros(n), y, groups))
    desc = f"{frac:.0%} holdout{' (stratified)' if stratify else ''} — {reason}"
    return ValidationPlan("holdout", 1, desc, splits)


def _can_stratify(y: np.ndarray, kind: str, amount: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    if kind == "cv":
        return counts.min() >= int(amount)
    # A stratified holdout needs a row of every class on both sides (1,000 classes, 600 held-out rows: no).
    held = int(np.ceil(amount * len(y)))
    return counts.min() >= 2 and len(counts) <= min(held, len(y) - held)


def split_test(n_rows: int, y: np.ndarray, *, fraction: float, classification: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes (train, test) for a test fraction split off before anything else."""
    idx = np.arange(n_rows)
    stratify = y if classification and _can_stratify(y, "holdout", fraction) else None
    train, test = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)
