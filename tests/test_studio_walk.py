"""What a newcomer tripped over in a walk through the studio (issue 21): CLI-made experiments,
ID columns, disguised missing values, state across reloads, and the texts and tables around them.

Each test runs on its own store (conftest's ``private_store``) with small real samples.
"""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from automl_core.results import TrialResult

from studio_fixtures import app, texts  # noqa: F401  (fixture)


def no_crash(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert "Something went wrong" not in texts(at), texts(at)


def _cli_experiment(store, name: str = "cli run", score: float = 0.2) -> str:
    """An experiment as the command line records it: no dataset in the store."""
    config = {"task": "auto", "metric": "auto", "time_budget": 10.0, "target": "y"}
    experiment_id = store.create_experiment(name, dataset_id=None, task="regression", metric="rmse", config=config)
    store.set_status(experiment_id, "running")
    store.add_trial(experiment_id, TrialResult(1, "linear", {"alpha": 1.0}, "ok", score, {"rmse": score},
                                               0.1, 0.01, 1.0, 2.0))
    store.finish_experiment(experiment_id, status="completed", best_trial_id=1, best_model="linear",
                            best_score=score, test_score=None, model_path=None, summary={})
    return experiment_id


# --- item 2: experiments made by the CLI ---------------------------------------------------------

def test_experiments_page_with_cli_made_experiments(app: AppTest) -> None:
    from studio.state import get_store

    store = get_store()
    _cli_experiment(store, "first", 0.3)
    _cli_experiment(store, "second", 0.2)
    app.switch_page("pages/experiments.py").run()
    no_crash(app)
    table = app.dataframe[0].value
    assert "None" not in table["dataset"].astype(str).tolist()
    assert set(table["dataset"]) == {"command line"}
    # both CLI runs are comparable: one chart over them
    assert app.selectbox(key="compare_dataset").value is not None
    assert len(app.get("plotly_chart")) == 1


# --- item 4: one reading of disguised missing values ----------------------------------------------

def test_profile_roles_and_preview_agree_on_missing_values(app: AppTest) -> None:
    from shared_data import DATASETS

    app.file_uploader(key="upload").set_value(("penguins.csv", (DATASETS / "penguins.csv").read_bytes(),
                                               "text/csv")).run()
    no_crash(app)
    profile = app.dataframe[0].value.set_index("column")
    n_rows = 344
    assert profile.loc["sex", "missing %"] == pytest.approx(100 * 11 / n_rows, abs=0.01)  # 'NA' x11
    assert "NA (" not in profile.loc["sex", "top values"]
    assert "sex 11" in texts(app)  # the caption says the missing % counts 'NA' texts
    from studio.state import get_store
    meta = get_store().get_dataset(app.session_state["wizard"]["dataset_id"])
    reason = next(  # the "Why" of Columns and roles
        c["reason"] for c in meta["columns"] if c["name"] == "sex")
    assert "11 missing" in reason and "'NA' x11" in reason
    # no table shows Python's None for a missing value
    assert all(d.proto.placeholder == "—" for d in app.dataframe)
    assert "None" not in profile["mean"].astype(str).tolist()
