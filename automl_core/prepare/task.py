"""Decide what kind of prediction the target asks for, and check the target can be learned.

Task rule of :func:`detect_task` (the user can always choose another task):

- boolean or non-numeric target: binary with 2 distinct values, multiclass with more;
- numeric target with fractional values (e.g. 2.5): regression;
- integer-valued numeric target with 2 distinct values: binary;
- integer-valued with 3..10 distinct values that are consecutive labels starting at 0 or 1
  (0,1,2 like iris; 1..4): multiclass;
- any other integer-valued target: regression (wine quality 3..9 is scored, not labelled).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable

import numpy as np
import pandas as pd

from automl_core.errors import AutoMLInputError
from automl_core.io.reader import missing_column_error
from automl_core.prepare.roles import clean_frame
from automl_core.prepare.schema import Task

MIN_ROWS = 10
MAX_LABEL_CLASSES = 10
# Labels whose meaning says which class is "positive", checked casefolded: (positive, negative).
POSITIVE_PAIRS = (
    ("yes", "no"), ("true", "false"), ("1", "0"), ("y", "n"), ("t", "f"),
    ("positive", "negative"), ("pos", "neg"),
)


@dataclass(frozen=True)
class TaskDecision:
    """The detected task and why, in words."""

    task: Task
    reason: str


@dataclass(frozen=True, eq=False)  # eq=False: comparing DataFrames element-wise is not equality
class PreparedTarget:
    """Features and target ready for training.

    Attributes:
        X: the table without the target column (rows with a missing target removed; index kept).
        y: the target, labels in their original type (strings stay strings).
        task, reason: the task and why (detected, or "chosen by the user").
        classes: sorted class labels for classification, else None.
        positive_class: the positive label for binary tasks, else None.
        n_dropped_missing: rows dropped because the target was missing.
        notes: sentences for the user about what was done.
    """

    X: pd.DataFrame
    y: pd.Series
    task: Task
    reason: str
    classes: list[Any] | None
    positive_class: Any
    n_dropped_missing: int
    notes: list[str] = field(default_factory=list)


def detect_task(y: pd.Series) -> TaskDecision:
    """Pick binary, multiclass or regression for a target (see the module docstring for the rule).

    Args:
        y: the target; missing values are ignored.

    Returns:
        The :class:`TaskDecision`.

    Raises:
        AutoMLInputError: the target has no values or only one distinct value.
    """
    values = y.dropna()
    name = y.name if y.name is not None else "target"
    n_unique = int(values.nunique())
    if n_unique == 0:
        raise AutoMLInputError(f"the target {name!r} has no values", "choose a column that has values to predict")
    if n_unique == 1:
        raise AutoMLInputError(
            f"the target {name!r} has only one value ({values.iloc[0]!r})", "choose a column whose values vary"
        )
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        if n_unique == 2:
            return TaskDecision(Task.BINARY, f"the target has 2 distinct labels ({_show(values)})")
        return TaskDecision(Task.MULTICLASS, f"the target has {n_unique} distinct non-numeric labels ({_show(values)})")
    arr = values.to_numpy(dtype="float64")
    fractional = arr[arr != np.round(arr)]
    if fractional.size:
        return TaskDecision(
            Task.REGRESSION, f"the target is numeric with fractional values (e.g. {fractional[0]:g}), {n_unique:,} distinct"
        )
    if n_unique == 2:
        return TaskDecision(Task.BINARY, f"the target has 2 distinct values ({_show(values)})")
    levels = np.unique(arr)
    consecutive = bool((np.diff(levels) == 1).all()) and levels[0] in (0, 1)
    if n_unique <= MAX_LABEL_CLASSES and consecutive:
        return TaskDecision(
            Task.MULTICLASS,
            f"the target has {n_unique} integer values {int(levels[0])}..{int(levels[-1])}, "
            f"consecutive from {int(levels[0])} like class labels",
        )
    why = (f"more than {MAX_LABEL_CLASSES} distinct" if n_unique > MAX_LABEL_CLASSES
           else f"not consecutive labels from 0 or 1 ({int(levels[0])}..{int(levels[-1])})")
    return TaskDecision(
        Task.REGRESSION, f"the target is numeric with {n_unique:,} integer values, {why}: treated as a quantity"
    )


def prepare_target(
    df: pd.DataFrame, target: str, task: Task | str = "auto", positive_class: Any = None
) -> PreparedTarget:
    """Split off the target, drop rows where it is missing, decide the task and check it is learnable.

    The target column is cleaned like :func:`roles.clean_frame` does (missing-value tokens such as
    ``NA``/``?`` become missing, whitespace is stripped, numeric strings become numbers) to decide
    the task and which rows have a target; the other columns are returned untouched. Class labels
    come back as given: a text label keeps its exact spelling (``" yes"`` stays ``" yes"``), since
    predictions, probability columns and ``classes_`` are read against the user's own data. Only
    spellings that differ by surrounding whitespace are one class, named by its most frequent
    spelling. A target that cleans to numbers keeps the numbers.

    Args:
        df: the table, target included.
        target: the column to predict.
        task: "auto" (see :func:`detect_task`), or a :class:`Task` / its value.
        positive_class: for binary tasks, the label that counts as positive. Default: the "yes"
            side of yes/no, true/false, 1/0-like labels, otherwise the minority class.

    Returns:
        A :class:`PreparedTarget`.

    Raises:
        AutoMLInputError: target absent, all missing, constant, fewer than 10 rows, a class with one
            row, regression on a non-numeric target, a binary task with other than 2 classes,
            unknown task, or a positive class that is not a class (or given for a non-binary task).
    """
    if target not in df.columns:
        raise missing_column_error(target, df.columns, what="target column")
    chosen = _parse_task(task)
    cleaned, report = clean_frame(df[[target]])
    y_all = cleaned[target]
    notes = [f"target {target!r}: {line.split(': ', 1)[1]}" for line in report.summary()]
    missing = y_all.isna()
    n_dropped = int(missing.sum())
    if n_dropped == len(y_all):
        raise AutoMLInputError(f"the target {target!r} is missing in every row", "choose a column that has values")
    if n_dropped:
        notes.append(f"dropped {n_dropped:,} of {len(df):,} rows where the target {target!r} is missing")
    y = y_all[~missing]
    X = df.loc[~missing.to_numpy()].drop(columns=[target])
    if y.nunique() == 1:
        raise AutoMLInputError(
            f"the target {target!r} has only one value ({y.iloc[0]!r}) in all {len(y):,} rows",
            "choose a column whose values vary",
        )
    if len(y) < MIN_ROWS:
        raise AutoMLInputError(
            f"only {len(y)} rows have a target value, fewer than the {MIN_ROWS} needed",
            "add more rows with the target filled in",
        )
    if chosen is None:
        decision = detect_task(y)
    else:
        decision = TaskDecision(chosen, f"{chosen.value} chosen by the user")
    task_ = decision.task
    if not task_.is_classification:
        if positive_class is not None:
            raise AutoMLInputError(f"a positive class was given for a {task_.value} task",
                                   "leave the positive class empty or choose a binary task")
        if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
            raise AutoMLInputError(
                f"{task_.value} needs a numeric target, but {target!r} holds labels such as {_show(y)}",
                "choose binary or multiclass, or a numeric target column",
            )
        return PreparedTarget(X, y, task_, decision.reason, None, None, n_dropped, notes)
    if isinstance(positive_class, str):
        positive_class = positive_class.strip()  # the classes are checked in their cleaned spelling
    classes, positive, class_notes = _check_classes(y, target, task_, positive_class)
    if not pd.api.types.is_numeric_dtype(y):
        y, classes, positive = _as_given(y, df.loc[~missing.to_numpy(), target], classes, positive, target, notes)
    return PreparedTarget(X, y, task_, decision.reason, classes, positive, n_dropped, notes + class_notes)


def _as_given(y: pd.Series, raw: pd.Series, classes: list[Any], positive: Any, target: str,
              notes: list[str]) -> tuple[pd.Series, list[Any], Any]:
    """The cleaned labels back in the user's spelling: the most frequent raw spelling of each class."""
    pairs = pd.DataFrame({"clean": y.to_numpy(dtype=object), "raw": raw.to_numpy(dtype=object)})
    counts = pairs.value_counts(sort=False).reset_index(name="n")
    counts["text"] = counts["raw"].map(str)  # ties go to the first spelling in text order
    counts = counts.sort_values(["n", "text"], ascending=[False, True], kind="stable")
    first = counts.drop_duplicates("clean")
    spelling = dict(zip(first["clean"], first["raw"]))
    if all(spelling[c] == c for c in classes):
        return y, classes, positive
    for label, group in counts.groupby("clean", sort=False):
        if len(group) > 1:
            shown = ", ".join(repr(v) for v in group["raw"])
            notes.append(f"target {target!r}: {shown} differ only by surrounding spaces and are one class, "
                         f"named {spelling[label]!r} (its most frequent spelling)")
    given = pd.Series(y.map(spelling).to_numpy(dtype=object), index=y.index, name=y.name)
    return given, _sorted([spelling[c] for c in classes]), spelling.get(positive) if positive is not None else None


