"""The multi-label journey through the studio in AppTest (issue #22): a small real arXiv sample uploaded on
the Data page, the list-like target `terms` read as multi-label on the Task page, one trial started from
Configure, Completed on the live page, and a CSV of new abstracts predicted on the Predict page."""
from __future__ import annotations

import pandas as pd
import pytest
from shared_data import needs_data
from streamlit.testing.v1 import AppTest

from studio_fixtures import app, choose_target, no_crash, status_word, upload_table, wait_for  # noqa: F401  (fixture)
from test_multilabel_task import arxiv

pytestmark = needs_data


def _train_one_text_trial(app: AppTest) -> None:
    """Configure one TF-IDF trial, start it and wait on the Train page until the run ends."""
    app.switch_page("pages/configure.py").run()
    no_crash(app)
    app.number_input(key="time_budget").set_value(300).run()
    app.number_input(key="max_trials").set_value(1).run()
    app.multiselect(key="allowed_models").set_value(["text_logistic"]).run()
    app.button(key="start_training").click().run()
    no_crash(app)
    app.switch_page("pages/train.py").run()
    wait_for(app, lambda a: status_word(a) in ("Completed", "Stopped", "Failed"), timeout=300)


@pytest.mark.slow  # ~40 s on the shared 2 cores: one TF-IDF trial, its refit and the Predict page
def test_multilabel_arxiv_from_upload_to_predictions(app: AppTest) -> None:
    upload_table(app, "arxiv.csv", arxiv("train", 120))
    shown = choose_target(app, "terms")
    assert app.session_state["wizard"]["task_effective"] == "multilabel", shown
    assert "Detected **multilabel**" in shown and "label(s) learned" in shown

    _train_one_text_trial(app)
    experiment_id = app.session_state["wizard"]["experiment_id"]
    shown = no_crash(app)
    assert status_word(app) == "Completed", shown

    app.switch_page("pages/predict.py").run()
    no_crash(app)
    assert app.selectbox(key="predict_experiment").value == experiment_id
    new = arxiv("test", 8).drop(columns=["terms"])
    app.file_uploader(key="predict_upload").set_value(("new.csv", new.to_csv(index=False).encode(), "text/csv")).run()
    shown = no_crash(app)
    assert not app.error, shown
    assert any(b.key == "download_predictions" for b in app.get("download_button"))
    table = next(d.value for d in app.dataframe if "prediction" in d.value.columns)
    assert len(table) == 8
    probas = [c for c in table.columns if str(c).startswith("proba_")]
    assert "proba_cs.CV" in probas and ((table[probas] >= 0) & (table[probas] <= 1)).all().all()
    # the prediction is a label list in the training target's own format (a Python list literal here)
    assert table["prediction"].astype(str).str.startswith("[").all(), table["prediction"]


def test_the_data_and_task_pages_count_the_labels_and_their_pairs(app: AppTest) -> None:
    """A list-of-labels column gets a Labels tab on the Data page (rows per label, labels per row, the most common
    pairs), and the Task page repeats it for a multi-label target: counted from the real arXiv cells."""
    import ast
    from collections import Counter
    train = arxiv("train", 120)
    rows = [set(ast.literal_eval(cell)) for cell in train["terms"]]
    shown = upload_table(app, "arxiv.csv", train)
    assert "Rows per label" in shown and "Most common together" in shown, shown
    counts = next(d.value for d in app.dataframe if "share" in d.value.columns and "label" in d.value.columns)
    expected = Counter(label for row in rows for label in row)
    assert dict(zip(counts["label"], counts["rows"])) == dict(expected)
    assert counts["rows"].is_monotonic_decreasing  # most frequent first
    pairs = next(d.value for d in app.dataframe if "pair" in d.value.columns)
    a, b = pairs["pair"].iloc[0].split(" + ")
    assert pairs["rows"].iloc[0] == sum(a in r and b in r for r in rows)
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Labels"] == str(len(expected)) and tiles["Labels per row"] == f"{sum(map(len, rows)) / 120:.2f}"

    shown = choose_target(app, "terms")
    assert [e.label for e in app.expander if e.label.startswith("The labels")] == [
        "The labels: counts, labels per row, the most common pairs"], shown
    assert any("pair" in d.value.columns for d in app.dataframe)


@pytest.mark.slow  # one TF-IDF trial and its refit in the studio's job
def test_several_0_1_columns_chosen_on_the_task_page_train_one_multilabel_model(app: AppTest) -> None:
    """A table with one 0/1 column per label (real arXiv rows spread out): the Task page offers the other 0/1
    columns beside a 0/1 target, reads them together as one multi-label target, and the run trains on them."""
    from test_multilabel_indicators import LABELS, spread
    upload_table(app, "flags.csv", spread("train", 150))
    shown = choose_target(app, "cs.CV")
    assert app.session_state["wizard"]["task_effective"] == "binary", shown  # alone, a yes/no target
    assert set(app.multiselect(key="more_targets").options) == set(LABELS[1:])
    app.multiselect(key="more_targets").set_value(LABELS[1:]).run()
    shown = no_crash(app)
    assert app.session_state["wizard"]["task_effective"] == "multilabel", shown
    assert "several 0/1 columns" in shown and "The labels" in " ".join(e.label for e in app.expander)
    assert sorted(app.session_state["wizard"]["classes"]) == sorted(LABELS)

    _train_one_text_trial(app)
    shown = no_crash(app)
    assert status_word(app) == "Completed", shown

    # a clone of the run brings the joined target back: the Task page splits it into the target and the others
    from studio.settings import wizard_from_experiment
    exp = app.session_state["wizard"]["experiment_id"]
    cloned = wizard_from_experiment(_experiment(exp))
    assert cloned["target"] == ",".join(LABELS)
    app.session_state["wizard"] = cloned
    for key in ("target", "more_targets"):
        if key in app.session_state:
            del app.session_state[key]
    app.switch_page("pages/task.py").run()
    shown = no_crash(app)
    assert app.selectbox(key="target").value == "cs.CV" and app.multiselect(key="more_targets").value == LABELS[1:]
    assert app.session_state["wizard"]["task_effective"] == "multilabel", shown


def _experiment(experiment_id: str) -> dict:
    import os

    from storage import Store
    with Store(os.environ["AUTOML_STORE"]) as store:
        return store.get_experiment(experiment_id)
