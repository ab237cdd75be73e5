"""Tests for automl_core.prepare.featurize on real data: raw frames in, numeric matrix out, portable pickle."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from automl_core.errors import AutoMLInputError
from automl_core.prepare.featurize import (ONEHOT_MAX_CATEGORIES, TRANSFORMS, build_featurizer,
                                   feature_to_column, featurization_summary)
from automl_core.prepare.schema import ColumnInfo, Role, Task

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
pytestmark = pytest.mark.filterwarnings("error")

R = Role
TITANIC = {"PassengerId": R.ID, "Pclass": R.CATEGORICAL, "Name": R.TEXT, "Sex": R.CATEGORICAL,
           "Age": R.NUMERIC, "SibSp": R.NUMERIC, "Parch": R.NUMERIC, "Ticket": R.HIGH_CARDINALITY,
           "Fare": R.NUMERIC, "Cabin": R.HIGH_CARDINALITY, "Embarked": R.CATEGORICAL}
TAXIS = {"pickup": R.DATETIME, "dropoff": R.DATETIME, "passengers": R.NUMERIC, "distance": R.NUMERIC,
         "fare": R.NUMERIC, "tip": R.NUMERIC, "tolls": R.NUMERIC, "color": R.BOOLEAN,
         "payment": R.CATEGORICAL, "pickup_zone": R.HIGH_CARDINALITY,
         "dropoff_zone": R.HIGH_CARDINALITY, "pickup_borough": R.CATEGORICAL,
         "dropoff_borough": R.CATEGORICAL}
BANK = {c: R.CATEGORICAL for c in ["job", "marital", "education", "default", "housing", "loan",
                                    "month", "day_of_week", "poutcome"]}
BANK |= {c: R.NUMERIC for c in ["age", "duration", "campaign", "pdays", "previous", "emp.var.rate",
                                 "cons.price.idx", "cons.conf.idx", "euribor3m", "nr.employed"]}
BANK["contact"] = R.BOOLEAN  # cellular / telephone: a two-label "boolean" that is not true/false
# (file, target, roles, task, column to get an unseen level, numeric column to get "?")
CASES = {"titanic": ("titanic.csv", "Survived", TITANIC, Task.BINARY, "Sex", "Age"),
         "taxis": ("nyc_taxis.csv", "total", TAXIS, Task.REGRESSION, "pickup_zone", "distance"),
         "bank": ("bank_marketing_train.csv", "y", BANK, Task.BINARY, "job", "age")}


def infos(df: pd.DataFrame, roles: dict[str, Role]) -> list[ColumnInfo]:
    return [ColumnInfo(c, r, str(df[c].dtype), int(df[c].isna().sum()), int(df[c].nunique()))
            for c, r in roles.items()]


def load(case: str) -> tuple[pd.DataFrame, pd.Series, list[ColumnInfo], Task]:
    file, target, roles, task, _, _ = CASES[case]
    df = pd.read_csv(DATA / file)
    return df.drop(columns=[target]), df[target], infos(df, roles), task


def dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def messy(X: pd.DataFrame, cat: str, num: str) -> pd.DataFrame:
    """A raw frame as a user might upload it for prediction: unseen level, '?', NaN, reordered, extra."""
    raw = X.sample(40, random_state=1).astype(object)  # object so "?" can go into numeric columns
    raw.iloc[0, raw.columns.get_loc(cat)] = "never-seen-before"
    raw.iloc[1, raw.columns.get_loc(num)] = "?"
    raw.iloc[2, raw.columns.get_loc(num)] = " ? "
    raw.iloc[3, raw.columns.get_loc(cat)] = np.nan
    raw.iloc[4, raw.columns.get_loc(num)] = f" {raw.iloc[4, raw.columns.get_loc(num)]} "  # padded
    raw.iloc[6, :] = np.nan  # a whole row missing
    raw = raw[list(raw.columns[::-1])]  # shuffled column order
    raw["not_a_feature"] = "ignored"
    return raw


def run_isolated(tmp_path: Path, obj, frame: pd.DataFrame, method: str) -> np.ndarray:
    """joblib.dump obj, then call obj.<method>(frame) in `python -I` with cwd outside the repo."""
    joblib.dump(obj, tmp_path / "model.joblib")
    frame.to_pickle(tmp_path / "frame.pkl")
    code = ("import importlib.util, joblib, sys, numpy as np, pandas as pd\n"
            "assert importlib.util.find_spec('automl_core') is None, 'repo is importable'\n"
            "m = joblib.load('model.joblib')\n"
            f"np.save('out.npy', np.asarray(m.{method}(pd.read_pickle('frame.pkl'))))\n"
            "assert not [k for k in sys.modules if k.startswith('automl_core')]\n")
    res = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return np.load(tmp_path / "out.npy", allow_pickle=True)


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
@pytest.mark.parametrize("case", list(CASES))
def test_real_data_end_to_end(case, tmp_path):
    X, y, cols, task = load(case)
    cat, num = CASES[case][4:]
    feat = build_featurizer(cols, scale=True, task=task, seed=0)
    Xt = feat.fit_transform(X, y)
    assert Xt.shape[0] == len(X) and Xt.dtype in (np.float32, np.float64)
    assert np.isfinite(dense(Xt)).all()
    names = feat.get_feature_names_out()
    assert len(names) == Xt.shape[1] == len(set(names))
    mapping = feature_to_column(feat, cols)
    assert set(mapping) == set(names)
    kept = {r["column"] for r in featurization_summary(feat, cols) if r["n_features_out"]}
    assert set(mapping.values()) == kept

    linear = LogisticRegression(max_iter=300) if task.is_classification else Ridge()
    linear.fit(Xt, y)
    gbm = LGBMClassifier if task.is_classification else LGBMRegressor
    model = Pipeline([("featurize", feat), ("model", gbm(n_estimators=30, verbose=-1))]).fit(X, y)
    raw = messy(X, cat, num)
    out = model.predict_proba(raw) if task.is_classification else model.predict(raw)
    assert len(out) == len(raw) and np.isfinite(out).all()
    # the same rows, clean and in training order, give the same predictions as the messy frame
    # wherever the row was not deliberately damaged
    clean = model.predict_proba(X.loc[raw.index]) if task.is_classification else model.predict(X.loc[raw.index])
    np.testing.assert_allclose(out[7:], clean[7:], rtol=1e-6)
    np.testing.assert_allclose(out[4], clean[4], rtol=1e-6)  # whitespace-padded number == number

    method = "predict_proba" if task.is_classification else "predict"
    np.testing.assert_array_equal(run_isolated(tmp_path, model, raw, method), out)


def test_titanic_summary_and_widths():
    X, y, cols, _ = load("titanic")
    feat = build_featurizer(cols, scale=True).fit(X, y)
    rows = {r["column"]: r for r in featurization_summary(feat, cols)}
    assert list(rows) == list(TITANIC)
    assert rows["PassengerId"]["n_features_out"] == 0 and rows["PassengerId"]["transforms"] == "dropped"
    assert "identifier" in rows["PassengerId"]["reason"]
    assert rows["Age"]["transforms"] == "median imputation + missing indicator → standard scaling"
    assert rows["Age"]["n_features_out"] == 2
    assert rows["Fare"]["transforms"] == "median imputation → standard scaling"  # no NaN in training
    assert rows["Sex"]["n_features_out"] == 2 and "one-hot" in rows["Sex"]["transforms"]
    assert rows["Ticket"]["n_features_out"] == 1 and "target encoding" in rows["Ticket"]["transforms"]
    assert rows["Name"]["n_features_out"] == 2000 and "TF-IDF" in rows["Name"]["transforms"]
    assert all(r["role"] == TITANIC[c].value for c, r in rows.items())
    assert sum(r["n_features_out"] for r in rows.values()) == len(feat.get_feature_names_out())
    mapping = feature_to_column(feat, cols)
    assert {c for f, c in mapping.items() if "missingindicator" in f} == {"Age"}
    # TF-IDF width is bounded by text_max_features
    small = build_featurizer(cols, text_max_features=50).fit(X, y)
    assert featurization_summary(small, cols)[2]["n_features_out"] <= 50


def test_taxis_datetime_parts_and_multiclass_target_encoding():
    df = pd.read_csv(DATA / "nyc_taxis.csv").dropna(subset=["pickup_borough"])
    y = df.pop("pickup_borough")  # 4 classes
    roles = {k: v for k, v in TAXIS.items() if k != "pickup_borough"}
    cols = infos(df, roles)
    feat = build_featurizer(cols, task=Task.MULTICLASS)
    Xt = dense(feat.fit_transform(df, y))
    mapping = feature_to_column(feat, cols)
    zone = [f for f, c in mapping.items() if c == "pickup_zone"]
    assert len(zone) == y.nunique()  # one target-encoded column per class
    pick = [f.split("__", 1)[1] for f, c in mapping.items() if c == "pickup"]
    assert {"pickup_year", "pickup_month", "pickup_day", "pickup_hour", "pickup_weekday"} <= set(pick)
    names = list(feat.get_feature_names_out())
    at = {f"{mapping[f]}:{f.split('__', 1)[1]}": i for i, f in enumerate(names)}  # entry names are the engine's
    assert set(Xt[:, at["pickup:pickup_hour"]]) <= set(range(24))
    assert Xt[:, at["pickup:pickup_month"]].max() == 3  # March 2019
    row = df.head(3).copy()
    row["pickup"] = ["?", "", "2019-03-05 07:00:00"]
    out = dense(feat.transform(row))
    assert np.isfinite(out).all() and out[2, at["pickup:pickup_hour"]] == 7
    # datetime64 input (e.g. from Parquet) gives the same features as the training strings
    typed = df.head(50).assign(pickup=pd.to_datetime(df["pickup"].head(50)),
                               dropoff=pd.to_datetime(df["dropoff"].head(50)))
    np.testing.assert_array_equal(dense(feat.transform(typed)), dense(feat.transform(df.head(50))))
    LogisticRegression(max_iter=200).fit(Xt, y)
    LGBMClassifier(n_estimators=10, verbose=-1).fit(Xt, y)


def test_mode_off_is_minimal():
    X, y, cols, _ = load("titanic")
    feat = build_featurizer(cols, mode="off")
    Xt = dense(feat.fit_transform(X, y))
    rows = {r["column"]: r for r in featurization_summary(feat, cols)}
    assert rows["Name"]["n_features_out"] == 0 and "mode 'off'" in rows["Name"]["reason"]
    assert rows["Age"]["transforms"] == "median imputation" and rows["Age"]["n_features_out"] == 1
    for c in ["Sex", "Pclass", "Ticket", "Cabin", "Embarked"]:
        assert rows[c]["n_features_out"] == 1 and rows[c]["transforms"].startswith("ordinal")
    assert Xt.shape == (len(X), 9) and np.isfinite(Xt).all()
    raw = X.head(3).copy()
    raw.loc[raw.index[0], "Sex"] = "unseen"
    raw.loc[raw.index[1], "Sex"] = np.nan  # Sex had no NaN in training: unknown, like "unseen"
    raw.loc[raw.index[2], "Embarked"] = "?"  # Embarked had NaN in training: its own code
    out = dense(feat.transform(raw))
    mapping = feature_to_column(feat, cols)
    at = {mapping[f]: i for i, f in enumerate(feat.get_feature_names_out())}
    assert list(out[:2, at["Sex"]]) == [-1, -1]
    assert out[2, at["Embarked"]] == -2
    LGBMClassifier(n_estimators=10, verbose=-1).fit(Xt, y)


def test_dict_mode_overrides():
    X, y, cols, _ = load("titanic")
    mode = {"Sex": "ordinal", "Age": "drop", "Ticket": "onehot", "Name": "drop", "Pclass": "numeric",
            "Cabin": "text", "PassengerId": "numeric"}
    feat = build_featurizer(cols, mode=mode, text_max_features=20)
    Xt = feat.fit_transform(X, y)
    assert np.isfinite(dense(Xt)).all()
    rows = {r["column"]: r for r in featurization_summary(feat, cols)}
    assert rows["Age"]["n_features_out"] == 0 and "override" in rows["Age"]["reason"]
    assert rows["PassengerId"]["n_features_out"] == 1  # override beats the ID role
    assert rows["Ticket"]["n_features_out"] <= ONEHOT_MAX_CATEGORIES  # 681 levels, capped
    assert "infrequent" in " ".join(feature_to_column(feat, cols))
    assert rows["Sex"]["transforms"].startswith("ordinal") and rows["Pclass"]["n_features_out"] == 1
    assert 0 < rows["Cabin"]["n_features_out"] <= 20
    assert rows["Fare"]["n_features_out"] == 1  # not overridden: auto
    # predict without the dropped columns at all
    assert feat.transform(X.drop(columns=["Age", "Name"]).head()).shape[1] == Xt.shape[1]


@pytest.mark.parametrize("mode, words", [
    ({"Nope": "numeric"}, ["'Nope'", "Pclass"]),
    ({"Age": "log"}, ["'log'", "'Age'", ", ".join(TRANSFORMS)]),
    ("fancy", ["'fancy'", "auto"]),
])
def test_bad_modes_raise(mode, words):
    _, _, cols, _ = load("titanic")
    with pytest.raises(AutoMLInputError) as err:
        build_featurizer(cols, mode=mode)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_all_dropped_and_duplicates_raise():
    cols = [ColumnInfo("id", R.ID, "int64", 0, 10), ColumnInfo("k", R.CONSTANT, "int64", 0, 1)]
    with pytest.raises(AutoMLInputError, match="None of the 2"):
        build_featurizer(cols)
    with pytest.raises(AutoMLInputError, match="Duplicate"):
        build_featurizer([ColumnInfo("a", R.NUMERIC, "int64", 0, 3)] * 2)


def test_hostile_column_names_and_dtype_drift(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    names = ['say "hi"', "with space", "new\nline", "ünï©ødé ✓", "<script>alert(1)</script>",
             "a__b", "remainder", "verbose", "when", "bool"]
    X = pd.DataFrame({
        names[0]: rng.normal(size=n),
        names[1]: rng.choice(["red", "green", "blue"], n),
        names[2]: rng.choice(["x", "y", " ?", "NA", ""], n),
        names[3]: rng.integers(1, 4, n),  # integer-coded category
        names[4]: rng.choice(["lorem ipsum", "dolor sit amet", "consectetur"], n),
        names[5]: rng.choice([f"v{i}" for i in range(60)], n),
        names[6]: rng.normal(size=n).astype(str),  # numbers stored as strings
        names[7]: rng.choice(["a", "b"], n),
        names[8]: pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
        names[9]: rng.choice([True, False], n),
    })
    y = (X[names[0]] + (X[names[1]] == "red") > 0.5).astype(int)
    roles = [R.NUMERIC, R.CATEGORICAL, R.CATEGORICAL, R.CATEGORICAL, R.TEXT, R.HIGH_CARDINALITY,
             R.NUMERIC, R.CATEGORICAL, R.DATETIME, R.BOOLEAN]
    cols = infos(X, dict(zip(names, roles)))
    feat = build_featurizer(cols, scale=True)
    model = Pipeline([("f", feat), ("m", LGBMClassifier(n_estimators=20, verbose=-1))]).fit(X, y)
    mapping = feature_to_column(feat, cols)
    assert set(mapping.values()) == set(names)
    rows = {r["column"]: r for r in featurization_summary(feat, cols)}
    assert rows["new\nline"]["n_features_out"] == 3  # x, y, (missing): tokens are not levels
    assert rows["when"]["transforms"].startswith("parse datetime")
    assert "calendar parts (" in rows["when"]["transforms"]
    assert rows["bool"]["n_features_out"] == 1

    # prediction-time dtype drift: every column arrives in another dtype than at fit
    drift = X.head(8).copy().astype(object)
    drift[names[1]] = np.nan  # all-NaN float where training had strings
    drift[names[1]] = drift[names[1]].astype(float)
    drift[names[3]] = X[names[3]].head(8).astype(float)  # 2 -> 2.0 must still be level "2"
    drift[names[0]] = [" 1.5 ", "?", "N/A", "null", "", "3", None, "2e-1"]
    drift[names[9]] = ["yes", "no", "TRUE", "false", 1, 0, "?", np.nan]
    drift[names[8]] = np.nan
    drift = drift[names[::-1]]
    out = model.predict_proba(drift)
    assert np.isfinite(out).all()
    Xt = dense(feat.transform(drift))
    cols_out = list(feat.get_feature_names_out())
    third = [i for i, f in enumerate(cols_out) if mapping[f] == names[3]]
    np.testing.assert_array_equal(Xt[:, third], dense(feat.transform(X.head(8)))[:, third])
    booleans = Xt[:, [i for i, f in enumerate(cols_out) if mapping[f] == "bool"]]
    assert list(booleans[:6, 0]) == [1, 0, 1, 0, 1, 0]
    np.testing.assert_array_equal(run_isolated(tmp_path, model, drift, "predict_proba"), out)


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_boolean_spellings_agree(mode):
    X = pd.DataFrame({"flag": [True, False] * 50, "x": np.arange(100.0),
                      "const": 1, "empty": np.nan, "key": np.arange(100)})
    cols = [ColumnInfo("flag", R.BOOLEAN, "bool", 0, 2), ColumnInfo("x", R.NUMERIC, "float64", 0, 100),
            ColumnInfo("const", R.CONSTANT, "int64", 0, 1, reason="1 distinct value"),
            ColumnInfo("empty", R.EMPTY, "float64", 100, 0), ColumnInfo("key", R.ID, "int64", 0, 100)]
    feat = build_featurizer(cols, mode=mode).fit(X, X["x"] > 50)
    raw = pd.DataFrame({"flag": ["yes", "No", " TRUE ", "f", 1.0, 0, True, False], "x": 1.0})
    flag_idx = [i for i, f in enumerate(feat.get_feature_names_out()) if feature_to_column(feat, cols)[f] == "flag"]
    flag = dense(feat.transform(raw))[:, flag_idx[0]]
    assert list(flag) == [1, 0, 1, 0, 1, 0, 1, 0]
    rows = {r["column"]: r for r in featurization_summary(feat, cols)}
    assert rows["const"]["reason"] == "constant: a single value, carries no signal (1 distinct value)"
    assert rows["empty"]["reason"].startswith("empty") and rows["key"]["reason"].startswith("identifier")
    # reasons and structure survive clone() (as done by cross-validation / search)
    again = clone(feat).fit(X, X["x"] > 50)
    assert featurization_summary(again, cols) == featurization_summary(feat, cols)


@pytest.mark.parametrize("fmt, dtype, values", [
    ("%d/%m/%Y", "str", [" 02/01/2012", "31/01/2012", "?", None]),
    ("%Y%m%d", "int64", [20120102, 20120131, np.nan, np.nan]),
    (None, "str", ["2012-01-02", "Jan 31 2012", "N/A", ""]),
])
def test_datetime_formats_and_typed_input(fmt, dtype, values):
    cols = [ColumnInfo("d", R.DATETIME, dtype, 0, 2, datetime_format=fmt)]
    X = pd.DataFrame({"d": values})
    feat = build_featurizer(cols).fit(X)
    names = [n.split("__")[1] for n in feat.get_feature_names_out()]
    out = pd.DataFrame(dense(feat.transform(X)), columns=names)
    assert out["d_month"].tolist()[:2] == [1, 1] and out["d_day"].tolist()[:2] == [2, 31]
    assert out["missingindicator_d_year"].tolist() == [0, 0, 1, 1]
    assert "d_hour" not in names  # date-only values: no hour column
    if dtype == "str":  # the same dates as datetime64 (Parquet) give the same features
        typed = pd.DataFrame({"d": pd.to_datetime(["2012-01-02", "2012-01-31", None, None])})
        np.testing.assert_array_equal(dense(feat.transform(typed)), out.to_numpy())


def test_fitted_featurizer_holds_no_repo_objects():
    X, y, cols, _ = load("titanic")
    feat = build_featurizer(cols, scale=True).fit(X, y)
    blob = pickle.dumps(feat)
    assert b"automl_core" not in blob and b"__main__" not in blob


def test_rare_missing_values_get_no_indicator():
    """Penguins: two all-missing rows. An indicator on them would let a model memorise their species."""
    df = pd.read_csv(DATA / "penguins.csv")
    roles = {"island": R.CATEGORICAL, "bill_length_mm": R.NUMERIC, "body_mass_g": R.NUMERIC, "sex": R.CATEGORICAL}
    cols = infos(df, roles)
    assert {c.name: c.n_missing for c in cols}["bill_length_mm"] == 2
    X = df[list(roles)].copy()
    X.loc[X.index[:20], "body_mass_g"] = np.nan  # now 20 missing: worth an indicator
    cols = infos(X.assign(species=df["species"]), roles)
    feat = build_featurizer(cols).fit(X, df["species"])
    mapping = feature_to_column(feat, cols)
    assert {c for f, c in mapping.items() if "missingindicator" in f} == {"body_mass_g"}
    rows = {r["column"]: r for r in featurization_summary(feat, cols)}
    assert rows["bill_length_mm"]["transforms"] == "median imputation"
    assert rows["body_mass_g"]["transforms"] == "median imputation + missing indicator"
    out = dense(feat.transform(X.iloc[[0, 3]]))  # row 3 is all missing: imputed, not flagged
    assert np.isfinite(out).all()
