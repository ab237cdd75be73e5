"""The final stage: a bag of the k fold models the search already fit, or a refit on all rows (issue #25
item 2), chosen by the rule in search/bag.py; and a final stage that fits nothing it has no time for
(issue #21: the run's wall time stays within the budget). No test here measures seconds: the time left
is set against the trials' measured fit times, and fits that must not happen raise."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.export.codegen import generate, member_model
from automl_core.export.onnx import export_onnx
from automl_core.models.families import bag_folds
from automl_core.models.metrics import METRICS
from automl_core.search import bag as bag_mod
from automl_core.search import finalize
from automl_core.search.book import Running, TrialBook
from automl_core.search.finalize import FinalChoice, fit_final, label_order
from automl_core.search.results import TrialOutcome, TrialSpec
from shared_data import DATASETS, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def penguins():
    df = pd.read_csv(DATASETS / "penguins.csv")
    automl = AutoML(max_trials=4, time_budget=None, seed=0, n_jobs=1, cv_folds=4, final_model="bag",
                    allowed_models=("lightgbm", "linear"))
    automl._keep_fold_models = True  # the tests below make other final models of the same search
    return automl.fit(df, "species"), df


def _geometric_mean(probas: list[np.ndarray]) -> np.ndarray:
    logp = np.mean([np.log(np.clip(p, bag_mod.PROB_FLOOR, 1.0 - bag_mod.PROB_FLOOR)) for p in probas], axis=0)
    out = np.exp(logp)
    return out / out.sum(axis=1, keepdims=True)


def _parts(a):
    y_oof = a._y_codes[np.concatenate([v for _, v in a.validation_.splits])]
    return y_oof, label_order(a.prepared_.classes, a.prepared_.y)


def _no_fitting(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the final stage fit a model it had no time for")
    monkeypatch.setattr(finalize, "refit", refuse)
    monkeypatch.setattr(finalize, "model_steps", refuse)


@pytest.mark.slow  # a fresh interpreter loads the model (about 20 s on two busy cores)
def test_the_bag_pools_its_fold_models_and_loads_without_this_repo(penguins, tmp_path) -> None:
    a, df = penguins
    X = df.drop(columns="species")
    folds = bag_folds(a.model_)
    assert a.card_["final_model"] == "bag" and len(folds) == 4
    assert "features" not in a.model_.named_steps and all("features" in f.named_steps for f in folds)
    # log loss (multiclass's default metric): the bag's probabilities are the normalised geometric mean of
    # its folds' (each fold model predicts the classes in code order)
    assert a.card_["bag_pool"] == "geometric"
    np.testing.assert_allclose(a.model_.predict_proba(X), _geometric_mean([f.predict_proba(X) for f in folds]),
                               atol=1e-12)
    assert list(a.model_.classes_) == a.prepared_.classes and set(a.predict(X)) <= set(df["species"])
    # its validation score is the trials' out-of-fold score: the bag is what made those predictions
    assert a.card_["validation"]["score"] == a.best_trial_.score
    model_path, _ = a.save(tmp_path / "model")
    X.head(20).to_csv(tmp_path / "rows.csv", index=False)
    script = ("import joblib, json, sys, pandas as pd\n"
              "print(json.dumps(joblib.load(sys.argv[1]).predict_proba(pd.read_csv(sys.argv[2])).tolist()))\n")
    # -I: isolated mode, so this repository cannot be imported: the file holds public classes only
    out = subprocess.run([sys.executable, "-I", "-c", script, str(model_path), str(tmp_path / "rows.csv")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(json.loads(out.stdout), a.model_.predict_proba(X.head(20)), atol=1e-9)


def test_a_bag_is_explained_summarised_and_says_why_it_has_no_onnx(penguins) -> None:
    a, df = penguins
    assert a.card_["featurization"] and a.card_["profile"]  # read from the first fold's featurizer
    exported = export_onnx(a.model_, a.card_, df.head(5))
    assert not exported.ok and "fold models" in exported.reason and "final_model='refit'" in exported.reason
    if a.card_["members"]:  # an ensemble: each member's code, from the first fold
        model, card = member_model(a.model_, a.card_, a.card_["members"][0]["trial_id"])
        assert "build_pipeline" in generate(model, card).train_py
    else:
        code = generate(a.model_, a.card_).train_py
        assert "refits the same configuration on all rows" in code
    explanation = a.explain(budget_seconds=20)
    assert "pools 4 fold models" in explanation.note and explanation.importance["importance"].sum() > 0


def test_no_time_to_refit_keeps_the_fold_models_and_fits_nothing(penguins, monkeypatch) -> None:
    a, _ = penguins
    y_oof, order = _parts(a)
    best = a.search_.best
    measured = finalize.RESERVE_MARGIN * (a._cost.single(best) + a._cost.featurize_seconds)
    _no_fitting(monkeypatch)
    model, choice = fit_final(a._refit_data, FinalChoice(best), a.search_.oof, y_oof, order, 1, 0, best=best,
                              cost=a._cost, seconds_left=0.5 * measured, bagger=a._bagger, mode="auto")
    assert choice.final == "bag" and bag_folds(model) is not None and "were left" in choice.note


def test_the_first_member_is_not_fit_when_its_measured_cost_exceeds_the_time_left(penguins, monkeypatch) -> None:
    a, _ = penguins
    y_oof, order = _parts(a)
    ok = sorted((t for t in a.search_.trials if t.status == "ok"), key=lambda t: a.metric_.loss(t.score))
    members = ok[:2]
    row = FinalChoice(finalize.TrialResult(99, "ensemble", {"members": [m.trial_id for m in members]}, "ok",
                                           ok[0].score), members, [0.5, 0.5])
    first = a._cost.single(members[0]) + a._cost.featurize_seconds
    _no_fitting(monkeypatch)
    # the members' fold models were kept: the ensemble is bagged, nothing is fit
    model, choice = fit_final(a._refit_data, row, a.search_.oof, y_oof, order, 1, 0, best=ok[0], cost=a._cost,
                              seconds_left=0.5 * first, bagger=a._bagger, mode="auto",
                              row_oof=np.mean([a.search_.oof[m.trial_id] for m in members], axis=0))
    assert choice.final == "bag" and choice.members == members and len(bag_folds(model)) == 4
    # without fold models (hold-out validation), the check before the first member sends it to the one
    # fit that is unavoidable: the best single model; no member is fit first
    refits = []
    monkeypatch.setattr(finalize, "refit", lambda data, family, params, *rest: refits.append(family) or "refit")
    model, choice = fit_final(a._refit_data, row, a.search_.oof, y_oof, order, 1, 0, best=ok[0], cost=a._cost,
                              seconds_left=0.5 * first, bagger=None, mode="auto")
    assert model == "refit" and refits == [ok[0].family] and choice.row is ok[0]
    assert "longer than the time left" in choice.note


def test_the_rule_bags_on_the_fold_models_spread_and_refits_otherwise(penguins, monkeypatch) -> None:
    a, _ = penguins
    y_oof, _ = _parts(a)
    best = a.search_.best
    oof = a.search_.oof[best.trial_id]
    share = a._bagger.ambiguity([best.trial_id], None, oof, y_oof)
    assert 0.0 <= share < 1.0
    for spread, expected in ((bag_mod.MIN_AMBIGUITY * 2, "bag"), (bag_mod.MIN_AMBIGUITY / 2, "refit")):
        monkeypatch.setattr(bag_mod.Bagger, "ambiguity", lambda self, *args, s=spread: s)
        assert bag_mod.decide("auto", a._bagger, [best.trial_id], None, 1.0, 100.0, oof, y_oof)[0] == expected
    # time for the refit but not for measuring the spread as well: nothing is measured, the bag is kept
    monkeypatch.setattr(bag_mod.Bagger, "ambiguity", lambda self, *args: pytest.fail("measured the spread"))
    assert bag_mod.decide("auto", a._bagger, [best.trial_id], None, 1.0, 1.5, oof, y_oof, spread_cost=1.0)[0] == "bag"
    assert bag_mod.spread_seconds(a._bagger.k, [best], a._cost.featurize_seconds, a._cost.n_rows) > 0
    assert bag_mod.decide("refit", a._bagger, [best.trial_id], None, 1e9, 0.0, oof, y_oof)[0] == "refit"
    assert bag_mod.decide("auto", None, [best.trial_id], None, 1e9, 0.0, oof, y_oof)[0] == "refit"
    assert not a._bagger.available(best.trial_id, 10**6)  # a member without fold models: no bag


def test_fold_models_are_kept_for_a_few_of_the_best_trials_within_a_memory_bound(monkeypatch) -> None:
    from automl_core.search import book as book_mod

    class Scheduler:
        def tell(self, *args, **kwargs):
            pass

    monkeypatch.setattr(book_mod, "BAG_MEMORY_BYTES", 250)
    book = TrialBook(METRICS["rmse"], Scheduler(), lambda *a, **k: None, lambda: 0.0, oof={})
    for trial_id, (rmse, size) in enumerate([(5.0, 100), (4.0, 100), (3.0, 100), (6.0, 10)], start=1):
        spec = TrialSpec("data", trial_id, "linear", {}, 1, 0)
        book.record(Running(spec, 0.0, 1.0), TrialOutcome(trial_id, "ok", metrics={"rmse": rmse}, oof=np.zeros(3),
                                                          fold_models=("fold",), fold_bytes=size))
    # best first while the bytes add up to at most 250: trial 1 went when 3 came, 4 fits beside 3 and 2
    assert sorted(book.fold_models) == [2, 3, 4]


def test_a_regression_bag_of_one_linear_model_is_explained() -> None:
    """A regression has no explained class: the bag's first fold (a one-member Voting) used to fail with an
    IndexError while naming its output (seen on hardware_performance_machine in the browser test)."""
    df = pd.read_csv(DATASETS / "hardware_performance_machine.csv")
    a = AutoML(max_trials=2, time_budget=None, seed=0, allowed_models=("linear",), final_model="bag",
               ensembles=False).fit(df, target="ERP")
    assert bag_folds(a.model_) is not None
    explanation = a.explain(budget_seconds=20)
    assert "first of them" in explanation.note and explanation.importance["importance"].sum() > 0


def _small_bagger(load, pool: str, k: int = 3) -> tuple[bag_mod.Bagger, pd.DataFrame, np.ndarray]:
    """A bag of k fold models fit by hand on a scikit-learn set (labels as strings, fold models on codes):
    a shallow tree in fold 1 (probabilities of exactly 0, which the pool must clip), logistic regressions after."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier
    from automl_core.prepare.schema import Task
    X, y = load(return_X_y=True, as_frame=True)
    labels = np.array([f"class_{v}" for v in y], dtype=object)
    classes = sorted(set(labels))
    codes = np.searchsorted(classes, labels)
    featurizers, folds = [], []
    for i, (fit_rows, _) in enumerate(StratifiedKFold(k, shuffle=True, random_state=0).split(X, codes)):
        featurizer = ColumnTransformer([("numeric", StandardScaler(), list(X.columns))]).fit(X.iloc[fit_rows])
        model = DecisionTreeClassifier(max_depth=3, random_state=0) if i == 0 else LogisticRegression(max_iter=500)
        folds.append([("model", model.fit(featurizer.transform(X.iloc[fit_rows]), codes[fit_rows]))])
        featurizers.append(featurizer)
    task = Task.BINARY if len(classes) == 2 else Task.MULTICLASS
    return bag_mod.Bagger(featurizers, {1: (folds, 0)}, task, classes, X, labels, pool=pool), X, labels


