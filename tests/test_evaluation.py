"""Evaluation charts' data and honest test scores, on models fit to real shared data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

from automl_core.understand import evaluation as ev
from automl_core.models.metrics import METRICS
from automl_core.prepare.schema import Task
from shared_data import DATASETS, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def default_fit():
    """islp_default (3 % positives): logistic regression on balance + income, scored on held-out rows."""
    df = pd.read_csv(DATASETS / "islp_default.csv")
    X = df[["balance", "income"]].to_numpy(float)
    y = (df["default"] == "Yes").astype(int).to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:5000], y[:5000])
    weak = LogisticRegression().fit(X[:5000, 1:], y[:5000])  # income alone: nearly useless
    return y[5000:], model.predict_proba(X[5000:]), weak.predict_proba(X[5000:, 1:])


@pytest.fixture(scope="module")
def penguins_fit():
    df = pd.read_csv(DATASETS / "penguins.csv").dropna()
    cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    classes = sorted(df["species"].unique())
    y = df["species"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    X = df[cols].to_numpy(float)
    rng = np.random.default_rng(0)
    train = rng.random(len(y)) < 0.5
    # two columns only, so that the classes are not all perfectly separated
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X[train][:, [1, 3]], y[train])
    return y[~train], model.predict_proba(X[~train][:, [1, 3]]), classes


@pytest.fixture(scope="module")
def mpg_fit():
    df = pd.read_csv(DATASETS / "mpg.csv").dropna(subset=["horsepower"])
    X, y = df[["weight", "horsepower", "model_year"]].to_numpy(float), df["mpg"].to_numpy(float)
    model = LinearRegression().fit(X[::2], y[::2])
    return y[1::2], model.predict(X[1::2])


def test_confusion_counts_and_shares(default_fit) -> None:
    y, proba, _ = default_fit
    cm = ev.confusion(y, proba, ["No", "Yes"])
    counts = np.array(cm["counts"])
    assert counts.sum() == len(y)
    assert counts[1].sum() == y.sum()  # row = true class
    assert counts[1, 1] == ((proba[:, 1] >= 0.5) & (y == 1)).sum()
    assert np.allclose(np.array(cm["normalized"]).sum(axis=1), 1)
    lower = np.array(ev.confusion(y, proba, ["No", "Yes"], threshold=0.1)["counts"])
    assert lower[1, 1] > counts[1, 1] and lower[0, 1] > counts[0, 1]  # a lower threshold finds more positives


def test_roc_and_pr_binary_match_sklearn(default_fit) -> None:
    y, proba, _ = default_fit
    (roc,) = ev.roc_curves(y, proba, ["No", "Yes"])
    assert roc["name"] == "Yes" and roc["auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert roc["auc"] > 0.9
    (pr,) = ev.pr_curves(y, proba, ["No", "Yes"])
    assert pr["ap"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]))
    assert pr["base_rate"] == pytest.approx(y.mean()) and pr["ap"] > 3 * pr["base_rate"]


def test_multiclass_curves_have_micro_and_macro_averages(penguins_fit) -> None:
    y, proba, classes = penguins_fit
    rocs = {c["name"]: c for c in ev.roc_curves(y, proba, classes)}
    assert set(rocs) == {*classes, "micro average", "macro average"}
    per_class = [rocs[c]["auc"] for c in classes]
    assert rocs["macro average"]["auc"] == pytest.approx(np.mean(per_class))
    assert rocs["macro average"]["auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-9)
    onehot = np.eye(3)[y]
    assert rocs["micro average"]["auc"] == pytest.approx(skm.roc_auc_score(onehot, proba, average="micro"))
    prs = {c["name"]: c for c in ev.pr_curves(y, proba, classes)}
    assert prs["micro average"]["ap"] == pytest.approx(skm.average_precision_score(onehot, proba, average="micro"))


def test_calibration_of_logistic_regression_is_near_the_diagonal(default_fit) -> None:
    y, proba, _ = default_fit
    (curve,) = ev.calibration(y, proba, ["No", "Yes"])
    count = np.array(curve["count"])
    assert count.sum() == len(y)
    gap = np.abs(np.array(curve["observed"]) - np.array(curve["predicted"]))
    assert np.average(gap, weights=count) < 0.03  # logistic regression is well calibrated


def test_gains_and_lift(default_fit) -> None:
    y, proba, _ = default_fit
    (g,) = ev.gains(y, proba, ["No", "Yes"])
    assert g["gain"][-1] == pytest.approx(1.0)
    assert np.all(np.diff(g["gain"]) >= 0)
    top10 = g["share"].index(pytest.approx(0.1))
    assert g["lift"][top10] > 5  # the riskiest 10 % hold most defaulters
    assert g["lift"][top10] == pytest.approx(g["gain"][top10] / 0.1)


def test_per_class_report_matches_sklearn(penguins_fit) -> None:
    y, proba, classes = penguins_fit
    table = ev.per_class(y, proba, classes)
    p, r, f, s = skm.precision_recall_fscore_support(y, proba.argmax(1))
    assert list(table["class"]) == classes
    assert np.allclose(table["precision"], p) and np.allclose(table["recall"], r) and np.allclose(table["f1"], f)
    assert list(table["support"]) == list(s)


def test_threshold_sweep_agrees_with_the_confusion_matrix(default_fit) -> None:
    y, proba, _ = default_fit
    sweep = ev.threshold_sweep(y, proba)
    assert len(sweep) == 101 and sweep["threshold"].iloc[0] == 0 and sweep["threshold"].iloc[-1] == 1
    for t in (0.1, 0.5, 0.9):
        row = sweep.loc[np.isclose(sweep["threshold"], t)].iloc[0]
        cm = np.array(ev.confusion(y, proba, ["No", "Yes"], threshold=t)["counts"])
        assert [row.tn, row.fp, row.fn, row.tp] == cm.ravel().tolist()
        assert row.recall == pytest.approx(skm.recall_score(y, proba[:, 1] >= t))
    assert np.all(np.diff(sweep["recall"]) <= 0)
    assert sweep["tp"].iloc[0] == y.sum()


def test_regression_points_and_error_by_decile(mpg_fit) -> None:
    y, pred = mpg_fit
    points = ev.regression_points(y, pred)
    assert len(points) == len(y) and np.allclose(points["residual"], y - pred)
    table = ev.error_by_decile(y, pred)
    assert list(table["decile"]) == list(range(1, 11)) and table["n"].sum() == len(y)
    assert np.all(np.diff(table["low"]) >= 0)
    overall = np.sqrt(np.average(table["rmse"] ** 2, weights=table["n"]))
    assert overall == pytest.approx(skm.root_mean_squared_error(y, pred))
    # a linear fit of mpg underestimates the best cars: the top decile's residuals are positive
    assert table["bias"].iloc[-1] > 0
    big = ev.regression_points(np.arange(20_000.0), np.arange(20_000.0))
    assert len(big) == ev.MAX_POINTS


def test_bootstrap_interval_shrinks_with_more_test_rows(default_fit) -> None:
    y, proba, _ = default_fit
    score = ev.scorer(METRICS["roc_auc"], Task.BINARY)
    small = ev.bootstrap_interval(y[:500], proba[:500], score, n_resamples=300)
    large = ev.bootstrap_interval(y, proba, score, n_resamples=300)
    assert small.low <= small.score <= small.high and large.low <= large.score <= large.high
    assert large.score == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert (large.high - large.low) < 0.6 * (small.high - small.low)  # 10x rows: about 1/sqrt(10) as wide
    assert "95 % interval" in large.words("roc_auc") and large.words("roc_auc").startswith("ROC AUC ")  # not the id


def test_bootstrap_on_a_regression_metric(mpg_fit) -> None:
    y, pred = mpg_fit
    rmse = ev.scorer(METRICS["rmse"], Task.REGRESSION)
    interval = ev.bootstrap_interval(y, pred, rmse, n_resamples=300)
    assert interval.score == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert interval.low < interval.score < interval.high


def test_paired_bootstrap_tells_a_real_difference_from_luck(default_fit) -> None:
    y, proba, weak = default_fit
    metric = METRICS["roc_auc"]
    score = ev.scorer(metric, Task.BINARY)
    real = ev.paired_bootstrap(y, proba, weak, metric, score, name_a="balance+income", name_b="income only",
                               n_resamples=300)
    assert real.a_better is True and real.low > 0
    assert real.verdict.startswith("balance+income is better than income only") and "excludes 0" in real.verdict
    assert "income only on ROC AUC:" in real.verdict  # the metric named as people read it, not roc_auc
    # the same model with a little noise: the gap is luck of the rows
    noisy = np.clip(proba + np.random.default_rng(1).normal(0, 0.002, proba.shape), 0, 1)
    same = ev.paired_bootstrap(y, proba, noisy, metric, score, n_resamples=300)
    assert same.a_better is None and same.verdict.startswith("No real difference")
    # the comparison also runs on validation rows: it must not call them test rows
    assert "test rows" not in same.verdict and same.verdict.endswith("luck of the rows scored.")
    # for an error metric, lower wins
    rmse = METRICS["log_loss"]
    flipped = ev.paired_bootstrap(y, weak, proba, rmse, ev.scorer(rmse, Task.BINARY), name_a="weak", name_b="good",
                                  n_resamples=200)
    assert flipped.a_better is False and flipped.verdict.startswith("good is better")