def match_classes(values: pd.Series, classes: list[Any]) -> pd.Series:
    """Labels of a test or validation table as the training's classes (None where none matches).

    A label matches exactly or once cleaned like the training target, so ``"yes"`` in a test file
    finds the class ``" yes"`` and ``"1"`` finds ``1``.
    """
    text = values.map(str, na_action="ignore").astype(object)  # one column type, so cleaning reads every cell
    cleaned = clean_frame(text.to_frame(name="label"))[0]["label"]
    by_clean: dict[Any, Any] = {}
    for label in classes:
        by_clean.setdefault(label.strip() if isinstance(label, str) else label, label)
    exact = set(classes)
    out = [v if isinstance(v, Hashable) and v in exact else by_clean.get(_py(c)) if pd.notna(c) else None
           for v, c in zip(values.to_numpy(dtype=object), cleaned.to_numpy(dtype=object))]
    return pd.Series(out, index=values.index, dtype=object, name=values.name)


def _check_classes(y: pd.Series, target: str, task: Task, positive_class: Any) -> tuple[list[Any], Any, list[str]]:
    counts = y.value_counts()
    singles = [label for label, n in counts.items() if n == 1]
    if singles:
        shown = ", ".join(repr(_py(s)) for s in singles[:5]) + (" ..." if len(singles) > 5 else "")
        raise AutoMLInputError(
            f"{len(singles)} class(es) of the target {target!r} have a single row ({shown}), too few to learn "
            "and validate", "remove those rows, merge rare classes, or choose regression",
        )
    classes = _sorted([_py(c) for c in counts.index])
    notes: list[str] = []
    if task is Task.BINARY and len(classes) != 2:
        raise AutoMLInputError(
            f"binary classification needs exactly 2 classes, but {target!r} has {len(classes)}",
            "choose multiclass or regression",
        )
    if task is Task.MULTICLASS and len(classes) == 2:
        notes.append("multiclass was chosen for a target with 2 classes; binary would also fit")
    if task is not Task.BINARY:
        if positive_class is not None:
            raise AutoMLInputError("a positive class only applies to binary tasks", "leave it empty for multiclass")
        return classes, None, notes
    if positive_class is not None:
        matches = [c for c in classes if c == positive_class or str(c) == str(positive_class)]
        if not matches:
            raise AutoMLInputError(
                f"the positive class {positive_class!r} is not a class of {target!r}",
                f"choose one of {', '.join(repr(c) for c in classes)}",
            )
        return classes, matches[0], notes
    folded = {str(c).casefold(): c for c in classes}
    for pos, neg in POSITIVE_PAIRS:
        if set(folded) == {pos, neg}:
            notes.append(f"positive class {folded[pos]!r} (the 'yes' side of the labels)")
            return classes, folded[pos], notes
    if folded.keys() == {"1.0", "0.0"}:
        return classes, folded["1.0"], notes + ["positive class 1 (the 'yes' side of the labels)"]
    minority = min(classes, key=lambda c: (int(counts[c]), -classes.index(c)))  # tie: the later label
    notes.append(f"positive class {minority!r}: the minority class ({int(counts[minority]):,} of {len(y):,} rows)")
    return classes, minority, notes


