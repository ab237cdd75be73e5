"""Data and model guardrails on real shared data: each check fires where it should, and only there."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline

from automl_core.understand import guardrails as gr
from automl_core.config import AutoMLConfig
from automl_core.prepare.featurize import build_featurizer
from automl_core.understand.leakage import probe
from automl_core.models.metrics import resolve_metric, score_all
from automl_core.prepare.tables import prepare
from shared_data import DATASETS, needs_data

pytestmark = needs_data


def _prepared(name: str, target: str, **settings):
    return prepare(DATASETS / name if isinstance(name, str) else name, target, AutoMLConfig(**settings))


def _checks(prepared, **settings) -> dict[str, gr.Guardrail]:
    config = AutoMLConfig(**settings)
    metric = resolve_metric(config.metric, prepared.task)
    found = gr.check_data(prepared, config, metric, "3-fold cross-validation (stratified)")
    assert [g.status for g in found if g.status not in (gr.PASSED, gr.DONE, gr.ALERTED)] == []
    return {g.name: g for g in found}


@pytest.fixture(scope="module")
def titanic():
    return _checks(_prepared("titanic.csv", "Survived"))


def test_leakage_flags_duration_on_bank_marketing() -> None:
    suspects = probe(_prepared("bank_marketing_train.csv", "y"))
    assert [s.column for s in suspects] == ["duration"]
    assert suspects[0].loss >= 0.1 and not suspects[0].near_perfect


def test_leakage_flags_prp_on_hardware_performance() -> None:
    checks = _checks(_prepared("hardware_performance_machine.csv", "ERP"))
    leak = checks["Target leakage"]
    assert leak.status == gr.ALERTED and leak.columns == ("PRP",)
    assert "PRP" in leak.finding and "almost perfectly" in leak.finding


def test_leakage_flags_the_fare_part_of_a_taxi_total() -> None:
    suspects = probe(_prepared("nyc_taxis.csv", "total"))
    assert "fare" in [s.column for s in suspects]


@pytest.mark.parametrize("name,target,leak", [("nyc_taxis.csv", "total", "fare"),
                                              ("bank_marketing_train.csv", "y", "duration")])
def test_wide_tables_test_only_the_columns_a_correlation_picks(monkeypatch, name, target, leak) -> None:
    """Above PRESCREEN_ABOVE columns only PRESCREEN_KEEP get the tree test, and the leak is still among them."""
    from automl_core.understand import leakage
    tested = []
    alone = leakage._alone
    monkeypatch.setattr(leakage, "PRESCREEN_ABOVE", 3)
    monkeypatch.setattr(leakage, "PRESCREEN_KEEP", 4)
    monkeypatch.setattr(leakage, "_alone", lambda part, *a: tested.append(part.shape) or alone(part, *a))
    suspects = probe(_prepared(name, target))
    assert len(tested) == 4
    assert leak in [s.column for s in suspects]


@pytest.mark.parametrize("name,target", [("diamonds.csv", "price"), ("california_housing.csv", "median_house_value"),
                                         ("breast_cancer_wisconsin.csv", "target")])
def test_no_leak_where_strong_columns_are_honest(name: str, target: str) -> None:
    assert probe(_prepared(name, target)) == []


def test_imbalance_is_flagged_on_islp_default() -> None:
    checks = _checks(_prepared("islp_default.csv", "default"), metric="average_precision")
    imbalance = checks["Class imbalance"]
    assert imbalance.status == gr.ALERTED
    assert "'Yes' has 333 rows" in imbalance.finding
    assert "Average precision (weighted) judges the rare class fairly" in imbalance.action
    assert "class_weight 'balanced'" in imbalance.action
    fooled = _checks(_prepared("islp_default.csv", "default"), metric="accuracy")["Class imbalance"]
    assert "can look good by favouring 'No'" in fooled.action


def test_balanced_classes_pass(titanic) -> None:
    assert titanic["Class imbalance"].status == gr.PASSED  # 342 of 549: 62 %


def test_missing_values_are_reported_as_imputed(titanic) -> None:
    missing = titanic["Missing values"]
    assert missing.status == gr.DONE and set(missing.columns) == {"Age", "Cabin", "Embarked"}
    assert "'Age' 177 (20%)" in missing.finding and "median" in missing.action
    assert "'Embarked' 2 (0.2%)" in missing.finding  # 2 of 891 rows read "(0%)", as if none were missing


def test_id_and_high_cardinality_columns(titanic) -> None:
    ids = titanic["ID-like columns"]
    assert ids.status == gr.DONE and "PassengerId" in ids.columns and "Dropped" in ids.action
    taxi = _checks(_prepared("nyc_taxis.csv", "total"))["High-cardinality columns"]
    assert taxi.status == gr.DONE and {"pickup_zone", "dropoff_zone"} <= set(taxi.columns)
    assert "Target-encoded" in taxi.action
    assert titanic["Constant or empty columns"].status == gr.PASSED


def test_constant_column_is_reported_dropped() -> None:
    df = pd.read_csv(DATASETS / "mpg.csv").assign(survey="1983")  # a column someone left in, always the same
    constant = _checks(prepare(df, "mpg", AutoMLConfig()))["Constant or empty columns"]
    assert constant.status == gr.DONE and constant.columns == ("survey",)


def test_tiny_data_and_the_validation_strategy() -> None:
    df = pd.read_csv(DATASETS / "hardware_performance_machine.csv").head(80)
    checks = _checks(prepare(df, "ERP", AutoMLConfig()))
    assert checks["Amount of data"].status == gr.ALERTED and "80 training rows" in checks["Amount of data"].finding
    assert checks["Validation strategy"].status == gr.DONE
    assert "3-fold cross-validation" in checks["Validation strategy"].finding
    hitters = _checks(_prepared("islp_hitters.csv", "Salary"))["Amount of data"]  # 59 rows have no Salary
    assert "263 training rows" in hitters.finding
    assert "dropped 59 of 322 rows where the target 'Salary' is missing" in hitters.finding
    big = _checks(_prepared("islp_default.csv", "default"))["Amount of data"]
    assert big.status == gr.PASSED and "10,000 training rows" in big.finding


def test_duplicates_and_train_test_overlap_on_wine_quality() -> None:
    # white wine quality has 937 exact duplicate rows: a random test split shares rows with training
    checks = _checks(_prepared("wine_quality_white.csv", "quality", test_size=0.2))
    dupes, overlap = checks["Duplicate rows"], checks["Train/test overlap"]
    assert dupes.status == gr.ALERTED and "exact copies" in dupes.finding
    assert overlap.status == gr.ALERTED and "also appear, identical, in the training data" in overlap.finding
    bank = _checks(_prepared("bank_marketing_train.csv", "y", ), )
    assert bank["Train/test overlap"].status == gr.PASSED and "No test data" in bank["Train/test overlap"].finding
    with_test = _checks(prepare(DATASETS / "bank_marketing_train.csv", "y", AutoMLConfig(),
                                test_data=DATASETS / "bank_marketing_test.csv"))["Train/test overlap"]
    assert with_test.status == gr.PASSED and "None of the 952 test rows" in with_test.finding


def _fitted(prepared, estimator) -> tuple[Pipeline, dict]:
    """A raw-column pipeline and a card with its cross-validated (validation) metrics."""
    pipe = Pipeline([("features", build_featurizer(prepared.columns, task=prepared.task)), ("model", estimator)])
    y = np.asarray(prepared.y, dtype=float)
    oof = cross_val_predict(pipe, prepared.X, y, cv=KFold(3, shuffle=True, random_state=0))
    pipe.fit(prepared.X, y)
    return pipe, {"validation": {"metrics": score_all(prepared.task, y, oof)}, "best_model": "random_forest"}


def test_overfitting_is_flagged_for_a_memorising_forest_and_not_for_a_ridge() -> None:
    wine = _prepared("wine_quality_white.csv", "quality")
    metric = resolve_metric("rmse", wine.task)
    forest, card = _fitted(wine, RandomForestRegressor(n_estimators=40, random_state=0, n_jobs=1))
    (check,) = gr.check_model(card, wine, forest, metric)
    # named as people read them: "On the training rows R² is ...; RMSE ...", not the ids r2_score / rmse
    assert check.status == gr.ALERTED and "training rows R² is" in check.finding and "; RMSE " in check.finding
    assert "r2_score" not in check.finding
    # without 'name': target-encoding a near-unique text lets training rows see their own target
    mpg = _prepared("mpg.csv", "mpg", exclude_columns=("name",))
    ridge, card = _fitted(mpg, Ridge())
    (check,) = gr.check_model(card, mpg, ridge, metric)
    assert check.status == gr.PASSED
    # the engine's own training score wins when the card has it
    card["train"] = {"score": 0.99, "metrics": {"r2_score": 0.99}}
    (check,) = gr.check_model(card, mpg, ridge, metric)
    assert check.status == gr.ALERTED and "0.990" in check.finding


def test_class_weights_of_the_best_model_are_reported_on_imbalanced_data() -> None:
    default = _prepared("islp_default.csv", "default")
    metric = resolve_metric("auto", default.task)
    card = {"best_model": "lightgbm", "hyperparameters": {"class_weight": "balanced"},
            "validation": {"metrics": {}}, "train": {"metrics": {"roc_auc": 0.96}}}
    checks = {g.name: g for g in gr.check_model(card, default, None, metric)}
    assert checks["Class weights"].status == gr.DONE and "LightGBM: class_weight 'balanced'" in checks["Class weights"].finding
    titanic = _prepared("titanic.csv", "Survived")
    assert [g.name for g in gr.check_model(card, titanic, None, metric)] == ["Overfitting"]


@pytest.mark.parametrize("rows, settings, plan", [
    (300, {}, "10-fold cross-validation — 300 rows (< 1,000)"),
    (6433, {}, "3-fold cross-validation — 6,433 rows (1,000 to 20,000)"),
    (25000, {}, "10% holdout — 25,000 rows (> 20,000)"),
    (6433, {"cv_folds": 4}, "4-fold cross-validation — as you chose"),
])
def test_the_validation_plan_names_itself_once(rows: int, settings: dict, plan: str) -> None:
    from automl_core.prepare.folds import plan_validation

    y = np.arange(rows, dtype=float)
    description = plan_validation(y, classification=False, config=AutoMLConfig(**settings)).description
    assert description.startswith(plan), description
    # "3-fold cross-validation — 6,433 rows (1,000 to 20,000): 3-fold cross-validation" said it twice
    assert description.count("cross-validation") + description.count("holdout") == 1, description
