"""Cleaning disguised missing values and inferring column roles, on real datasets and small tables."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from automl_core.errors import AutoMLInputError
from automl_core.io.reader import read_table
from automl_core.prepare.roles import clean_frame, infer_roles, parse_datetime_column
from automl_core.prepare.schema import ColumnInfo, Role


from shared_data import DATASETS, needs_data


def _roles(file: str, **kwargs) -> dict[str, ColumnInfo]:
    df, report = clean_frame(read_table(DATASETS / file))
    return {c.name: c for c in infer_roles(df, report=report, **kwargs)}


def _role_of(values, name: str = "col") -> ColumnInfo:
    (info,) = infer_roles(pd.DataFrame({name: values}))
    return info


# ------------------------------------------------------------------------------ real datasets
@needs_data
def test_bank_marketing_roles() -> None:
    roles = _roles("bank_marketing_train.csv", target="y")
    assert "y" not in roles  # the target is left out
    assert roles["job"].role is Role.CATEGORICAL and "12 distinct values" in roles["job"].reason
    assert roles["duration"].role is Role.NUMERIC
    assert roles["age"].role is Role.NUMERIC
    # Month and weekday names must not be mistaken for dates.
    assert roles["month"].role is Role.CATEGORICAL and roles["day_of_week"].role is Role.CATEGORICAL


@needs_data
def test_titanic_roles() -> None:
    roles = _roles("titanic.csv", target="Survived")
    assert roles["PassengerId"].role is Role.ID
    assert roles["Name"].role is Role.TEXT  # unique, but several words: free text rather than a key
    assert roles["Ticket"].role is Role.HIGH_CARDINALITY
    assert roles["Cabin"].role is Role.HIGH_CARDINALITY
    assert roles["Age"].role is Role.NUMERIC and roles["Age"].n_missing == 177
    assert roles["Sex"].role is Role.CATEGORICAL and roles["Embarked"].n_missing == 2


@needs_data
def test_nyc_taxis_pickup_dropoff_are_datetimes() -> None:
    roles = _roles("nyc_taxis.csv")
    for col in ("pickup", "dropoff"):
        assert roles[col].role is Role.DATETIME
        assert roles[col].datetime_format == "%Y-%m-%d %H:%M:%S"
    assert roles["pickup_zone"].role is Role.HIGH_CARDINALITY  # multi-word, but repeated: not text


@needs_data
def test_co2_yyyymmdd_integers_are_datetimes() -> None:
    roles = _roles("co2_mauna_loa_weekly.csv")
    assert roles["date"].role is Role.DATETIME and roles["date"].datetime_format == "%Y%m%d"
    parsed = parse_datetime_column(read_table(DATASETS / "co2_mauna_loa_weekly.csv")["date"], "%Y%m%d")
    assert parsed.iloc[0] == pd.Timestamp("1958-03-29") and parsed.notna().all()


@needs_data
def test_stocks_month_name_dates() -> None:
    roles = _roles("stocks.csv")
    assert roles["date"].role is Role.DATETIME and roles["date"].datetime_format == "%b %d %Y"
    assert roles["symbol"].role is Role.CATEGORICAL


@needs_data
def test_bike_share_daily_us_dates_and_row_number() -> None:
    roles = _roles("bike_share_daily.csv", target="cnt")
    assert roles["date"].role is Role.DATETIME and roles["date"].datetime_format == "%m/%d/%Y"
    assert roles["instant"].role is Role.ID and "consecutive" in roles["instant"].reason
    dates = parse_datetime_column(read_table(DATASETS / "bike_share_daily.csv")["date"], "%m/%d/%Y")
    assert dates.notna().all() and dates.iloc[-1] == pd.Timestamp("2012-12-31")


@needs_data
def test_penguins_na_tokens_become_missing_and_are_reported() -> None:
    raw = read_table(DATASETS / "penguins.csv")
    df, report = clean_frame(raw)
    assert report.missing_tokens["sex"] == {"NA": 11}
    assert report.missing_tokens["bill_length_mm"] == {"NA": 2}
    assert df["bill_length_mm"].dtype == np.float64 and df["bill_length_mm"].isna().sum() == 2
    assert "bill_length_mm" in report.converted_to_numeric
    roles = {c.name: c for c in infer_roles(df, report=report, target="species")}
    assert roles["sex"].role is Role.CATEGORICAL and roles["sex"].missing_tokens == {"NA": 11}
    assert roles["body_mass_g"].role is Role.NUMERIC and roles["body_mass_g"].n_missing == 2
    assert raw["sex"].eq("NA").sum() == 11  # the input frame is not modified


@needs_data
def test_column_infos_serialise_to_json() -> None:
    for info in _roles("penguins.csv").values():
        assert ColumnInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


# ------------------------------------------------------------------------------ cleaning
def test_question_marks_with_spaces_and_other_tokens() -> None:
    df = pd.DataFrame({
        "num": ["1", " ?", "?", " 3 ", "2.5", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-", "--", "", "   "],
        "word": ["a"] * 17,
    })
    clean, report = clean_frame(df)
    assert clean["num"].dtype == np.float64
    assert clean["num"].dropna().tolist() == [1.0, 3.0, 2.5]
    tokens = report.missing_tokens["num"]
    assert tokens[" ?"] == 1 and tokens["?"] == 1 and tokens["NULL"] == 1 and tokens["   "] == 1
    assert sum(tokens.values()) == 14
    assert "word" not in report.missing_tokens
    assert any("14 missing-value tokens" in line for line in report.summary())


def test_whitespace_is_stripped_and_numeric_strings_become_ints() -> None:
    clean, report = clean_frame(pd.DataFrame({"c": [" a", "b ", "a"], "n": [" 1", "2", "3 "]}))
    assert clean["c"].tolist() == ["a", "b", "a"] and report.stripped == {"c": 2, "n": 2}
    assert clean["n"].dtype == np.int64 and clean["n"].tolist() == [1, 2, 3]


def test_big_integer_strings_stay_exact() -> None:
    clean, _ = clean_frame(pd.DataFrame({"n": ["9007199254740993", "1"]}))
    assert clean["n"].tolist() == [9007199254740993, 1]


def test_numeric_columns_and_column_names_are_untouched() -> None:
    df = pd.DataFrame({" spaced name ": [1.5, np.nan], "s": ["x", None]})
    clean, report = clean_frame(df)
    assert list(clean.columns) == [" spaced name ", "s"]
    assert clean[" spaced name "].equals(df[" spaced name "])
    assert clean["s"].isna().tolist() == [False, True] and report.missing_tokens == {}


# ------------------------------------------------------------------------------ role rules
def test_empty_and_constant() -> None:
    assert _role_of([np.nan] * 5).role is Role.EMPTY
    info = _role_of(["x"] * 5 + [None])
    assert info.role is Role.CONSTANT and "one distinct value" in info.reason


@pytest.mark.parametrize(
    "values",
    [[True, False, True], ["yes", "no", "no"], ["Y", "N", "Y"], ["TRUE", "false", "false"], [0, 1, 1], [0.0, 1.0, np.nan]],
)
def test_boolean(values) -> None:
    assert _role_of(values).role is Role.BOOLEAN


def test_two_other_strings_are_categorical() -> None:
    assert _role_of(["male", "female", "male"]).role is Role.CATEGORICAL


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (["2011-01-01", "2011-01-02", "2011-02-03"], "%Y-%m-%d"),
        (["1/31/2012", "2/1/2012", "12/25/2012"], "%m/%d/%Y"),
        (["31/01/2012", "01/02/2012", "25/12/2012"], "%d/%m/%Y"),
        (["Jan 1 2000", "Feb 1 2000", "Dec 1 2010"], "%b %d %Y"),
        (["2019-03-23 20:21:09", "2019-03-04 16:11:55", "2019-03-27 17:53:01"], "%Y-%m-%d %H:%M:%S"),
        ([19580329, 19580405, 20011229], "%Y%m%d"),
    ],
)
def test_datetime_formats(values, fmt) -> None:
    info = _role_of(values, "when")
    assert info.role is Role.DATETIME and info.datetime_format == fmt
    assert parse_datetime_column(pd.Series(values), fmt).notna().all()


def test_dates_need_95_percent_to_parse() -> None:
    values = [f"2020-01-{d:02d}" for d in range(1, 19)] + ["soon", "later"]  # 90% dates
    assert _role_of(values).role is not Role.DATETIME


def test_integers_that_are_not_dates_stay_numeric() -> None:
    assert _role_of([19581399, 19580405, 20011229]).role is Role.NUMERIC  # month 13 is no date


@needs_data
def test_roles_after_a_test_split_agree_with_the_whole_table() -> None:
    """A row number is still an ID once a test fraction is held out (it is no longer consecutive then):
    the Data page, the model's features and the ID guardrail all leave it out."""
    from automl_core.config import AutoMLConfig
    from automl_core.understand.guardrails import check_data
    from automl_core.models.metrics import resolve_metric
    from automl_core.prepare.tables import prepare

    df = read_table(DATASETS / "bike_share_daily.csv").drop(columns=["casual", "registered"])
    config = AutoMLConfig(task="regression", test_size=0.2, seed=0)
    prepared = prepare(df, "cnt", config)
    roles = {c.name: c for c in prepared.columns}
    assert roles["instant"].role is Role.ID, roles["instant"].reason
    assert roles["instant"].n_missing == 0 and roles["instant"].n_unique == len(prepared.X)  # training counts
    checks = {g.name: g for g in check_data(prepared, config, resolve_metric("auto", prepared.task), "holdout")}
    assert "instant" in checks["ID-like columns"].columns
    # the person keeps it: the override wins over the whole table's reading
    kept = prepare(df, "cnt", AutoMLConfig(task="regression", test_size=0.2, column_roles={"instant": "numeric"}))
    assert {c.name: c.role for c in kept.columns}["instant"] is Role.NUMERIC


