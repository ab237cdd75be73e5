"""The multilabel task end to end (issue 22): detection, one-vs-rest trials in the search loop, per-label
thresholds saved with the model, predictions in the target's own format, and bad list targets."""
from __future__ import annotations

import json
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.config import AutoMLConfig
from automl_core.errors import AutoMLInputError
from automl_core.prepare.tables import prepare
from shared_data import DATASETS, needs_data
from test_cli import cli

ARXIV = "arxiv_paper_categories_{}.csv"


def arxiv(which: str, rows: int | None = None) -> pd.DataFrame:
    df = pd.read_csv(DATASETS / ARXIV.format(which))
    return df if rows is None else df.sample(rows, random_state=0).reset_index(drop=True)


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
@needs_data
def test_a_list_target_trains_one_vs_rest_heads_and_predicts_in_its_own_format(tmp_path):
    train, test = arxiv("train", 150), arxiv("test", 60)
    automl = AutoML(max_trials=2, time_budget=None, seed=0, allowed_models=("text_logistic", "linear"),
                    cv_folds=3).fit(train, target="terms", test_data=test)
    assert automl.task_.value == "multilabel" and automl.metric_.name == "f1_micro"
    board = automl.leaderboard
    assert set(board["model"]) == {"text_logistic", "linear"} and (board["status"] == "ok").all()
    assert {"f1_micro", "f1_macro", "hamming_loss", "subset_accuracy", "average_precision_macro"} <= set(board.columns)
    labels = [str(l) for l in automl.classes_]
    assert "cs.CV" in labels and len(labels) == len(automl.model_["thresholds"])
    # one-vs-rest on abstracts beats predicting no label at all (micro F1 0) by far
    assert automl.test_score_ > 0.5 and automl.best_trial_.score > 0.5
    predicted = automl.predict(test)
    assert all(p.startswith("[") for p in predicted)  # written back as a Python list, like the target
    proba = automl.predict_proba(test)
    assert proba.shape == (len(test), len(labels)) and ((proba >= 0) & (proba <= 1)).all()
    card = automl.card_
    assert set(card["thresholds"]) == set(labels) and card["per_label_average_precision"]
    # the saved model is plain scikit-learn: it loads and predicts with this repository's package blocked
    model_path, _ = automl.save(tmp_path / "model")
    test.to_csv(tmp_path / "test.csv", index=False)
    script = ("import sys, json, joblib, pandas as pd; sys.modules['automl_core'] = None\n"
              "m = joblib.load(sys.argv[1]); df = pd.read_csv(sys.argv[2])\n"
              "P = m['pipeline'].predict_proba(df[m['input_columns']])\n"
              "print(json.dumps((P >= m['thresholds']).astype(int).tolist()))\n")
    out = subprocess.run([sys.executable, "-c", script, str(model_path), str(tmp_path / "test.csv")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    chosen = np.array(json.loads(out.stdout), dtype=bool)
    written = [repr([l for l, on in zip(labels, row) if on]) for row in chosen]
    assert written == list(predicted)
    # predict_file and the REST server: the table checks, then labels and probabilities per label
    from automl_core.export import serve
    from automl_core.export.predict import predict_file
    with pytest.raises(AutoMLInputError, match="summaries"):
        predict_file(model_path, _saved(tmp_path, test.drop(columns=["summaries"])), tmp_path / "p.csv")
    assert predict_file(model_path, tmp_path / "test.csv", tmp_path / "p.csv") == len(test)
    assert list(pd.read_csv(tmp_path / "p.csv")["prediction"]) == list(predicted)
    import asyncio
    import httpx

    async def post():
        transport = httpx.ASGITransport(app=serve.create_app(model_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post("/predict", json=test.head(2).drop(columns=["terms"]).to_dict(orient="records"))

    answer = asyncio.run(post())
    assert answer.status_code == 200, answer.text
    assert [r["prediction"] for r in answer.json()["predictions"]] == list(predicted[:2])


def _saved(tmp_path, df: pd.DataFrame):
    path = tmp_path / "other.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.slow  # two CLI processes (~17 s on the loaded 2-core machine)
@needs_data
def test_cli_trains_a_separator_target_with_task_multilabel_and_predict_writes_it_back(tmp_path):
    df = arxiv("train", 120)
    df["terms"] = [";".join(eval(cell)) for cell in df["terms"]]  # a;b, read only when told the task
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    store = tmp_path / "s.duckdb"
    result = cli("train", str(path), "--target", "terms", "--task", "multilabel", "--max-trials", "1",
                 "--allowed-models", "text_logistic", "--cv", "3", "--out", str(tmp_path / "m"), "--quiet", "--json",
                 store=store)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["task"] == "multilabel" and summary["metric"] == "f1_micro"
    preds = tmp_path / "preds.csv"
    result = cli("predict", "--model", str(tmp_path / "m" / "model.joblib"), str(path), "--out", str(preds),
                 store=store)
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(preds, keep_default_na=False)
    assert "proba_cs.CV" in got.columns
    cells = [c for c in got["prediction"] if c]
    assert cells and not any(c.startswith("[") for c in cells) and any(";" in c for c in cells)


def _frame(terms: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"words about topic {i % 7} and more {i}" for i in range(len(terms))],
                         "terms": terms})


def test_a_malformed_list_cell_is_named():
    terms = ["['a', 'b']"] * 30 + ["['a', 'b'"]
    with pytest.raises(AutoMLInputError, match=r"\['a', 'b'.*not a readable list"):
        prepare(_frame(terms), "terms", AutoMLConfig(task="multilabel"))


def test_a_label_seen_once_is_left_out_with_a_note_and_metrics_are_the_multilabel_ones():
    terms = ["['a', 'b']", "['a']", "['b']"] * 10 + ["['a', 'once']"]
    p = prepare(_frame(terms), "terms", AutoMLConfig())
    assert p.task.value == "multilabel" and p.classes == ["a", "b"] and p.y.shape == (31, 2)
    assert any("once" in n and "not learned" in n for n in p.notes)
    assert prepare(_frame(terms), "terms", AutoMLConfig(metric="hamming_loss")).metric.name == "hamming_loss"
    with pytest.raises(AutoMLInputError, match="does not apply"):
        prepare(_frame(terms), "terms", AutoMLConfig(metric="roc_auc"))


def test_500_distinct_labels_keep_the_most_frequent_hundred_and_say_so():
    rng = np.random.default_rng(0)
    terms = [json.dumps([f"l{j}" for j in rng.choice(500, 3, replace=False)] + ["common"]) for _ in range(3000)]
    p = prepare(_frame(terms), "terms", AutoMLConfig())
    assert len(p.classes) == 100 and "common" in p.classes
    assert any("100 most frequent" in n for n in p.notes)


@needs_data
def test_table_heads_are_skipped_when_their_shared_folds_would_not_fit_the_time_left():
    """The shared folds (word and character n-grams for the table heads) are measured before they are paid
    for: with little time left only the text families search, and a note says why."""
    from automl_core.config import AutoMLConfig
    from automl_core.models.families import select_families
    from automl_core.prepare.tables import prepare
    from automl_core.search.multilabel import HEADS, _affordable
    p = prepare(arxiv("train", 150), "terms", AutoMLConfig(task="auto"))
    proxy = (np.asarray(p.y)[:, 0] > 0).astype(int)
    families = select_families(HEADS, (), len(p.X), text=True)
    assert _affordable(families, p, proxy, AutoMLConfig(), 5, float("inf")) == families
    kept = _affordable(families, p, proxy, AutoMLConfig(), 5, 1.0)
    assert kept and all(f.text is not None for f in kept)
    assert any("linear" in n and "skipped" in n and "validation folds" in n for n in p.notes), p.notes
