"""The studio's text pieces (issue #22) in AppTest, on 150 real Yelp reviews: the text profile on the Data
page, the text rule on the Task page, the typed-text box on Predict, the class terms and misclassified
texts on Results. One tiny text run (two TF-IDF + logistic regression trials) serves the last three."""
from __future__ import annotations

import pandas as pd
import pytest
from shared_data import DATASETS, needs_data
from streamlit.testing.v1 import AppTest

from studio_fixtures import app, choose_target, no_crash, open_experiment, upload_table  # noqa: F401  (fixture)

pytestmark = needs_data
MARKUP = "<b>Loved</b> this place, <script>alert(1)</script> great food"


def _reviews() -> pd.DataFrame:
    df = pd.read_csv(DATASETS / "yelp_sentiment_train.csv").head(150)
    df.loc[0, "ReviewText"] = MARKUP  # markup in a text must stay text
    df.loc[1, "ReviewText"] = "   "  # and an empty one is counted
    return df


def _table(at: AppTest, *columns: str, nth: int = 0) -> pd.DataFrame:
    """The ``nth`` table on the page that has all of ``columns`` (AppTest keeps no key on a plain table)."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) > nth, [list(d.value.columns) for d in at.dataframe]
    return found[nth]


def _no_markup_rendered(at: AppTest) -> None:
    """No element renders HTML, and no Markdown element carries the raw tags."""
    for kind in ("html", "markdown", "caption", "info", "warning", "error"):
        for e in at.get(kind):
            body = str(getattr(e, "value", None) or getattr(e.proto, "body", ""))
            assert "<b>Loved" not in body and "<script>alert" not in body, body


def test_data_page_profiles_the_text_column_and_task_page_says_why(app: AppTest) -> None:
    shown = upload_table(app, "reviews.csv", _reviews())
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Texts"] == "150" and metrics["Empty"] == "1"
    assert int(metrics["Vocabulary"].replace(",", "")) > 400
    words = _table(app, "word", "count")
    assert {"food", "good", "place"} <= set(words["word"].head(10)) and "the" not in set(words["word"])
    assert "never rendered" in shown
    _no_markup_rendered(app)

    shown = choose_target(app, "Sentiment")
    assert "Read as text (1)" in shown and "ReviewText" in shown and "free text: " in shown, shown
    assert "at least half of them distinct" in shown


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """(store path, experiment id) of a two-trial TF-IDF + logistic regression run on the reviews."""
    from automl_core.config import AutoMLConfig
    from automl_core.experiment import run_experiment
    from storage import Store
    from studio import datasets as ds
    store_path = tmp_path_factory.mktemp("text") / "store" / "store.duckdb"
    store = Store(store_path)
    df = _reviews()
    dataset_id = store.add_dataset("reviews.csv", df, columns=ds.columns_for(df), source="upload:reviews.csv")
    config = AutoMLConfig(time_budget=600, max_trials=2, allowed_models=("text_logistic",), ensembles=False, seed=0)
    outcome = run_experiment(store, df, "Sentiment", config, dataset_id=dataset_id, name="reviews")
    store.close()
    return store_path, outcome.experiment_id


def _open(text_run, page: str, monkeypatch) -> AppTest:
    return open_experiment(text_run[0], page, text_run[1], monkeypatch)


def test_predict_page_classifies_a_typed_text(text_run, monkeypatch) -> None:
    at = _open(text_run, "predict", monkeypatch)
    shown = no_crash(at)
    assert "as soon as you type" in shown
    at.text_area(key="text_input").input("The food was great and the service amazing, I loved it.").run()
    shown = no_crash(at)
    probs = _table(at, "class", "probability")
    assert set(probs["class"]) == {"0", "1"} and abs(probs["probability"].sum() - 1) < 1e-6
    assert probs.iloc[0]["class"] == "1" and "Predicted: **1**" in shown
    at.text_area(key="text_input").input("Terrible, rude and slow. Would not go back.").run()
    assert _table(at, "class", "probability").iloc[0]["class"] == "0"
    at.text_area(key="text_input").input(MARKUP).run()
    no_crash(at)
    _no_markup_rendered(at)


@pytest.mark.slow  # ~20 s under load: the whole Results page (charts, explanations) and the table rebuilt
def test_results_show_class_terms_and_misclassified_texts(text_run, monkeypatch) -> None:
    at = _open(text_run, "results", monkeypatch)
    shown = no_crash(at)
    assert "Words and n-grams that push each class up and down" in shown, shown
    up = _table(at, "term", "weight")
    down = _table(at, "term", "weight", nth=1)
    assert len(up) and len(down) and (up["weight"] > 0).all() and (down["weight"] < 0).all()
    assert "great" in set(up["term"]) and "not" in set(down["term"])
    wrong = _table(at, "ReviewText", "predicted")
    reviews = _reviews()
    assert len(wrong) >= 1 and {"ReviewText", "true", "predicted", "probability"} <= set(wrong.columns)
    assert (wrong["true"] != wrong["predicted"]).all() and (wrong["probability"] >= 0.5).all()
    # each row is the training row: its text and its true label (no test split here, so rows are the file's)
    # (the texts repeat: "#NAME?" is in the file twice, labelled 0 and 1)
    assert list(wrong["ReviewText"]) == list(reviews["ReviewText"].iloc[wrong["row"]])
    assert list(wrong["true"]) == list(reviews["Sentiment"].astype(str).iloc[wrong["row"]])
    _no_markup_rendered(at)