@pytest.mark.parametrize("load", ["load_wine", "load_breast_cancer"])
def test_the_geometric_pool_is_the_normalised_geometric_mean_of_the_folds_and_pickles(load, tmp_path) -> None:
    import pickle
    import sklearn.datasets
    from automl_core.models.families import bag_pool
    bagger, X, labels = _small_bagger(getattr(sklearn.datasets, load), "geometric")
    model = bagger.pipeline([1])
    folds = bag_folds(model)
    probas = [f.predict_proba(X) for f in folds]
    assert bag_pool(model) == "geometric" and len(folds) == 3 and (probas[0] == 0).any()  # the tree's zeros
    expected = _geometric_mean(probas)
    # binary: stacking keeps p1 only, and 1 - p1 near 1 holds ~1e-16 absolute, so the smaller class's
    # probability carries that error (1e-9 at 1e-6); multiclass uses every column
    tolerance = 1e-8 if len(bagger.classes) == 2 else 1e-12
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=0, atol=tolerance)
    assert list(model.classes_) == bagger.classes
    assert (model.predict(X) == np.asarray(bagger.classes, dtype=object)[expected.argmax(axis=1)]).all()
    assert (model.predict(X) == labels).mean() > 0.9
    # not the arithmetic mean: the pool follows the confident folds
    assert not np.allclose(model.predict_proba(X), np.mean(probas, axis=0), atol=1e-3)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # model.json's package list names every package the pickle needs (a binary pool's logit is scipy's ufunc)
    from automl_core.export.artifacts import required_packages
    packages = set(required_packages(model))
    assert "scikit-learn" in packages and ("scipy" in packages or len(bagger.classes) > 2)
    # the same folds under another metric: soft voting, the arithmetic mean
    mean_bag = _small_bagger(getattr(sklearn.datasets, load), "mean")[0].pipeline([1])
    assert bag_pool(mean_bag) == "mean"
    np.testing.assert_allclose(mean_bag.predict_proba(X), np.mean(probas, axis=0), atol=1e-12)


