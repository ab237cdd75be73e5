"""A whole experiment records its guardrails (data ones before the search starts) and explanations."""
from __future__ import annotations

import pytest

from automl_core import AutoML
from automl_core.config import AutoMLConfig
from automl_core.experiment import run_experiment
from automl_core.understand.explain import load_explanation
from shared_data import DATASETS, needs_data
from storage import Store

pytestmark = needs_data


def test_data_guardrails_are_stored_before_the_search_and_get_the_validation_plan(private_store) -> None:
    from automl_core.understand.insights import DataChecks
    from automl_core.models.metrics import resolve_metric
    from automl_core.prepare.tables import prepare
    from automl_core.search.results import Event

    store = Store(private_store)
    exp_id = store.create_experiment("hardware", dataset_id=None, task="regression", metric="rmse", config={})
    config = AutoMLConfig()
    prepared = prepare(DATASETS / "hardware_performance_machine.csv", "ERP", config)
    checks = DataChecks(store, exp_id, prepared, config, resolve_metric("auto", prepared.task))
    stored = store.get_experiment(exp_id)["summary"]["guardrails"]  # before any search event
    leak = {g["name"]: g for g in stored["data"]}["Target leakage"]
    assert leak["status"] == "Alerted" and leak["columns"] == ["PRP"] and stored["model"] == []
    checks.callback(Event("trial_started", 0.0, {}))  # only experiment_started carries the plan
    checks.callback(Event("experiment_started", 0.1, {"validation": "10-fold cross-validation"}))
    stored = store.get_experiment(exp_id)["summary"]["guardrails"]
    plan = {g["name"]: g for g in stored["data"]}["Validation strategy"]
    assert plan["finding"] == "Models are compared on 10-fold cross-validation."
    assert [g.name for g in checks.found] == [g["name"] for g in stored["data"]]
    store.close()


@pytest.mark.slow
def test_experiment_stores_guardrails_and_explanations(private_store) -> None:
    store = Store(private_store)
    outcome = run_experiment(store, DATASETS / "hardware_performance_machine.csv", "ERP",
                             AutoMLConfig(max_trials=3, seed=0))
    assert outcome.status == "completed"
    exp_id = outcome.experiment_id
    summary = store.get_experiment(exp_id)["summary"]
    data_checks = {g["name"]: g for g in summary["guardrails"]["data"]}
    assert len(data_checks) == 10 and data_checks["Target leakage"]["columns"] == ["PRP"]
    assert "10-fold cross-validation" in data_checks["Validation strategy"]["finding"]
    assert [g["name"] for g in summary["guardrails"]["model"]] == ["Overfitting"]
    assert summary["explanations"]["n_rows"] == 189 and "error" not in summary["explanations"]
    artifacts = store.artifacts(exp_id)
    kinds = dict(zip(artifacts["path"].str.rsplit("/", n=1).str[-1], artifacts["kind"]))
    assert kinds["guardrails.json"] == "guardrails" and kinds["explanations.json"] == "explanations"
    ex = load_explanation(store.artifact_dir(exp_id))
    assert ex.importance["column"].iloc[0] in ("PRP", "MMAX", "MMIN") and ex.n_rows == 189
    events = store.events(exp_id, limit=50)
    kinds = list(events["kind"])[::-1]  # oldest first
    assert kinds.index("explaining_started") < kinds.index("explaining_finished")
    store.close()


@pytest.mark.slow
def test_automl_explain_from_python() -> None:
    import pandas as pd
    train = pd.read_csv(DATASETS / "penguins.csv")
    automl = AutoML(max_trials=2, seed=0, allowed_models=("lightgbm",)).fit(train, target="species")
    ex = automl.explain(sample_rows=100)
    assert automl.explanation_ is ex and ex.values.shape == (100, 3, len(ex.columns))
    assert ex.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert ex.importance["column"].iloc[0] in ("bill_length_mm", "flipper_length_mm", "bill_depth_mm", "island")
