"""Trials that raise, whose process dies (os._exit, a real segfault, running out of memory) or that
hang are recorded as failed with the reason, and the search goes on."""
from __future__ import annotations

import pandas as pd
import pytest

from automl_core.models.families import FAMILIES

# Whole searches with real budgets: left out of `make test-quick`.
pytestmark = pytest.mark.slow


@pytest.fixture
def fault_families(monkeypatch):
    monkeypatch.setenv("AUTOML_EXTRA_FAMILIES", "fault_families")
    # A runaway trial is stopped by its worker's limit; 1.5 GB leaves the real models room.
    monkeypatch.setenv("AUTOML_WORKER_MEMORY_MB", "1500")
    import fault_families
    fault_families.register(FAMILIES)
    yield fault_families
    for name in fault_families.FAULTS:
        FAMILIES.pop(name, None)


def test_failing_crashing_and_hanging_trials_are_recorded(fault_families, shared, tmp_path):
    from automl_core import AutoMLConfig
    from automl_core.experiment import run_experiment
    from storage import Store

    df = pd.read_csv(shared / "breast_cancer_wisconsin.csv")
    budget = 90  # each crash restarts the worker pool, several seconds on a busy machine
    config = AutoMLConfig(time_budget=budget, trial_timeout=5, seed=0, n_jobs=1,
                          allowed_models=(*fault_families.FAULTS, "linear"))
    store = Store(tmp_path / "s.duckdb")
    outcome = run_experiment(store, df, "target", config)
    assert outcome.status == "completed"
    trials = store.trials(outcome.experiment_id)
    by_family = {f: g for f, g in trials.groupby("family")}
    assert set(fault_families.FAULTS) <= set(by_family), trials[["family", "status"]]
    expected = {"raises": ("failed", "always fails to fit"), "crashes": ("failed", "process died"),
                "segfaults": ("failed", "process died"), "hogs": ("failed", "ran out of memory"),
                "hangs": ("timeout", "timed out")}
    for family, (status, words) in expected.items():
        rows = by_family[family]
        assert (rows["status"] == status).all(), rows[["status", "error"]]
        assert rows["error"].str.contains(words).all(), rows["error"].tolist()
    # the search went on after each of them and found a real model
    assert (by_family["linear"]["status"] == "ok").sum() >= 2
    assert outcome.automl.best_trial_.family in ("linear", "ensemble", "stacking")  # ensembles of linear trials
    assert outcome.automl.wall_seconds_ <= budget * 1.5  # gross overruns only; the +10 % goal is benched



def test_a_run_where_every_trial_fails_ends_at_the_grace_with_the_reason(fault_families, shared, monkeypatch):
    """No model at the budget's end buys the grace (search/loop.py); when every trial fails even then,
    the run still ends, soon after the grace, with an error that names what went wrong."""
    import time

    from automl_core import AutoML
    from automl_core.errors import AutoMLInputError
    from automl_core.search import loop

    monkeypatch.setattr(loop, "GRACE_MIN_SECONDS", 2.0)
    df = pd.read_csv(shared / "iris.csv")
    start = time.monotonic()
    with pytest.raises(AutoMLInputError, match="No trial finished") as failed:
        AutoML(time_budget=4, allowed_models=("raises",), ensembles=False, seed=0).fit(df, target="target")
    elapsed = time.monotonic() - start
    assert "always fails to fit" in str(failed.value)
    assert elapsed < 4 * (1 + loop.GRACE_SHARE) + 30, elapsed  # ends: no endless retrying of a failing family