def test_numeric_ids_by_name_and_by_consecutive_values() -> None:
    n = 100
    shuffled = np.random.default_rng(0).permutation(n) * 7 + 1000  # unique but not consecutive
    assert _role_of(shuffled, "customer_id").role is Role.ID
    assert _role_of(shuffled, "PassengerId").role is Role.ID
    assert _role_of(shuffled, "ID").role is Role.ID
    assert _role_of(shuffled, "paid").role is Role.NUMERIC  # ends in "id" but is no id
    assert _role_of(shuffled, "PID").role is Role.ID  # the housing table's parcel id
    assert _role_of(shuffled, "PAID").role is Role.NUMERIC
    assert _role_of(np.arange(1, n + 1), "instant").role is Role.ID
    assert _role_of(np.arange(1950, 1950 + n), "year").role is Role.NUMERIC
    assert _role_of(np.arange(1, n + 1) * 1.5, "x").role is Role.NUMERIC
    assert _role_of(np.arange(n) % 10, "store_id").role is Role.CATEGORICAL  # a repeated code


def test_string_id_text_categorical_and_high_cardinality() -> None:
    n = 200
    keys = [f"K{i:05d}" for i in range(n)]
    assert _role_of(keys).role is Role.ID
    sentences = [f"customer number {i} wrote a long review" for i in range(n)]
    text = _role_of(sentences)
    assert text.role is Role.TEXT and "words" in text.reason
    levels_25 = [f"level{i % 25}" for i in range(n)]
    cat = _role_of(levels_25)
    assert cat.role is Role.CATEGORICAL and "25 distinct values" in cat.reason
    assert _role_of([f"level{i % 26}" for i in range(n)]).role is Role.HIGH_CARDINALITY


