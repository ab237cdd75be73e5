"""The explaining stage of a real run: an ensemble winner is explained from its members' SHAP values,
the stage announces itself with events the Train page reads, keeps to its budget, and Stop ends it
without costing the model."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from automl_core.config import AutoMLConfig
from automl_core.experiment import run_experiment
from automl_core.understand.explain import explain_model
from automl_core.understand.insights import EXPLAIN_FLOOR_SECONDS, DataChecks
from automl_core.models.metrics import resolve_metric
from shared_data import DATASETS, needs_data
from storage.store import Store
from studio import live

pytestmark = needs_data

FOREST = ("random_forest", "extra_trees")


@pytest.fixture(scope="module")
def bank_run(tmp_path_factory):
    """A fixed-trial run on 3,000 bank-marketing rows whose winner is a soft-voting ensemble of
    LightGBM, extra-trees and logistic-regression members (forests explain probabilities, the others
    log-odds: before, such a winner got permutation importance only)."""
    store = Store(tmp_path_factory.mktemp("store") / "store.duckdb")
    train = pd.read_csv(DATASETS / "bank_marketing_train.csv").sample(3000, random_state=0)
    config = AutoMLConfig(time_budget=None, max_trials=10, seed=0, n_jobs=1,
                          allowed_models=("lightgbm", "extra_trees", "linear"))
    events, stages = [], []

    def listen(event):
        events.append(event)
        if event.kind == "explaining_progress" and not stages:  # what the Train page reads at this moment
            experiment_id = store.list_experiments().iloc[0]["experiment_id"]
            stages.append(live.stage(store.events(experiment_id, limit=40)))

    outcome = run_experiment(store, train, "y", config, callbacks=[listen])
    return store, outcome, events, stages


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_an_ensemble_winner_is_explained_by_its_members_weighted_shap(bank_run) -> None:
    store, outcome, _, _ = bank_run
    automl = outcome.automl
    voting = automl.model_[-1]
    assert automl.best_trial_.family == "ensemble" and type(voting).__name__ == "VotingClassifier"
    families = {m.family for m in automl.final_.members}
    assert families & set(FOREST) and families - set(FOREST)  # mixed scales
    ex = automl.explanation_
    assert ex.method.startswith("weighted member SHAP") and ex.output == "probability of 'yes'"

    # Recompute: each member explained on its own (its own explainer, same sampled rows), log-odds
    # members put on the probability scale, weighted by the ensemble's weights (rescaled over the
    # members explained, when one was too slow to explain in the budget: the note names it).
    p, n = automl.prepared_, ex.n_rows
    weights = dict(zip([name for name, _ in voting.estimators], np.asarray(voting.weights, dtype=float)))
    assert set(ex.members) <= set(weights) and len(ex.members) >= 2
    assert all(name in ex.note for name in set(weights) - set(ex.members))
    total = sum(weights[name] for name in ex.members)
    assert {name: m["weight"] for name, m in ex.members.items()} == \
        pytest.approx({name: weights[name] / total for name in ex.members}, abs=1e-5)
    expected = predicted = 0.0
    for name, member in voting.estimators:
        if name not in ex.members:
            continue
        w = weights[name] / total
        alone = Pipeline([("features", automl.model_[0]), *member.steps])
        mine = explain_model(alone, p.X, p.codes(p.y), columns=p.columns, task=p.task, classes=[0, 1],
                             positive_class=1, metric=resolve_metric("auto", p.task), budget_seconds=60)
        values, base = mine.values[:n], mine.base_value[0]
        if "Saabas" in ex.members[name]["method"]:  # in its share of the budget the forest was approximated
            values, base = _saabas(alone, ex.rows, mine.columns, p.columns)
        if not mine.output.startswith("probability"):
            margin = values.sum(axis=1)
            prob, prob0 = 1 / (1 + np.exp(-(base + margin))), 1 / (1 + np.exp(-base))
            values = values * ((prob - prob0) / np.where(margin == 0, 1, margin))[:, None]
        expected = expected + w * values
        predicted = predicted + w * alone.predict_proba(ex.rows)[:, 1]
    assert np.allclose(ex.values, expected, atol=1e-6)
    assert np.allclose(ex.importance.set_index("column").loc[ex.columns, "importance"],
                       np.abs(expected).mean(axis=0), atol=1e-6)
    # and they add up to the probability the (explained members of the) ensemble predict
    assert np.allclose(ex.values.sum(axis=1) + ex.base_value[0], predicted, atol=1e-6)
    if len(ex.members) == len(weights):
        proba = automl.model_.predict_proba(ex.rows)[:, list(automl.model_.classes_).index("yes")]
        assert np.allclose(predicted, proba, atol=1e-6)
    assert ex.importance["column"].iloc[0] == "duration"


def _saabas(pipeline, rows, raw, columns):
    """A forest member's Saabas values of class 1 on ``rows``, summed per raw column (probability)."""
    import shap
    from automl_core.prepare.featurize import feature_to_column
    Xf = pipeline[:-1].transform(rows)
    Xf = Xf.toarray() if hasattr(Xf, "toarray") else np.asarray(Xf, dtype=float)
    explainer = shap.TreeExplainer(pipeline[-1])
    values = np.asarray(explainer.shap_values(Xf, approximate=True, check_additivity=False))[:, :, 1]
    mapping = feature_to_column(pipeline[0], columns)
    names = [str(f) for f in pipeline[0].get_feature_names_out()]
    out = np.zeros((len(rows), len(raw)))
    for j, name in enumerate(names):
        out[:, raw.index(mapping[name])] += values[:, j]
    return out, float(np.atleast_1d(explainer.expected_value)[1])


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it (its module fixture trains a model)
def test_the_explaining_stage_is_announced_and_keeps_to_its_budget(bank_run) -> None:
    store, outcome, events, stages = bank_run
    kinds = [e.kind for e in events]
    started, finished = kinds.index("explaining_started"), kinds.index("explaining_finished")
    assert kinds.index("experiment_finished") < started < finished == len(kinds) - 1
    assert "explaining_progress" in kinds[started:finished]
    budget = events[started].payload["budget_seconds"]
    assert budget == pytest.approx(DataChecks.explain_budget(None, outcome.automl.config))
    # the budget is a deadline: no step of the stage starts after it (each step reports as it starts),
    # so the stage ends within one step of it; the walk's ensemble took 33 times its budget
    deadline = events[started].elapsed + budget
    steps = [e for e in events[started:finished] if e.kind == "explaining_progress" and e.payload["fraction"] < 1]
    assert steps and all(e.elapsed <= deadline + 0.01 for e in steps)
    assert events[finished].elapsed - events[started].elapsed <= 3 * budget
    assert events[finished].payload["method"].startswith("weighted member SHAP")
    # the store has them, so the Train page showed the stage by name with its progress
    assert stages and stages[0].name == "explaining" and stages[0].budget == budget
    fraction, text = live.stage_progress(stages[0])
    assert text.startswith("Explaining the model") and "at most" in text and 0 <= fraction < 1
    summary = store.get_experiment(outcome.experiment_id)["summary"]["explanations"]
    assert summary["method"] == events[finished].payload["method"] and summary["budget_seconds"] == budget


