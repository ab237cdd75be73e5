"""From the user's tables to what the search needs, with every check done up front.

``prepare`` has no side effects: bad input raises :class:`AutoMLInputError` before anything is
written to the store.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import AutoMLConfig
from ..errors import AutoMLInputError
from ..io.reader import load_table, validate_training_frame
from ..models.metrics import Metric, resolve_metric
from .roles import clean_frame, infer_roles, mixed_offset_note, utc_offsets
from .schema import ColumnInfo, Role, Task
from .task import MIN_ROWS, match_classes, prepare_target
from .folds import split_test

TableLike = pd.DataFrame | str | Path


@dataclass(frozen=True)
class Prepared:
    target: str
    task: Task
    task_reason: str
    X: pd.DataFrame                  # raw training features (excluded columns removed)
    y: np.ndarray                    # labels (classification) or float values
    classes: list[Any] | None
    positive_class: Any
    columns: list[ColumnInfo]
    notes: list[str] = field(default_factory=list)
    X_valid: pd.DataFrame | None = None
    y_valid: np.ndarray | None = None
    X_test: pd.DataFrame | None = None
    y_test: np.ndarray | None = None
    groups: np.ndarray | None = None
    fingerprint: str = ""
    metric: Metric | None = None     # the run's metric, resolved once here from the config and the task
    label_format: Any = None         # multilabel: how the target wrote its lists (prepare/multilabel.LabelFormat)

    @property
    def pos_index(self) -> int:
        if self.task is Task.BINARY and self.classes and self.positive_class in self.classes:
            return self.classes.index(self.positive_class)
        return 1

    def codes(self, y: np.ndarray) -> np.ndarray:
        """Class codes 0..K-1 for classification labels; values as float for regression."""
        if not self.task.is_classification:
            return np.asarray(y, dtype=float)
        lookup = {label: i for i, label in enumerate(self.classes or [])}
        return np.array([lookup.get(v, -1) for v in y], dtype=int)


def prepare(train: TableLike, target: str | list[str], config: AutoMLConfig, *, test_data: TableLike | None = None,
            validation_data: TableLike | None = None) -> Prepared:
    """Read, check and split the data; infer column roles and the task. Raises AutoMLInputError."""
    from ..forecast import is_forecasting, prepare_forecasting  # issue #5: forecasting has its own setup
    if is_forecasting(config):
        return prepare_forecasting(train, target, config, test_data=test_data, validation_data=validation_data)
    df = load_table(train, "training")
    from .multilabel import (LabelFormat, indicator_target, lists_from_indicators,  # issue #22: a list
                             looks_like_lists, prepare_multilabel)                  # of labels per row
    names = indicator_target(target, df.columns)
    if names is not None:  # several 0/1 columns: one multi-label target
        if config.task not in ("auto", "multilabel"):
            raise AutoMLInputError(f"Several target columns make a multilabel task, not {config.task}",
                                   "set the task to multilabel (or auto), or name one target column")
        df, target, note = lists_from_indicators(df, names)
        validate_training_frame(df, target)
        if test_data is not None:
            test_data = lists_from_indicators(load_table(test_data, "test"), names)[0]
        prepared = prepare_multilabel(df, target, config, test_data=test_data, validation_data=validation_data,
                                      reason="several 0/1 columns were chosen as the target")
        prepared.notes.insert(0, note)
        # predictions give back one 0/1 column per target column
        return replace(prepared, label_format=LabelFormat("columns"))
    validate_training_frame(df, target)
    if config.task == "multilabel" or (config.task == "auto" and looks_like_lists(df[target])):
        reason = ("task set to multilabel" if config.task == "multilabel"
                  else "every target cell is a list of labels, like ['a', 'b']")
        return prepare_multilabel(df, target, config, test_data=test_data, validation_data=validation_data,
                                  reason=reason)
    notes: list[str] = []
    if config.test_size is not None and test_data is not None:
        raise AutoMLInputError("Both a test file and a test fraction were given", "give only one of them")
    groups_col = config.group_column
    if groups_col is not None and groups_col not in df.columns:
        raise AutoMLInputError(f"The group column '{groups_col}' is not in the data", "pick a column of the table")
    missing_excluded = [c for c in config.exclude_columns if c not in df.columns]
    if missing_excluded:
        raise AutoMLInputError(f"Excluded column(s) not in the data: {', '.join(missing_excluded)}",
                               "exclude only columns of the table")
    prepared = prepare_target(df, target, config.task, config.positive_class)
    notes.extend(prepared.notes)
    classes = prepared.classes
    X = prepared.X.drop(columns=[c for c in config.exclude_columns if c != target])
    y = np.asarray(prepared.y)
    task = prepared.task
    if not task.is_classification:
        X, y = _finite_target(X, y, target, notes)
    X_test = y_test = None
    if config.test_size is not None:
        codes = _label_codes(y, prepared.classes)
        keep, held = split_test(len(X), codes, fraction=config.test_size,
                                classification=task.is_classification, seed=config.seed)
        X_test, y_test = X.iloc[held].reset_index(drop=True), y[held]
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
        notes.append(f"{len(held):,} rows ({config.test_size:.0%}) held out as test data before anything else")
        if task.is_classification:
            classes, X_test, y_test = _classes_left(classes, y, X_test, y_test, notes)
    elif test_data is not None:
        X_test, y_test = _labelled(load_table(test_data, "test"), target, X.columns, classes, task, "test", notes)
    X_valid = y_valid = None
    if validation_data is not None:
        X_valid, y_valid = _labelled(load_table(validation_data, "validation"), target, X.columns,
                                     classes, task, "validation", notes)
    columns = _column_roles(df.drop(columns=[target, *[c for c in config.exclude_columns if c != target]]), X,
                            config, target)
    if groups_col is not None:
        columns = [c for c in columns if c.name != groups_col]
    for c in columns:  # the featurizer parses every date column to UTC; a mix of offsets is worth saying
        offsets = utc_offsets(X[c.name]) if c.role is Role.DATETIME else []
        if len(offsets) > 1:
            notes.append(mixed_offset_note(c.name, offsets))
    if all(c.role.dropped for c in columns):
        raise AutoMLInputError("Every feature column is constant, empty or an ID, so there is nothing to learn from",
                               "add informative columns, or override a column's role")
    groups = X[groups_col].astype(str).to_numpy() if groups_col else None
    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes()
                                 + pd.util.hash_pandas_object(pd.Series(y).astype(str), index=False).to_numpy().tobytes()).hexdigest()
    return Prepared(target, task, prepared.reason, X.reset_index(drop=True), y, classes,
                    prepared.positive_class, columns, notes, X_valid, y_valid, X_test, y_test, groups, fingerprint,
                    resolve_metric(config.metric, task))


def _column_roles(whole: pd.DataFrame, X: pd.DataFrame, config: AutoMLConfig, target: str) -> list[ColumnInfo]:
    """Each feature's role, decided on the whole table as the Data page showed it; counts from the training rows.

    Deciding on the training rows alone contradicted the Data page: after a test split a row number
    (1..2930) is no longer consecutive, so it became a numeric feature that the guardrail did not flag.
    Roles come from the cleaned values; the search gets the raw frame, because the saved pipeline
    must clean raw files itself at prediction time.
    """
    cleaned, report = clean_frame(X)
    if len(whole) == len(X):
        return infer_roles(cleaned, overrides=dict(config.column_roles), target=target, report=report)
    decided = {c.name: c for c in infer_roles(clean_frame(whole)[0], overrides=dict(config.column_roles))}
    columns = []
    for i, name in enumerate(map(str, cleaned.columns)):
        s, seen = cleaned.iloc[:, i], decided[name]
        columns.append(replace(seen, dtype=str(s.dtype), n_missing=int(s.isna().sum()), n_unique=int(s.nunique()),
                               missing_tokens=dict(report.missing_tokens.get(name, {}))))
    return columns


def _classes_left(classes: list[Any], y: np.ndarray, X_test: pd.DataFrame, y_test: np.ndarray,
                  notes: list[str]) -> tuple[list[Any], pd.DataFrame, np.ndarray]:
    """Classes with training rows after the test split; test rows of the others are left out.

    With many rare classes (1,000 classes of 3 rows) a test fraction cannot hold every class on both
    sides; a class the model never sees in training cannot be predicted or scored.
    """
    seen = set(pd.unique(y).tolist())
    if len(seen) == len(classes):
        return classes, X_test, y_test
    if len(seen) < 2:
        raise AutoMLInputError("after holding out the test rows, fewer than 2 classes are left to train on",
                               "use a smaller test fraction, or a test file")
    keep = np.array([v in seen for v in y_test])
    notes.append(f"{len(classes) - len(seen)} classes have all their rows in the test data; their "
                 f"{int((~keep).sum())} test rows are left out of test scoring")
    return [c for c in classes if c in seen], X_test.loc[keep].reset_index(drop=True), y_test[keep]


def _finite_target(X: pd.DataFrame, y: np.ndarray, target: str, notes: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop rows whose regression target is inf (a value no metric can score), saying so."""
    finite = np.isfinite(y.astype(float))
    if finite.all():
        return X, y
    if finite.sum() < MIN_ROWS:
        raise AutoMLInputError(f"only {int(finite.sum())} rows have a finite target {target!r} (the rest are inf)",
                               "replace the inf values with real numbers or leave them empty")
    notes.append(f"dropped {int((~finite).sum()):,} rows where the target {target!r} is inf")
    return X.iloc[np.flatnonzero(finite)].reset_index(drop=True), y[finite]


