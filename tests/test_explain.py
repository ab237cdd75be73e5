"""Explanations on real shared data: SHAP values add up to the model's output, engineered features
map back to raw columns, and the fallbacks work."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor, VotingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from automl_core.config import AutoMLConfig
from automl_core.understand.explain import ExplanationStopped, explain_model, load_explanation, save_explanation
from automl_core.prepare.featurize import build_featurizer
from automl_core.models.metrics import resolve_metric
from automl_core.prepare.tables import prepare
from shared_data import DATASETS, needs_data

pytestmark = needs_data


def _fit(name: str, target: str, estimator, *, scale: bool = False, rows: int | None = None, **settings):
    p = prepare(DATASETS / name, target, AutoMLConfig(**settings))
    if rows:
        p = prepare(p.X.assign(**{target: p.y}).head(rows), target, AutoMLConfig(**settings))
    steps = [("features", build_featurizer(p.columns, task=p.task))]
    if scale:
        steps.append(("scale", StandardScaler()))
    model = Pipeline(steps + [("model", estimator)]).fit(p.X, p.y)
    return p, model


def _explain(p, model, **options):
    return explain_model(model, p.X, p.y, columns=p.columns, task=p.task, classes=p.classes,
                         positive_class=p.positive_class, metric=resolve_metric("auto", p.task), **options)


@pytest.fixture(scope="module")
def bank():
    p, model = _fit("bank_marketing_train.csv", "y", lgb.LGBMClassifier(n_estimators=80, verbose=-1, n_jobs=1))
    return p, model, _explain(p, model, sample_rows=500)


def test_lightgbm_shap_adds_up_to_the_log_odds_on_raw_columns(bank) -> None:
    p, model, ex = bank
    assert ex.method.startswith("tree SHAP (LightGBM") and ex.output == "log-odds of 'yes'"
    assert ex.values.shape == (500, len(ex.columns)) and ex.classes == ["yes"]
    margin = model.predict_proba(ex.rows)[:, list(model.classes_).index("yes")]
    log_odds = np.log(margin / (1 - margin))
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], log_odds, atol=1e-6)
    # one-hot levels of 'job' were summed into one raw column, and duration leads (it leaks)
    assert "job" in ex.columns and not any("__" in c for c in ex.columns)
    assert ex.importance["column"].iloc[0] == "duration"
    assert ex.importance["share"].sum() == pytest.approx(1.0)
    job = ex.feature_importance[ex.feature_importance["column"] == "job"]
    assert len(job) > 1 and job["feature"].str.startswith("job__").all()


def test_negative_class_as_positive_flips_the_sign() -> None:
    p, model = _fit("islp_default.csv", "default", lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1),
                    positive_class="No")
    ex = _explain(p, model, sample_rows=200)
    proba = model.predict_proba(ex.rows)[:, list(model.classes_).index("No")]
    assert ex.output == "log-odds of 'No'"
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], np.log(proba / (1 - proba)), atol=1e-6)


def test_multiclass_values_per_class() -> None:
    p, model = _fit("penguins.csv", "species", lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1))
    ex = _explain(p, model)
    assert ex.values.shape == (len(p.X), 3, len(ex.columns)) and ex.classes == [str(c) for c in p.classes]
    raw = model.predict(ex.rows, raw_score=True)  # (n, K) in model.classes_ order (= p.classes, sorted)
    assert np.allclose(ex.values.sum(axis=2) + np.array(ex.base_value), raw, atol=1e-6)


def test_linear_model_contributions_are_exact() -> None:
    p, model = _fit("mpg.csv", "mpg", Ridge(), scale=True, exclude_columns=("name",))
    ex = _explain(p, model)
    assert ex.method == "exact (linear coefficients)"
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], model.predict(ex.rows))
    assert set(ex.importance["column"].head(3)) & {"weight", "model_year", "horsepower", "displacement"}


def test_binary_logistic_regression() -> None:
    p, model = _fit("breast_cancer_wisconsin.csv", "target", LogisticRegression(max_iter=2000), scale=True)
    ex = _explain(p, model)
    pos = list(model.classes_).index(p.positive_class)
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], model.decision_function(ex.rows) * (1 if pos == 1 else -1))


def test_forest_uses_tree_shap_in_probability_within_the_budget() -> None:
    p, model = _fit("titanic.csv", "Survived", RandomForestClassifier(n_estimators=30, min_samples_leaf=3,
                                                                     random_state=0, n_jobs=1))
    ex = _explain(p, model, sample_rows=300)
    assert ex.method.startswith("tree SHAP (shap.TreeExplainer") and ex.output.startswith("probability of")
    proba = model.predict_proba(ex.rows)[:, list(model.classes_).index(p.positive_class)]
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], proba, atol=1e-6)
    assert ex.importance["column"].iloc[0] in ("Sex", "Name", "Fare", "Ticket")
    # with no time at all nothing is explained (before, one full round of permutation ran past the budget)
    with pytest.raises(ExplanationStopped, match="budget ran out before anything was explained"):
        _explain(p, model, sample_rows=300, budget_seconds=1e-6)


def test_a_deep_forest_gets_saabas_values_instead_of_minutes_of_exact_shap() -> None:
    # Full-depth trees on diamonds: exact tree SHAP took ~3 s a row (the bench's 217 s explanation);
    # the path attribution still adds up to every prediction.
    p, model = _fit("diamonds.csv", "price", RandomForestRegressor(n_estimators=20, random_state=0, n_jobs=2),
                    rows=20000)
    ex = _explain(p, model, sample_rows=1000, budget_seconds=4.0)
    assert "Saabas" in ex.method and ex.n_rows >= 100
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], model.predict(ex.rows), rtol=1e-6, atol=1e-3)
    assert ex.importance["column"].iloc[0] in ("carat", "x", "y", "z")


def test_permutation_keeps_to_its_budget_on_a_slow_pipeline() -> None:
    import time
    p, model = _fit("hardware_performance_machine.csv", "ERP", KNeighborsRegressor(), scale=True)
    slow_predict = model.predict
    calls = []

    def predict(X):  # at least 0.05 s a call, as an ensemble of many members costs
        calls.append(len(X))
        time.sleep(0.05)
        return slow_predict(X)

    model.predict = predict
    ex = _explain(p, model, budget_seconds=0.8)
    # The deadline is checked before every shuffled column, so the work ends within one call
    # (0.05 s plus the model's own time) of the 0.8 s; without the budget: three repeats of every column.
    assert ex.method.startswith("permutation") and len(calls) < 3 * len(ex.columns) + 3
    assert ex.seconds < 0.8 + 0.05 + 0.2
    assert ex.importance["importance"].iloc[0] > 0


def test_knn_falls_back_to_permutation_importance() -> None:
    p, model = _fit("hardware_performance_machine.csv", "ERP", KNeighborsRegressor(), scale=True)
    ex = _explain(p, model)
    assert ex.method.startswith("permutation importance") and ex.values is None and ex.rows is None
    assert ex.output == "drop in rmse when the column is shuffled"
    assert ex.importance["column"].iloc[0] in ("PRP", "MMAX", "MMIN", "CACH")
    assert ex.importance["importance"].iloc[0] > 0


def test_voting_regressor_combines_member_shap_by_weight() -> None:
    p = prepare(DATASETS / "diamonds.csv", "price", AutoMLConfig())
    rows = np.arange(4000)
    features = build_featurizer(p.columns, task=p.task)
    members = [("lgbm", Pipeline([("model", lgb.LGBMRegressor(n_estimators=50, verbose=-1, n_jobs=1))])),
               ("ridge", Pipeline([("scale", StandardScaler()), ("model", Ridge())]))]
    model = Pipeline([("features", features), ("model", VotingRegressor(members, weights=[3, 1]))])
    model.fit(p.X.iloc[rows], p.y[rows])
    ex = explain_model(model, p.X.iloc[rows], p.y[rows], columns=p.columns, task=p.task, classes=None,
                       positive_class=None, metric=resolve_metric("auto", p.task), sample_rows=300)
    assert ex.method.startswith("weighted member SHAP (2 members")
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], model.predict(ex.rows), rtol=1e-6, atol=1e-3)
    assert ex.importance["column"].iloc[0] in ("carat", "x", "y", "z")


def test_explanation_round_trips_through_its_files(bank, tmp_path) -> None:
    _, _, ex = bank
    paths = save_explanation(ex, tmp_path)
    assert [q.name for q in paths] == ["explanations.json", "explanations.parquet"]
    back = load_explanation(tmp_path)
    assert back.method == ex.method and back.columns == ex.columns and back.classes == ex.classes
    assert np.allclose(back.values, ex.values)
    assert back.rows["job"].tolist() == ex.rows["job"].astype(str).tolist()
    assert back.importance.equals(ex.importance)
    assert load_explanation(tmp_path / "nothing-here") is None


def _voting_classifier(p, members, rows=3000):
    from sklearn.ensemble import VotingClassifier
    model = Pipeline([("features", build_featurizer(p.columns, task=p.task)),
                      ("model", VotingClassifier(members, voting="soft", weights=[2, 1]))])
    return model.fit(p.X.iloc[:rows], p.y[:rows])


def _proba_of(model, rows, label):
    return model.predict_proba(rows)[:, [str(c) for c in model.classes_].index(str(label))]


def test_soft_voting_classifier_of_log_odds_members_adds_up_to_its_probability() -> None:
    p = prepare(DATASETS / "islp_default.csv", "default", AutoMLConfig())
    members = [("trial_3", Pipeline([("model", lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1))])),
               ("trial_7", Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]))]
    model = _voting_classifier(p, members)
    ex = _explain(p, model, sample_rows=300)
    assert ex.method.startswith("weighted member SHAP (2 members") and ex.output == "probability of 'Yes'"
    # the members' log-odds contributions, each put on the probability scale, weighted 2:1, add up
    # to the probability the ensemble itself predicts
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], _proba_of(model, ex.rows, "Yes"), atol=1e-6)
    assert ex.importance["column"].iloc[0] == "balance"


def test_voting_classifier_mixing_forests_and_boosting_is_explained_by_its_members() -> None:
    p = prepare(DATASETS / "islp_default.csv", "default", AutoMLConfig())
    members = [("trial_1", Pipeline([("model", lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1))])),
               ("trial_2", Pipeline([("model", RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=1))]))]
    model = _voting_classifier(p, members)
    ex = _explain(p, model, sample_rows=300)
    assert ex.method.startswith("weighted member SHAP") and ex.output == "probability of 'Yes'"
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], _proba_of(model, ex.rows, "Yes"), atol=1e-6)
    assert ex.importance["column"].iloc[0] == "balance"


def test_stacking_regressor_is_explained_through_its_learner() -> None:
    from sklearn.ensemble import StackingRegressor
    from sklearn.linear_model import LinearRegression
    p = prepare(DATASETS / "diamonds.csv", "price", AutoMLConfig())
    rows = np.arange(3000)
    members = [("trial_1", Pipeline([("model", lgb.LGBMRegressor(n_estimators=40, verbose=-1, n_jobs=1))])),
               ("trial_2", Pipeline([("scale", StandardScaler()), ("model", Ridge())]))]
    model = Pipeline([("features", build_featurizer(p.columns, task=p.task)),
                      ("model", StackingRegressor(members, final_estimator=LinearRegression(), cv=3))])
    model.fit(p.X.iloc[rows], p.y[rows])
    ex = explain_model(model, p.X.iloc[rows], p.y[rows], columns=p.columns, task=p.task, classes=None,
                       positive_class=None, metric=resolve_metric("auto", p.task), sample_rows=300)
    assert ex.method.startswith("member SHAP through the stacking learner (2 members")
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], model.predict(ex.rows), rtol=1e-6, atol=1e-2)
    assert ex.importance["column"].iloc[0] in ("carat", "x", "y", "z")


@pytest.mark.parametrize("name, target", [("islp_default.csv", "default"), ("penguins.csv", "species")])
def test_stacking_classifier_values_add_up_to_its_learners_log_odds(name, target) -> None:
    from sklearn.ensemble import StackingClassifier
    p = prepare(DATASETS / name, target, AutoMLConfig())
    rows = np.arange(min(3000, len(p.X)))
    members = [("trial_1", Pipeline([("model", lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1))])),
               ("trial_2", Pipeline([("model", RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0,
                                                                       n_jobs=1))]))]
    model = Pipeline([("features", build_featurizer(p.columns, task=p.task)),
                      ("model", StackingClassifier(members, final_estimator=LogisticRegression(), cv=3,
                                                   stack_method="predict_proba"))])
    model.fit(p.X.iloc[rows], p.y[rows])
    ex = _explain(p, model, sample_rows=200)
    assert ex.method.startswith("member SHAP through the stacking learner (2 members")
    stack = model[-1]
    margin = stack.final_estimator_.decision_function(stack.transform(model[0].transform(ex.rows)))
    if margin.ndim == 1:  # binary: the learner's log-odds of classes_[1]
        sign = 1.0 if str(stack.classes_[1]) == str(p.positive_class) else -1.0
        assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], sign * margin, atol=1e-6)
    else:
        order = [[str(c) for c in stack.classes_].index(str(c)) for c in ex.classes]
        assert np.allclose(ex.values.sum(axis=2) + np.asarray(ex.base_value), margin[:, order], atol=1e-6)