def test_explanation_budget_comes_out_of_the_run_tolerance() -> None:
    checks = DataChecks.explain_budget
    config = AutoMLConfig(time_budget=20)
    assert checks(None, config, elapsed=5.0) == pytest.approx(2.0)      # a tenth of the budget
    assert checks(None, config, elapsed=40.0) == pytest.approx(2.0)     # an overrun run: its share at least
    walk = AutoMLConfig(time_budget=45)
    assert checks(None, walk, elapsed=10.0) == pytest.approx(4.5)
    assert checks(None, walk, elapsed=46.0) == pytest.approx(3.5)       # what is left of 49.5 s
    assert checks(None, walk, elapsed=59.0) == pytest.approx(EXPLAIN_FLOOR_SECONDS)  # the walk's run had 1 s
    assert checks(None, AutoMLConfig(time_budget=600), elapsed=10.0) == pytest.approx(6.0)


def test_a_run_that_overran_its_budget_still_explains_its_model() -> None:
    """nyc_taxis at 45 s ended its refit at 59 s and was left 1 s to explain an ensemble: now the floor."""
    from automl_core import AutoML
    from automl_core.understand.insights import explain_stage
    taxis = pd.read_csv(DATASETS / "nyc_taxis.csv").sample(1500, random_state=0)
    automl = AutoML(task="regression", time_budget=45, max_trials=3, allowed_models="lightgbm,linear",
                    n_jobs=1, seed=0).fit(taxis, target="total")
    automl.clock_ = SimpleNamespace(elapsed=lambda: 59.0)  # where the walk's run was when explaining began
    events, saved = [], []
    checks = SimpleNamespace(explain_budget=lambda config, elapsed: DataChecks.explain_budget(None, config, elapsed))
    entry = explain_stage(automl, checks, events.append, saved.append)
    assert entry["budget_seconds"] == pytest.approx(EXPLAIN_FLOOR_SECONDS)
    assert "skipped" not in entry and "error" not in entry and entry["n_rows"] > 0 and saved
    assert set(saved[0].importance["column"]) >= {"fare", "tip"}


def test_stop_while_explaining_keeps_the_model(tmp_path) -> None:
    store = Store(tmp_path / "store.duckdb")
    stop = threading.Event()
    events = []

    def listen(event):
        events.append(event)
        if event.kind == "explaining_started":
            stop.set()

    # k-nearest neighbours have no SHAP explainer: permutation importance, which checks Stop per column
    config = AutoMLConfig(time_budget=None, max_trials=2, seed=0, n_jobs=1, allowed_models=("knn",), ensembles=False)
    outcome = run_experiment(store, DATASETS / "hardware_performance_machine.csv", "ERP", config,
                             callbacks=[listen], stop_event=stop)
    # the search had finished: the experiment is complete, only its explanations were skipped
    assert outcome.status == "completed" and outcome.model_path.is_file()
    finished = [e for e in events if e.kind == "explaining_finished"]
    assert finished and "stopped while explaining" in finished[0].payload["skipped"]
    assert "explanations" not in set(store.artifacts(outcome.experiment_id)["kind"])
    record = store.get_experiment(outcome.experiment_id)
    assert record["status"] == "completed" and "skipped" in record["summary"]["explanations"]