def _label_codes(y: np.ndarray, classes: list[Any] | None) -> np.ndarray:
    if classes is None:
        return np.zeros(len(y), dtype=int)
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[v] for v in y])


def _labelled(df: pd.DataFrame, target: str, features: pd.Index, classes: list[Any] | None, task: Task,
              what: str, notes: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and target of a test or validation table, checked against the training columns."""
    if target not in df.columns:
        raise AutoMLInputError(f"The {what} data has no target column '{target}'",
                               f"add the '{target}' column to the {what} file")
    absent = [c for c in features if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"The {what} data lacks training column(s): {', '.join(map(str, absent[:10]))}",
                               f"give a {what} file with the same columns as the training data")
    y = df[target]
    keep = y.notna().to_numpy().copy()
    if task.is_classification:
        # The training's spelling of each class, so scores and saved predictions use one set of labels.
        y = match_classes(y, classes or [])
        present = clean_frame(df[[target]])[0][target].notna()
        unknown = y.isna() & present
        if unknown.any():
            unseen = sorted(map(str, df.loc[unknown, target].unique()))[:5]
            notes.append(f"{int(unknown.sum())} {what} rows have classes never seen in training "
                         f"({', '.join(unseen)}) and are left out of {what} scoring")
        keep = y.notna().to_numpy()
    if (~keep).sum():
        notes.append(f"{int((~keep).sum())} {what} rows without a usable target were dropped")
    if keep.sum() == 0:
        raise AutoMLInputError(f"The {what} data has no row with a usable target", f"check the {what} file's '{target}' column")
    rows = df.loc[keep]
    values = pd.Series(y[keep].tolist(), dtype=None).to_numpy()  # ints stay ints, like the training labels
    if not task.is_classification:
        values = pd.to_numeric(rows[target], errors="coerce").to_numpy(dtype=float)
    return rows[list(features)].reset_index(drop=True), values
