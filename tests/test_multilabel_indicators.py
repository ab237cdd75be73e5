"""Several 0/1 columns chosen as the targets make one multi-label target (issue 22): the real arXiv rows, their
label lists spread into one 0/1 column per label, as people often keep them."""
from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd
import pytest

from automl_core.config import AutoMLConfig
from automl_core.errors import AutoMLInputError
from automl_core.prepare.tables import prepare
from shared_data import DATASETS, needs_data
from test_cli import cli

pytestmark = needs_data
LABELS = ["cs.CV", "cs.LG", "stat.ML"]


def spread(which: str, rows: int) -> pd.DataFrame:
    """arXiv rows with one 0/1 column per label of LABELS (the list column dropped)."""
    df = pd.read_csv(DATASETS / f"arxiv_paper_categories_{which}.csv").head(rows)
    lists = [ast.literal_eval(cell) for cell in df.pop("terms")]
    return df.assign(**{label: [int(label in row) for row in lists] for label in LABELS})


def test_several_0_1_columns_are_one_multilabel_target_with_the_columns_as_labels():
    df = spread("train", 300)
    p = prepare(df, LABELS, AutoMLConfig())
    assert p.task.value == "multilabel" and p.target == ",".join(LABELS)
    assert p.classes == sorted(LABELS)
    for j, label in enumerate(p.classes):  # every row's 0/1 survives, rows with no label included
        assert np.array_equal(p.y[:, j], df[label].to_numpy())
    assert not set(LABELS) & set(p.X.columns) and len(p.X) == len(df)
    assert "0/1 columns" in p.notes[0]
    same = prepare(df, ",".join(LABELS), AutoMLConfig(task="multilabel"))  # as the CLI gives them
    assert np.array_equal(same.y, p.y) and same.classes == p.classes


def test_yes_no_and_true_false_columns_read_as_0_1():
    df = spread("train", 200)
    words = df.assign(**{"cs.CV": df["cs.CV"].map({1: "yes", 0: "no"}), "cs.LG": df["cs.LG"].astype(bool)})
    assert np.array_equal(prepare(words, LABELS, AutoMLConfig()).y, prepare(df, LABELS, AutoMLConfig()).y)


@pytest.mark.parametrize("change, message", [
    (lambda df: df.assign(**{"cs.LG": df["cs.LG"].astype(float).where(df.index != 3)}), r"'cs.LG' has 1 empty cell\(s\)"),
    (lambda df: df.assign(**{"stat.ML": df["stat.ML"].where(df.index != 5, 2)}), r"'stat.ML' holds '2', not 0 or 1"),
    (lambda df: df.rename(columns={"cs.CV": "vision"}), "cs.CV"),
])
def test_bad_0_1_targets_are_named(change, message):
    with pytest.raises(AutoMLInputError, match=message):
        prepare(change(spread("train", 100)), LABELS, AutoMLConfig())


def test_several_targets_with_another_task_or_one_column_are_refused_clearly():
    df = spread("train", 100)
    with pytest.raises(AutoMLInputError, match="make a multilabel task, not binary"):
        prepare(df, LABELS, AutoMLConfig(task="binary"))
    with pytest.raises(AutoMLInputError, match="two columns or more"):
        prepare(df, ["cs.CV", "cs.CV"], AutoMLConfig())


@pytest.mark.slow  # two CLI processes
def test_cli_trains_on_0_1_columns_and_predicts_each_label(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    spread("train", 200).to_csv(train, index=False)
    spread("test", 60).to_csv(test, index=False)
    store = tmp_path / "s.duckdb"
    result = cli("train", str(train), "--target", ",".join(LABELS), "--test-data", str(test), "--max-trials", "1",
                 "--allowed-models", "text_logistic", "--cv", "3", "--out", str(tmp_path / "m"), "--quiet", "--json",
                 store=store)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["task"] == "multilabel" and summary["test_score"] is not None
    preds = tmp_path / "preds.csv"
    new = spread("test", 60).drop(columns=LABELS)  # new rows come without the label columns
    new.to_csv(tmp_path / "new.csv", index=False)
    result = cli("predict", "--model", str(tmp_path / "m" / "model.joblib"), str(tmp_path / "new.csv"),
                 "--out", str(preds), store=store)
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(preds)
    assert {f"proba_{label}" for label in LABELS} <= set(got.columns) and len(got) == 60
    assert all(set(ast.literal_eval(cell)) <= set(LABELS) for cell in got["prediction"])
    for label in LABELS:  # trained on 0/1 columns, predicted as 0/1 columns too, agreeing with the label lists
        assert got[f"prediction_{label}"].tolist() == [int(label in ast.literal_eval(c)) for c in got["prediction"]]
