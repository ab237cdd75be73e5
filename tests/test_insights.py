"""A whole experiment records its guardrails (data ones before the first trial) and explanations."""
from __future__ import annotations

import pytest

from automl_core import AutoML
from automl_core.config import AutoMLConfig
from automl_core.experiment import run_experiment
from automl_core.explain import load_explanation
from shared_data import DATASETS, needs_data
from storage import Store

pytestmark = [needs_data, pytest.mark.slow]


def test_experiment_stores_guardrails_before_the_search_and_explanations_after(private_store) -> None:
    store = Store(private_store)
    exp_id = store.create_experiment("hardware", dataset_id=None, task="regression", metric="rmse", config={})
    seen_before_first_trial: list[dict] = []

    def on_event(event) -> None:
        if event.kind == "trial_started" and not seen_before_first_trial:
            exp = store.get_experiment(exp_id)
            seen_before_first_trial.append((exp["summary"] or {}).get("guardrails") or {})

    outcome = run_experiment(store, DATASETS / "hardware_performance_machine.csv", "ERP",
                             AutoMLConfig(max_trials=3, seed=0), experiment_id=exp_id, callbacks=[on_event])
    assert outcome.status == "completed"
    data_checks = {g["name"]: g for g in seen_before_first_trial[0]["data"]}
    assert data_checks["Target leakage"]["status"] == "Alerted" and data_checks["Target leakage"]["columns"] == ["PRP"]
    assert "10-fold cross-validation" in data_checks["Validation strategy"]["finding"]
    summary = store.get_experiment(exp_id)["summary"]
    assert [g["name"] for g in summary["guardrails"]["model"]] == ["Overfitting"]
    assert len(summary["guardrails"]["data"]) == 10
    assert summary["explanations"]["n_rows"] == 189 and "error" not in summary["explanations"]
    kinds = dict(zip(store.artifacts(exp_id)["path"].str.rsplit("/", n=1).str[-1], store.artifacts(exp_id)["kind"]))
    assert kinds["guardrails.json"] == "guardrails" and kinds["explanations.json"] == "explanations"
    ex = load_explanation(store.artifact_dir(exp_id))
    assert ex.importance["column"].iloc[0] in ("PRP", "MMAX", "MMIN") and ex.n_rows == 189
    events = store.events(exp_id, limit=50)
    assert any("Explaining the model" in str(p.get("text")) for p in events["payload"])
    store.close()


def test_automl_explain_from_python() -> None:
    import pandas as pd
    train = pd.read_csv(DATASETS / "penguins.csv")
    automl = AutoML(max_trials=2, seed=0, allowed_models=("lightgbm",)).fit(train, target="species")
    ex = automl.explain(sample_rows=100)
    assert automl.explanation_ is ex and ex.values.shape == (100, 3, len(ex.columns))
    assert ex.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert ex.importance["column"].iloc[0] in ("bill_length_mm", "flipper_length_mm", "bill_depth_mm", "island")