def test_reasons_carry_numbers() -> None:
    info = _role_of(np.linspace(0, 1, 50))
    assert info.role is Role.NUMERIC and "50 distinct values" in info.reason


# ------------------------------------------------------------------------------ overrides and exclusions
def test_overrides_win_and_are_marked() -> None:
    df = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", "x", "y"], "d": ["2020-01-01"] * 3 + ["2020-02-01"], "y": [0, 1, 0, 1]})
    infos = {c.name: c for c in infer_roles(df, overrides={"a": Role.CATEGORICAL, "d": "DATETIME"}, exclude=["b"], target="y")}
    assert set(infos) == {"a", "d"}
    assert infos["a"].role is Role.CATEGORICAL and infos["a"].overridden and "set by the user" in infos["a"].reason
    assert infos["d"].role is Role.DATETIME and infos["d"].overridden and infos["d"].datetime_format == "%Y-%m-%d"


def test_bad_overrides_and_exclusions_are_named() -> None:
    df = pd.DataFrame({"age": [1, 2], "b": ["x", "y"]})
    with pytest.raises(AutoMLInputError, match="'agee' is not in the table.*'age'"):
        infer_roles(df, overrides={"agee": "numeric"})
    with pytest.raises(AutoMLInputError, match="unknown role 'fancy'"):
        infer_roles(df, overrides={"age": "fancy"})
    with pytest.raises(AutoMLInputError, match="'nope' is not in the table"):
        infer_roles(df, exclude=["nope"])
