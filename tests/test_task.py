"""Task detection and target preparation, on real datasets and small targets."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from automl_core.errors import AutoMLInputError
from automl_core.io.reader import read_table
from automl_core.prepare.schema import Task
from automl_core.prepare.task import detect_task, prepare_target


from shared_data import DATASETS, needs_data


def _frame(y, n_features: int = 1) -> pd.DataFrame:
    df = pd.DataFrame({"y": y})
    for i in range(n_features):
        df[f"x{i}"] = np.arange(len(df))
    return df


def _error(df: pd.DataFrame, **kwargs) -> str:
    with pytest.raises(AutoMLInputError) as info:
        prepare_target(df, "y", **kwargs)
    assert "\n" not in str(info.value) and "Fix:" in str(info.value)
    return str(info.value)


# ------------------------------------------------------------------------------ real datasets
@needs_data
def test_wine_quality_is_regression_with_a_reason() -> None:
    prepared = prepare_target(read_table(DATASETS / "wine_quality_white.csv"), "quality")
    assert prepared.task is Task.REGRESSION and prepared.classes is None
    assert "7 integer values" in prepared.reason and "3..9" in prepared.reason


@needs_data
def test_wine_quality_as_multiclass_when_the_user_says_so() -> None:
    prepared = prepare_target(read_table(DATASETS / "wine_quality_white.csv"), "quality", task="multiclass")
    assert prepared.task is Task.MULTICLASS and prepared.classes == [3, 4, 5, 6, 7, 8, 9]
    assert "chosen by the user" in prepared.reason


@needs_data
def test_iris_is_multiclass() -> None:
    prepared = prepare_target(read_table(DATASETS / "iris.csv"), "target")
    assert prepared.task is Task.MULTICLASS and prepared.classes == [0, 1, 2]
    assert prepared.X.shape == (150, 4) and "target" not in prepared.X.columns


@needs_data
def test_bank_marketing_binary_yes_is_positive() -> None:
    prepared = prepare_target(read_table(DATASETS / "bank_marketing_train.csv"), "y")
    assert prepared.task is Task.BINARY and prepared.classes == ["no", "yes"]
    assert prepared.positive_class == "yes"
    assert isinstance(prepared.y.iloc[0], str)  # labels keep their type


@needs_data
def test_titanic_survived_positive_is_one() -> None:
    prepared = prepare_target(read_table(DATASETS / "titanic.csv"), "Survived")
    assert prepared.task is Task.BINARY and prepared.classes == [0, 1] and prepared.positive_class == 1


@needs_data
def test_german_credit_positive_is_the_minority_class() -> None:
    prepared = prepare_target(read_table(DATASETS / "german_credit.csv"), "class")
    assert prepared.classes == [1, 2] and prepared.positive_class == 2
    assert any("minority" in note for note in prepared.notes)


@needs_data
def test_hitters_rows_without_salary_are_dropped_with_a_note() -> None:
    prepared = prepare_target(read_table(DATASETS / "islp_hitters.csv"), "Salary")
    assert prepared.task is Task.REGRESSION
    assert prepared.n_dropped_missing == 59 and len(prepared.X) == len(prepared.y) == 263
    assert any("59" in note and "Salary" in note for note in prepared.notes)


@needs_data
def test_penguins_species_multiclass_with_string_labels() -> None:
    prepared = prepare_target(read_table(DATASETS / "penguins.csv"), "species")
    assert prepared.task is Task.MULTICLASS and prepared.classes == ["Adelie", "Chinstrap", "Gentoo"]


# ------------------------------------------------------------------------------ detect_task rule
@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([1.5, 2.0, 3.25, 4.0], Task.REGRESSION),
        ([0, 1, 2, 0, 1, 2], Task.MULTICLASS),
        ([1, 2, 3, 4, 1], Task.MULTICLASS),
        ([3, 4, 5, 6, 7, 8, 9], Task.REGRESSION),
        (list(range(11)), Task.REGRESSION),
        ([0, 2, 4, 0], Task.REGRESSION),
        ([10, 20, 10], Task.BINARY),
        ([0.0, 1.0, 1.0], Task.BINARY),
        (["a", "b", "a"], Task.BINARY),
        (["a", "b", "c"], Task.MULTICLASS),
        ([True, False, True], Task.BINARY),
    ],
)
def test_detect_task_rule(values, task) -> None:
    decision = detect_task(pd.Series(values, name="y"))
    assert decision.task is task and decision.reason


def test_detect_task_ignores_missing_and_refuses_constant() -> None:
    assert detect_task(pd.Series([1.5, np.nan, 2.5])).task is Task.REGRESSION
    with pytest.raises(AutoMLInputError, match="only one value"):
        detect_task(pd.Series([1, 1, np.nan]))


# ------------------------------------------------------------------------------ prepare_target
def test_missing_tokens_in_the_target_are_missing() -> None:
    prepared = prepare_target(_frame(["yes", "no", " NA", "?"] + ["yes", "no"] * 5), "y")
    assert prepared.n_dropped_missing == 2 and prepared.classes == ["no", "yes"]
    assert any("missing-value tokens" in note for note in prepared.notes)


def test_positive_class_given_by_the_user_matches_by_text() -> None:
    prepared = prepare_target(_frame([0, 1] * 6), "y", positive_class="0")
    assert prepared.positive_class == 0


def test_forecasting_keeps_its_task() -> None:
    assert prepare_target(_frame(np.arange(20) * 1.5), "y", task="forecasting").task is Task.FORECASTING


def test_error_target_absent() -> None:
    message = _error(_frame([1, 2] * 6).rename(columns={"y": "Y"}))
    assert "target column 'y' is not in the table" in message and "'Y'" in message


def test_error_target_all_missing() -> None:
    assert "missing in every row" in _error(_frame([np.nan] * 12))


def test_error_target_constant() -> None:
    assert "only one value" in _error(_frame(["a"] * 12))


def test_error_single_row_class_is_named() -> None:
    message = _error(_frame(["a"] * 6 + ["b"] * 6 + ["rare"]))
    assert "single row" in message and "'rare'" in message and "remove those rows" in message
    assert "choose regression" in message


def test_error_regression_on_labels() -> None:
    message = _error(_frame(["a", "b"] * 6), task="regression")
    assert "needs a numeric target" in message


def test_error_positive_class_not_a_class() -> None:
    message = _error(_frame(["yes", "no"] * 6), positive_class="maybe")
    assert "'maybe' is not a class" in message and "'yes'" in message


def test_error_too_few_rows() -> None:
    assert "fewer than the 10 needed" in _error(_frame(["a", "b"] * 4))


def test_error_binary_with_three_classes_and_unknown_task() -> None:
    assert "exactly 2 classes" in _error(_frame(["a", "b", "c"] * 4), task="binary")
    assert "unknown task 'clustering'" in _error(_frame([1.5, 2.5] * 6), task="clustering")