def test_the_geometric_pool_is_chosen_for_classifiers_under_log_loss_only() -> None:
    from automl_core.prepare.schema import Task
    assert bag_mod.pool_for("log_loss", Task.MULTICLASS) == "geometric"
    assert bag_mod.pool_for("log_loss", Task.BINARY) == "geometric"
    for metric, task in (("roc_auc", Task.BINARY), ("accuracy", Task.MULTICLASS), ("rmse", Task.REGRESSION)):
        assert bag_mod.pool_for(metric, task) == "mean"


@pytest.mark.slow  # a 4-trial search on scikit-learn's wine (10 folds): 34 s under load 11 (2 cores)
def test_a_short_log_loss_run_on_wine_saves_a_geometric_bag_when_the_rule_bags() -> None:
    """Wine, 4 trials of LightGBM and linear models: the fold models disagree (squared spread 8.4 % of their
    error), so the rule bags (``final_model="auto"``); under log loss that bag is the geometric pool."""
    from sklearn.datasets import load_wine
    from automl_core.models.families import bag_pool
    df = load_wine(as_frame=True).frame
    a = AutoML(max_trials=4, time_budget=None, seed=0, metric="log_loss",
               allowed_models=("lightgbm", "linear")).fit(df, target="target")
    assert a.final_.final == "bag", a.final_.note
    assert a.card_["bag_pool"] == bag_pool(a.model_) == "geometric" and "geometric mean" in a.final_.note
    X = df.drop(columns="target")
    np.testing.assert_allclose(a.model_.predict_proba(X),
                               _geometric_mean([f.predict_proba(X) for f in bag_folds(a.model_)]), atol=1e-12)