def _parse_task(task: Task | str) -> Task | None:
    """None means "detect it"."""
    if isinstance(task, Task):
        return task
    text = str(task).strip().lower()
    if text == "auto":
        return None
    if text == "image_classification":
        raise AutoMLInputError("The task image_classification learns from a set of images, not from a table",
                               "run `python -m automl_core train IMAGES.zip|DIR --task image_classification` "
                               "(automl_core.images.run.fit_images in Python)")
    try:
        chosen = Task(text)
    except ValueError:
        choices = "auto, " + ", ".join(t.value for t in Task)
        raise AutoMLInputError(f"unknown task {task!r}", f"use one of: {choices}") from None
    return chosen  # forecasting gets the same target checks as regression


def _sorted(labels: list[Any]) -> list[Any]:
    try:
        return sorted(labels)
    except TypeError:  # mixed label types (e.g. from JSON): order by their text
        return sorted(labels, key=str)


def _py(value: Any) -> Any:
    """numpy scalars to Python ones, so labels print and compare plainly (np.int64(1) -> 1)."""
    return value.item() if isinstance(value, np.generic) else value


def _show(values: pd.Series, k: int = 5) -> str:
    labels = [repr(_py(v)) for v in values.drop_duplicates().head(k)]
    return ", ".join(labels) + (" ..." if values.nunique() > k else "")
