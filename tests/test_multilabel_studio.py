"""A multi-label experiment made by the CLI opens in the studio (issue 22): no page shows a traceback, and
where a table's section has no multi-label version yet the page says so in words (the model is a dict, so
"joblib.load(...).predict(df)" would be wrong advice)."""
from __future__ import annotations

import pytest

from shared_data import needs_data
from test_cli import cli
from test_multilabel_task import arxiv

#: What each page must say for a multi-label experiment.
PAGES = {"experiments": [], "train": ["Multi-label runs do not run the table guardrails yet"],
         "results": ["Multi-label runs do not run the table guardrails yet", "A multi-label model is a dict",
                     # the Chromium walk: a new run's Evaluation said "trained before they were kept"
                     "A multi-label model is evaluated per label", "A multi-label model is not explained yet"],
         "predict": ["ONNX export and generated training code are not available for multi-label models yet"]}


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory):
    """(store path, experiment id) of a one-trial multi-label run on 150 real arXiv abstracts."""
    from storage import Store
    folder = tmp_path_factory.mktemp("arxiv")
    arxiv("train", 150).to_csv(folder / "arxiv.csv", index=False)
    store = folder / "store.duckdb"
    done = cli("train", str(folder / "arxiv.csv"), "--target", "terms", "--max-trials", "1",
               "--allowed-models", "linear", "--out", str(folder / "out"), store=store)
    assert done.returncode == 0, done.stderr
    with Store(store) as s:
        experiments = s.list_experiments()
    assert experiments["task"].tolist() == ["multilabel"]
    return store, experiments["experiment_id"].iloc[0]


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it (its module fixture trains a model)
@needs_data
@pytest.mark.parametrize("page", list(PAGES))
def test_studio_pages_open_a_multilabel_experiment(multilabel_run, page, monkeypatch) -> None:
    from studio_fixtures import open_experiment, texts
    at = open_experiment(multilabel_run[0], page, multilabel_run[1], monkeypatch)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Something went wrong" not in shown, shown
    for words in PAGES[page]:
        assert words in shown, shown
    assert "trained before they were kept" not in shown and "this experiment has none" not in shown


def _run_folder(store_path, experiment_id: str) -> tuple:
    """The run's artifact folder and its summary card, read from the store (closed again)."""
    from storage import Store
    with Store(store_path) as s:
        return s.artifact_dir(experiment_id), s.get_experiment(experiment_id)["summary"]


def _shown_table(at, column: str):
    """The first table on the page with ``column`` (AppTest finds dataframes by position, not key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.mark.slow  # reuses the module's one-trial run (its training is the slow part)
@needs_data
def test_results_score_each_label_and_explore_one_labels_threshold(multilabel_run, monkeypatch) -> None:
    from automl_core.understand.label_sets import load_label_sets, threshold_curve
    from studio_fixtures import open_experiment, texts
    store_path, experiment_id = multilabel_run
    sets = load_label_sets(_run_folder(store_path, experiment_id)[0])
    at = open_experiment(store_path, "results", experiment_id, monkeypatch)
    assert not at.exception, at.exception
    scores = _shown_table(at, "average_precision")
    assert sorted(scores["label"]) == sorted(sets.labels) and scores["rows"].sum() == int(sets.Y.sum())
    label = at.selectbox(key="threshold_label").value
    assert label == scores["label"].iloc[0]  # the most frequent label first
    at.slider(key="label_threshold").set_value(0.01).run()
    assert not at.exception, at.exception
    tiles = {m.label: m.value for m in at.metric}
    low = threshold_curve(sets, label).iloc[0]  # at 0.01: nearly every row called yes
    assert tiles["Recall"] == f"{low['recall']:.3f}" and tiles["Precision"] == f"{low['precision']:.3f}", tiles
    assert low["recall"] >= 0.9 and f"{int(low['predicted']):,} of {len(sets.rows):,} rows called" in texts(at)


@pytest.mark.slow  # reuses the module's one-trial run (its training is the slow part)
@needs_data
def test_results_list_the_wrong_label_sets_and_say_when_a_run_kept_none(multilabel_run, monkeypatch) -> None:
    import ast

    import numpy as np
    from automl_core.understand.label_sets import FILE, load_label_sets
    from studio_fixtures import open_experiment, texts
    store_path, experiment_id = multilabel_run
    folder, card = _run_folder(store_path, experiment_id)
    sets = load_label_sets(folder)
    assert sets is not None and sets.trial_id == card["best_trial_id"] and sets.labels == card["labels"]
    assert len(sets.rows) == 150  # 3-fold CV: every row scored once, out of fold
    np.testing.assert_allclose(sets.thresholds, [card["thresholds"][l] for l in sets.labels])
    at = open_experiment(store_path, "results", experiment_id, monkeypatch)
    assert not at.exception, at.exception
    assert "Wrong label sets" in texts(at) and "The texts are not shown" in texts(at)  # a CLI run keeps no table
    shown = _shown_table(at, "missed")
    assert len(shown) > 0 and (shown["n_wrong"].diff().dropna() <= 0).all()  # most labels wrong first
    terms = arxiv("train", 150)["terms"]  # the CLI trained on this table: row i is its row i
    for row in shown.itertuples():
        true = [l for l in ast.literal_eval(terms[row.row]) if l in sets.labels]
        on = [l for l, p, t in zip(sets.labels, sets.proba[list(sets.rows).index(row.row)], sets.thresholds) if p >= t]
        assert row.true.split(", ") == sorted(true, key=sets.labels.index) if true else row.true == ""
        assert row.predicted == ", ".join(on) and row.true != row.predicted
        missed = [x.rsplit(" (", 1)[0] for x in row.missed.split(", ")] if row.missed else []
        extra = [x.rsplit(" (", 1)[0] for x in row.extra.split(", ")] if row.extra else []
        assert missed == [l for l in sets.labels if l in true and l not in on]
        assert extra == [l for l in on if l not in true] and row.n_wrong == len(missed) + len(extra)
    from storage import Store
    with Store(store_path) as s:  # the table in the store, as a studio run keeps it: each row shows its text
        s.update_experiment(experiment_id, dataset_id=s.add_dataset("arxiv", arxiv("train", 150)),
                            config={"target": "terms"})
    at = open_experiment(store_path, "results", experiment_id, monkeypatch)
    assert not at.exception, at.exception
    shown = _shown_table(at, "missed")
    text = [c for c in shown.columns if c not in ("row", "true", "predicted", "missed", "extra", "n_wrong", "margin")]
    assert text, shown.columns
    for row in shown.itertuples():
        assert str(getattr(row, text[0])) == str(arxiv("train", 150)[text[0]][row.row])[:300]
    (folder / FILE).rename(folder / "hidden.parquet")  # a run made before the label sets were kept
    try:
        at = open_experiment(store_path, "results", experiment_id, monkeypatch)
        assert not at.exception, at.exception
        assert "Not available: this run stored no out-of-fold label sets" in texts(at)
    finally:
        (folder / "hidden.parquet").rename(folder / FILE)


def test_the_wrong_label_sets_show_their_labels_before_the_texts() -> None:
    """Studio runs put each row's text excerpts in the table: the labels must stay in sight, first."""
    from studio.label_set_view import mistakes_column_order
    columns = ["titles", "summaries", "row", "true", "predicted", "missed", "extra", "n_wrong", "margin"]
    assert mistakes_column_order(columns) == ["row", "true", "predicted", "missed", "extra", "n_wrong", "margin",
                                              "titles", "summaries"]
    assert mistakes_column_order(["image", "row", "true", "missed"]) == ["image", "row", "true", "missed"]
