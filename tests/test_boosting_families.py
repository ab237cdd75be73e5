"""XGBoost and CatBoost through the whole product: the search, model.json's packages, ONNX, generated code."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.export.codegen import generate
from automl_core.export.onnx import export_onnx
from automl_core.export.predict import load_model

PACKAGE = {"xgboost": "xgboost-cpu", "catboost": "catboost"}
CASES = [("xgboost", "penguins.csv", "species"), ("catboost", "penguins.csv", "species"),
         ("xgboost", "mpg.csv", "mpg"), ("catboost", "mpg.csv", "mpg")]


def _fit(family: str, df: pd.DataFrame, target: str) -> AutoML:
    return AutoML(time_budget=None, max_trials=1, allowed_models=(family,), ensembles=False, n_jobs=1,
                  final_model="refit", seed=0).fit(df, target=target)


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
@pytest.mark.parametrize("family,file,target", CASES, ids=[f"{c[0]}-{c[1][:-4]}" for c in CASES])
def test_saved_model_lists_its_package_and_exports_to_onnx_with_parity(family, file, target, shared, tmp_path):
    df = pd.read_csv(shared / file).sample(frac=1.0, random_state=0).head(240).reset_index(drop=True)
    automl = _fit(family, df, target)
    assert automl.best_trial_.family == family
    assert automl.best_trial_.params["n_estimators"] < 3000  # early stopping on the validation folds set it
    _, card_path = automl.save(tmp_path / "model")
    card = json.loads(card_path.read_text())
    assert PACKAGE[family] in card["packages"]
    result = export_onnx(automl.model_, automl.card_, df.drop(columns=target))
    assert result.ok, result.reason
    if automl.task_.is_classification:
        assert result.max_abs_diff < 1e-5 and result.label_agreement == 1.0
    else:  # float32 inside ONNX: relative to mpg values of 10-45
        assert result.max_abs_diff < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("family", ["xgboost", "catboost"])
def test_generated_code_reproduces_the_score_with_padded_labels(family, shared, tmp_path):
    df = pd.read_csv(shared / "bank_marketing_validation.csv").head(600)
    df["y"] = " " + df["y"]
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    automl = _fit(family, pd.read_csv(data), "y")
    automl.save(tmp_path / "model")
    model, card = load_model(tmp_path / "model" / "model.joblib")
    code = generate(model, card)
    (tmp_path / "train.py").write_text(code.train_py)
    assert PACKAGE[family] in code.requirements_txt
    result = subprocess.run([sys.executable, "-I", "train.py", str(data), "--out", str(tmp_path / "again.joblib")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["validation_score"] == pytest.approx(card["validation"]["score"], abs=1e-9)
    again = __import__("joblib").load(tmp_path / "again.joblib")
    X = df.drop(columns="y")
    assert list(again.classes_) == [" no", " yes"]
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-12)


def test_a_family_outside_the_portfolio_starts_from_its_defaults_after_it():
    from automl_core.models.families import FAMILIES
    from automl_core.search.scheduler import Scheduler
    from automl_core.prepare.schema import Task
    lightgbm = {"learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20, "subsample": 1.0,
                "colsample_bytree": 1.0, "reg_alpha": 1e-8, "reg_lambda": 1e-8, "class_weight": "none"}
    families = [FAMILIES["lightgbm"], FAMILIES["catboost"], FAMILIES["xgboost"]]
    # a portfolio without CatBoost and XGBoost (portfolio.json's own content is mined, see bench/mine_portfolio.py)
    scheduler = Scheduler(families, Task.BINARY, {"lightgbm": [lightgbm]}, seed=0, deterministic=True)
    assert scheduler.next(1)[0] == "lightgbm"  # the portfolio first
    scheduler.tell("lightgbm", 1, 0.4, 1.0)
    picked = {}
    for trial_id in (2, 3):
        family, params = scheduler.next(trial_id)
        picked[family] = params
        scheduler.tell(family, trial_id, 0.5, 1.0)
    assert picked == {name: FAMILIES[name].defaults for name in ("catboost", "xgboost")}


@pytest.mark.parametrize("family", ["xgboost", "catboost"])
def test_explanations_are_the_librarys_exact_tree_shap_and_add_up(family, shared):
    df = pd.read_csv(shared / "bank_marketing_validation.csv").head(300)
    df["y"] = " " + df["y"]
    automl = _fit(family, df, "y")
    ex = automl.explain(budget_seconds=30)
    assert ex.method == f"tree SHAP ({'XGBoost' if family == 'xgboost' else 'CatBoost'}, exact)"
    assert ex.output == "log-odds of ' yes'"
    proba = automl.model_.predict_proba(ex.rows)[:, list(automl.classes_).index(" yes")]
    np.testing.assert_allclose(ex.values.sum(axis=1) + ex.base_value[0], np.log(proba / (1 - proba)), atol=1e-4)


@pytest.mark.parametrize("family", ["xgboost", "catboost"])
def test_per_row_contributions_at_prediction_add_up(family, shared):
    from automl_core.export.predict import predict_frame
    df = pd.read_csv(shared / "mpg.csv").sample(frac=1.0, random_state=0).head(240)
    automl = _fit(family, df, "mpg")
    rows = df.drop(columns="mpg").head(40)
    k = len(automl.card_["features"])
    out = predict_frame(automl.model_, automl.card_, rows, top_k=k)
    total = out[[c for c in out.columns if c.endswith("_contribution")]].fillna(0).sum(axis=1)
    bias = out["prediction"] - total  # the library's expected value, the same for every row
    assert bias.std() < 1e-3 and out["top1_column"].notna().all()
