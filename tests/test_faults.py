"""A trial that raises, one whose process dies and one that hangs are recorded, and the search goes on."""
from __future__ import annotations

import pandas as pd
import pytest

from automl_core.models import FAMILIES

# Whole searches with real budgets: left out of `make test-quick`.
pytestmark = pytest.mark.slow


@pytest.fixture
def fault_families(monkeypatch):
    monkeypatch.setenv("AUTOML_EXTRA_FAMILIES", "fault_families")
    import fault_families
    fault_families.register(FAMILIES)
    yield
    for name in ("raises", "crashes", "hangs"):
        FAMILIES.pop(name, None)


def test_failing_crashing_and_hanging_trials_are_recorded(fault_families, shared, tmp_path):
    from automl_core import AutoMLConfig
    from automl_core.experiment import run_experiment
    from storage import Store

    df = pd.read_csv(shared / "breast_cancer_wisconsin.csv")
    config = AutoMLConfig(time_budget=40, trial_timeout=4, seed=0, n_jobs=1,
                          allowed_models=("raises", "crashes", "hangs", "linear"))
    store = Store(tmp_path / "s.duckdb")
    outcome = run_experiment(store, df, "target", config)
    assert outcome.status == "completed"
    trials = store.trials(outcome.experiment_id)
    by_family = {f: g for f, g in trials.groupby("family")}
    assert (by_family["raises"]["status"] == "failed").all()
    assert by_family["raises"]["error"].str.contains("always fails to fit").all()
    assert (by_family["crashes"]["status"] == "failed").all()
    assert by_family["crashes"]["error"].str.contains("process died").all()
    assert (by_family["hangs"]["status"] == "timeout").all()
    assert by_family["hangs"]["error"].str.contains("timed out").all()
    # the search went on after each of them and found a real model
    assert (by_family["linear"]["status"] == "ok").sum() >= 2
    assert outcome.automl.best_trial_.family == "linear"
    assert outcome.automl.wall_seconds_ <= 40 * 1.1
