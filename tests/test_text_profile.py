"""understand.text_profile on real texts: the profile counts, the length histogram's guard against one huge
text, and class terms read from fitted TF-IDF + linear pipelines (and None for a head without weights)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from automl_core.understand.text_profile import class_terms, length_histogram, misclassified, profile_text
from shared_data import DATASETS, needs_data


def _reviews() -> pd.DataFrame:
    return pd.read_csv(DATASETS / "yelp_sentiment_train.csv").head(300)


@needs_data
def test_profile_counts_empty_duplicates_and_frequent_words() -> None:
    texts = pd.concat([_reviews()["ReviewText"], pd.Series([None, "  ", "Wow... Loved this place."])],
                      ignore_index=True)
    p = profile_text(texts, top=10)
    assert p.n_texts == 303 and p.n_empty == 2 and p.n_duplicates >= 2  # "#NAME?" twice, "Wow..." twice
    assert len(p.lengths) == 301 and p.lengths.min() >= 0 and p.vocabulary > 700
    words = [w for w, _ in p.top_words]
    assert "food" in words and not {"the", "and", "was"} & set(words)


def test_length_histogram_keeps_one_huge_text_from_squeezing_the_rest() -> None:
    lengths = np.r_[np.arange(1, 200) % 30, 200_000]  # a 1 MB cell among short texts
    h = length_histogram(lengths)
    assert h["texts"].sum() == len(lengths) and len(h) <= 21
    assert h["words"].iloc[-1].endswith("+") and h["texts"].iloc[0] > 0


@needs_data
def test_class_terms_read_the_linear_head_and_refuse_trees() -> None:
    df = _reviews()
    features = ColumnTransformer([("text_0", Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=2))]),
                                   "ReviewText")])
    model = Pipeline([("features", features), ("model", LogisticRegression(C=10))]).fit(df[["ReviewText"]],
                                                                                          df["Sentiment"])
    terms = class_terms(model, top=5)
    assert set(terms["class"]) == {1} and len(terms) == 10  # binary: the second class's weights
    up = terms[terms["direction"] == "up"]
    assert (up["weight"] > 0).all() and list(up["weight"]) == sorted(up["weight"], reverse=True)
    assert "great" in set(up["term"]) and "not" in set(terms[terms["direction"] == "down"]["term"])
    iris = load_iris(as_frame=True)
    trees = Pipeline([("features", ColumnTransformer([("num", "passthrough", list(iris.data.columns))])),
                      ("model", RandomForestClassifier(n_estimators=5))]).fit(iris.data, iris.target)
    assert class_terms(trees) is None


def test_misclassified_lists_the_confident_mistakes_first() -> None:
    table = pd.DataFrame({"text": ["a", "b", "c", "d"]})
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    out = misclassified(proba, np.array([0, 0, 1, 0]), np.array([3, 2, 1, 0]), ["no", "yes"], table, ["text"])
    assert list(out["text"]) == ["c", "a", "b"] and list(out["true"]) == ["no", "no", "yes"]
    assert list(out["predicted"]) == ["yes", "yes", "no"] and list(out["probability"]) == pytest.approx([0.8, 0.7, 0.6])
    assert list(out["row"]) == [2, 0, 1]


@needs_data
def test_class_terms_per_class_of_a_calibrated_svm_on_four_newsgroups() -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import FeatureUnion
    from sklearn.svm import LinearSVC
    df = pd.read_csv(DATASETS / "newsgroups_train.csv")
    union = FeatureUnion([("word", TfidfVectorizer(min_df=2)), ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3)))])
    features = ColumnTransformer([("text_0", Pipeline([("tfidf", union)]), "X")])
    head = CalibratedClassifierCV(LinearSVC(C=0.5), method="sigmoid", cv=3)
    model = Pipeline([("features", features), ("model", head)]).fit(df[["X"]], df["y"])
    terms = class_terms(model, top=5)
    assert set(terms["class"]) == {0, 1, 2, 3}
    assert terms.groupby(["class", "direction"]).size().max() == 5
    # both analyzers are read, each term named as its vectorizer names it
    word = model[0].transformers_[0][1][-1].transformer_list[0][1].vocabulary_  # the fitted clone
    assert terms["term"].isin(list(word)).any() and (~terms["term"].isin(list(word))).any()
