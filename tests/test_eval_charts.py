"""Every evaluation and explanation figure, built from real predictions and explanations."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from automl_core.understand import evaluation as ev
from automl_core.config import AutoMLConfig
from automl_core.understand.explain import explain_model
from automl_core.prepare.featurize import build_featurizer
from automl_core.models.metrics import resolve_metric
from automl_core.prepare.tables import prepare
from shared_data import DATASETS, needs_data
from studio import eval_charts as charts

pytestmark = needs_data


@pytest.fixture(scope="module")
def german():
    """German credit (30 % bad): logistic regression on the numeric columns, held-out half."""
    df = pd.read_csv(DATASETS / "german_credit.csv")
    y = (df.pop("class") == 2).astype(int).to_numpy()  # 1 = good, 2 = bad
    X = df.select_dtypes("number").to_numpy(float)
    model = LogisticRegression(max_iter=5000).fit(X[::2], y[::2])
    return y[1::2], model.predict_proba(X[1::2]), ["good", "bad"]


@pytest.fixture(scope="module")
def housing():
    df = pd.read_csv(DATASETS / "california_housing.csv").dropna()
    X, y = df[["median_income", "housing_median_age", "latitude", "longitude"]].to_numpy(float), df["median_house_value"].to_numpy(float)
    return y[1::2], LinearRegression().fit(X[::2], y[::2]).predict(X[1::2])


def test_confusion_chart_shows_counts_or_shares(german) -> None:
    y, proba, classes = german
    cm = ev.confusion(y, proba, classes)
    (heat,) = charts.confusion_chart(cm).data
    assert heat.type == "heatmap" and np.array(heat.z).sum() == len(y) and list(heat.x) == classes
    (shares,) = charts.confusion_chart(cm, normalized=True).data
    assert np.allclose(np.array(shares.z).sum(axis=1), 1) and "%" in shares.text[0][0]


def test_curve_charts_carry_their_scores_in_the_legend(german) -> None:
    y, proba, classes = german
    roc = charts.roc_chart(ev.roc_curves(y, proba, classes))
    assert roc.data[0].name.startswith("bad (AUC 0.") and roc.data[-1].name == "chance"
    pr = charts.pr_chart(ev.pr_curves(y, proba, classes))
    assert "AP" in pr.data[0].name and pr.data[1].name.startswith("chance (")
    cal = charts.calibration_chart(ev.calibration(y, proba, classes))
    assert cal.data[0].name == "perfectly calibrated" and sum(cal.data[1].customdata) == len(y)


def test_gains_lift_per_class_and_threshold_charts(german) -> None:
    y, proba, classes = german
    g = ev.gains(y, proba, classes)
    assert charts.gains_chart(g, "gain").data[0].y[-1] == pytest.approx(1.0)
    lift = charts.gains_chart(g, "lift")
    assert lift.data[0].y[0] > 1 and list(lift.data[-1].y) == [1, 1]
    bars = charts.per_class_chart(ev.per_class(y, proba, classes))
    assert [b.name for b in bars.data] == ["precision", "recall", "f1"] and list(bars.data[0].x) == classes
    fig = charts.threshold_chart(ev.threshold_sweep(y, proba), 0.3)
    assert len(fig.data) == 4 and fig.layout.shapes[0].x0 == 0.3
    assert [t.name for t in fig.data] == ["precision", "recall", "f1", "balanced accuracy"]  # not balanced_accuracy
    # the threshold's label sits above the scores' top (1), not on curves that reach it
    top = max(max(t.y) for t in fig.data)
    assert top <= 1 and fig.layout.yaxis.range[1] >= 1.1 and max(fig.layout.yaxis.tickvals) == 1


def test_regression_charts(housing) -> None:
    y, pred = housing
    points = ev.regression_points(y, pred)
    scatter = charts.predicted_vs_true_chart(points)
    assert len(scatter.data[0].x) == ev.MAX_POINTS and scatter.data[1].name == "perfect"
    assert charts.residual_histogram(points).data[0].type == "histogram"
    assert charts.residuals_vs_predicted_chart(points).layout.yaxis.title.text.startswith("residual")
    deciles = charts.error_by_decile_chart(ev.error_by_decile(y, pred))
    assert len(deciles.data[0].x) == 10
    # the median house value is capped at 500,001: the model underestimates the top tenth most
    assert deciles.data[1].y[-1] == max(deciles.data[1].y)


def test_explanation_charts_on_a_real_explanation() -> None:
    p = prepare(DATASETS / "titanic.csv", "Survived", AutoMLConfig())
    model = Pipeline([("features", build_featurizer(p.columns, task=p.task)),
                      ("model", lgb.LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1))]).fit(p.X, p.y)
    ex = explain_model(model, p.X, p.y, columns=p.columns, task=p.task, classes=p.classes,
                       positive_class=p.positive_class, metric=resolve_metric("auto", p.task), sample_rows=300)
    bars = charts.importance_chart(ex.importance, "column")
    assert list(bars.data[0].y)[-1] == ex.importance["column"].iloc[0]  # largest drawn on top
    assert charts.importance_chart(ex.feature_importance, "feature").data[0].y[-1] == ex.feature_importance["feature"].iloc[0]
    order = list(ex.importance["column"])
    swarm = charts.beeswarm_chart(ex.values, ex.rows, order, top=5)
    assert len(swarm.data) == 5 and swarm.data[-1].name == order[0] and len(swarm.data[0].x) == 300
    numeric = charts.dependence_chart(ex.values, ex.rows, "Age")
    assert numeric.data[0].type == "scattergl"
    categorical = charts.dependence_chart(ex.values, ex.rows, "Sex")
    assert categorical.data[0].type == "box" and set(categorical.data[0].x) == {"male", "female"}
    fall = charts.waterfall_chart(ex.values[0], ex.rows.iloc[0], ex.base_value[0], ex.columns, ex.output, top=4)
    (w,) = fall.data
    assert w.y[0] == "average prediction" and w.y[-1] == "this row" and len(w.y) == 4 + 3
    assert w.x[-1] == pytest.approx(ex.base_value[0] + ex.values[0].sum())


def test_importance_axis_says_what_the_method_measured() -> None:
    # Permutation importance is a drop in the metric: the axis must not call it a contribution.
    from sklearn.neighbors import KNeighborsRegressor
    p = prepare(DATASETS / "hardware_performance_machine.csv", "ERP", AutoMLConfig())
    model = Pipeline([("features", build_featurizer(p.columns, task=p.task)), ("model", KNeighborsRegressor())]).fit(p.X, p.y)
    ex = explain_model(model, p.X, p.y, columns=p.columns, task=p.task, classes=None, positive_class=None,
                       metric=resolve_metric("auto", p.task))
    axis = charts.importance_axis(ex.method, ex.output)
    assert axis == "drop in rmse when the column is shuffled"
    assert charts.importance_chart(ex.importance, "column", axis=axis).layout.xaxis.title.text == axis
    assert charts.importance_axis("tree SHAP (LightGBM, exact)", "log-odds of '1'") == "mean |SHAP value| (log-odds of '1')"
