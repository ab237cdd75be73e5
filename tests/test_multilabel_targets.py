"""Multi-label targets (issue 22 groundwork): formats read and written back, scores, tuned thresholds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, hamming_loss
from sklearn.model_selection import cross_val_predict
from sklearn.multiclass import OneVsRestClassifier

from automl_core.errors import AutoMLInputError
from automl_core.prepare.multilabel import indicator, multilabel_scores, parse_labels, tune_thresholds
from shared_data import DATASETS, needs_data


@pytest.mark.parametrize("cells, kind", [
    (["['cs.CV', 'cs.LG']", "['stat.ML']", None], "python"),
    (['["cs.CV", "cs.LG"]', '["stat.ML"]', None], "json"),
    (["cs.CV;cs.LG", "stat.ML", ""], "separator"),
])
def test_every_list_format_reads_the_same_labels_and_writes_back_as_it_came(cells, kind):
    labels, fmt = parse_labels(pd.Series(cells, name="terms"))
    assert labels == [["cs.CV", "cs.LG"], ["stat.ML"], []]
    assert fmt.kind == kind
    assert fmt.write(labels[0]) == cells[0]


def test_a_malformed_list_cell_is_named_with_the_fix():
    with pytest.raises(AutoMLInputError, match="is not a readable list of labels") as err:
        parse_labels(pd.Series(["['a']", "['a', 'b'\""], name="terms"))
    assert "separate labels with ';'" in str(err.value)


@needs_data
def test_arxiv_one_vs_rest_with_tuned_thresholds_scores_like_scikit_learn():
    df = pd.read_csv(DATASETS / "arxiv_paper_categories_train.csv")
    labels, fmt = parse_labels(df["terms"])
    assert fmt.kind == "python" and all(labels)
    Y, classes = indicator(labels)
    keep = Y.sum(axis=0) >= 5  # labels seen at least five times
    Y = Y[:, keep]
    X = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(df["titles"] + " " + df["summaries"])
    proba = cross_val_predict(OneVsRestClassifier(LogisticRegression(C=10, max_iter=1000)), X, Y, cv=3,
                              method="predict_proba")
    default = multilabel_scores(Y, proba >= 0.5)
    assert default["f1_micro"] == pytest.approx(f1_score(Y, proba >= 0.5, average="micro"))
    assert default["hamming_loss"] == pytest.approx(hamming_loss(Y, proba >= 0.5))
    tuned = multilabel_scores(Y, proba >= tune_thresholds(Y, proba))
    assert tuned["f1_macro"] > default["f1_macro"]  # rare labels need lower thresholds than 0.5


def test_the_task_page_verdict_reads_a_list_target_as_multilabel():
    """What the Task page shows for a list-like target (it once ran only the single-label check, which refused
    arXiv's 'terms' as a multiclass target with one-row classes)."""
    from automl_core.prepare.multilabel import MIN_LABEL_ROWS, multilabel_verdict
    terms = pd.Series(["['a', 'b']", "['a']", "['b', 'c']"] * MIN_LABEL_ROWS + ["['rare']"], name="terms")
    verdict = multilabel_verdict(terms, "auto")
    assert verdict["task"] == "multilabel" and verdict["classes"] == ["a", "b", "c"]
    assert "list of labels" in verdict["reason"] and any("rare" in n for n in verdict["notes"])
    assert multilabel_verdict(pd.Series(["x", "y"] * 5, name="y"), "auto") is None  # plain labels: not multi-label
    assert multilabel_verdict(pd.Series(["a;b", "a"] * 5, name="y"), "multilabel")["classes"] == ["a", "b"]
    with pytest.raises(AutoMLInputError, match="seen in 5 or more rows"):
        multilabel_verdict(pd.Series(["['a']", "['b']"], name="terms"), "auto")


def test_one_learnable_label_is_refused_with_the_fix_not_a_failed_trial():
    """With one label seen often enough, one-vs-rest heads answer in two columns where the search expects
    one: every trial failed with a shape mismatch. Now the data is refused first, saying what to do."""
    from automl_core import AutoML
    from automl_core.prepare.multilabel import multilabel_verdict
    df = pd.DataFrame({"x": range(30), "tags": ["['a']", "[]"] * 13 + ["['a', 'rare']"] * 4})  # 'rare': 4 rows
    for check in (lambda: multilabel_verdict(df["tags"], "auto"),
                  lambda: AutoML(task="multilabel", max_trials=1, time_budget=None).fit(df, target="tags")):
        with pytest.raises(AutoMLInputError, match="only 'a' is seen in 5 or more rows") as refused:
            check()
        assert "yes/no target" in str(refused.value)
