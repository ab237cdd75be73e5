"""Text families (issue 22): TF-IDF with searched sizes and linear heads, in the one search loop."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.models.families import FAMILIES, select_families
from automl_core.models.text_families import TEXT_FAMILIES, reads_text, text_settings
from automl_core.prepare.featurize import build_featurizer, featurization_summary
from automl_core.prepare.roles import clean_frame, infer_roles
from automl_core.prepare.schema import Task
from shared_data import DATASETS, REPO, needs_data

TEXT_NAMES = [f.name for f in TEXT_FAMILIES]
TFIDF_NAMES = [f.name for f in TEXT_FAMILIES if f.text({}).get("kind") != "embedding"]


def _yelp(n: int = 150) -> pd.DataFrame:
    df = pd.read_csv(DATASETS / "yelp_sentiment_train.csv").head(n)
    # a mixed table: the review, and a number that carries a little signal of its own
    return df.assign(length=df["ReviewText"].str.len())


@needs_data
def test_text_columns_are_detected_and_select_the_text_families():
    df = _yelp()
    columns = infer_roles(clean_frame(df.drop(columns="Sentiment"))[0])
    roles = {c.name: c.role.value for c in columns}
    assert roles == {"ReviewText": "text", "length": "numeric"}
    assert reads_text(columns, Task.BINARY, "auto")
    assert not reads_text(columns, Task.REGRESSION, "auto") and not reads_text(columns, Task.BINARY, "off")
    chosen = [f.name for f in select_families(None, (), len(df), text=True)]
    assert set(TEXT_NAMES) <= set(chosen)
    assert not set(TEXT_NAMES) & {f.name for f in select_families(None, (), len(df), text=False)}


@needs_data
def test_searched_tfidf_sizes_shape_the_featurizer_and_naive_bayes_reads_text_only():
    df = _yelp()
    columns = infer_roles(clean_frame(df.drop(columns="Sentiment"))[0])
    X, y = df.drop(columns="Sentiment"), df["Sentiment"]
    small = build_featurizer(columns, task=Task.BINARY, scale=True,
                             text=text_settings({"tfidf_words": "1", "tfidf_chars": "none", "tfidf_max_terms": 20_000}))
    both = build_featurizer(columns, task=Task.BINARY, scale=True, text=text_settings(
        {"tfidf_words": "1-2", "tfidf_chars": "2-5", "tfidf_max_terms": 20_000}))
    n_small, n_both = small.fit_transform(X, y).shape[1], both.fit_transform(X, y).shape[1]
    assert n_small < n_both  # character n-grams add many terms
    words = {r["column"]: r["transforms"] for r in featurization_summary(small, columns)}
    assert "TF-IDF word 1-1-grams" in words["ReviewText"] and "scaling" in words["length"]
    text_only = build_featurizer(columns, task=Task.BINARY, text=FAMILIES["text_complement_nb"].text({}))
    Xt = text_only.fit_transform(X, y)
    assert Xt.min() >= 0  # complement naive Bayes needs non-negative input: no scaled numbers
    assert {r["column"]: r["n_features_out"] for r in featurization_summary(text_only, columns)}["length"] == 0


@pytest.mark.slow  # ~45 s on the shared 2 cores: five trials, a refit and a fresh interpreter
@needs_data
def test_text_families_run_in_the_search_and_the_saved_model_reads_raw_text(tmp_path):
    df = _yelp(200)
    train, test = df.iloc[:150], df.iloc[150:]
    automl = AutoML(max_trials=5, time_budget=None, seed=0,
                    allowed_models=(*TFIDF_NAMES, "linear")).fit(train, target="Sentiment", test_data=test)
    board = automl.leaderboard
    ok = board[board["status"] == "ok"]
    assert set(TFIDF_NAMES) <= set(ok["model"])  # each text family's defaults come first on a text table
    assert automl.test_score_ is not None and automl.test_score_ > 0.6
    automl.save(tmp_path)
    # the saved model predicts from raw text in a Python that cannot import this repository
    script = ("import joblib, pandas as pd; m = joblib.load('model.joblib'); "
              "print(m.predict_proba(pd.DataFrame({'ReviewText': ['Great food, lovely staff.', 'Cold and awful.'], "
              "'length': [25, 15]}))[:, 1].round(3).tolist())")
    out = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    good, bad = eval(out.stdout.strip())
    assert good > bad


# Blocks every network connection (IPv4/IPv6 sockets and name lookups) in the process that imports it;
# trial workers import it too (it is on their PYTHONPATH as sitecustomize).
NO_NETWORK = '''
import socket
def _refuse(*args, **kwargs):
    raise OSError("network access attempted in an offline test")
_connect = socket.socket.connect
def _connect_local(self, address, *args):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse()
    return _connect(self, address, *args)
socket.socket.connect = _connect_local
socket.getaddrinfo = _refuse
socket.create_connection = _refuse
'''


@pytest.mark.slow  # ~25 s on the shared 2 cores: loading the encoder and embedding 24 texts twice
@needs_data
def test_embeddings_are_cached_by_text_and_the_saved_step_gives_the_same_numbers():
    from automl_core.prepare import embeddings
    df = _yelp(24)
    columns = infer_roles(clean_frame(df.drop(columns="Sentiment"))[0])
    X = df.drop(columns="Sentiment")
    featurizer = build_featurizer(columns, task=Task.BINARY, scale=True, text=FAMILIES["text_embedding_logistic"].text({}))
    cache = embeddings.EmbeddingCache()
    with embeddings.encoding_with(cache):
        cached = featurizer.fit_transform(X, df["Sentiment"])
    assert cached.shape == (24, embeddings.DIMENSIONS + 1) and len(cache.vectors) == 24
    assert cache.missing(X["ReviewText"]) == []  # a second search on these texts embeds nothing
    embeddings.attach_encoder(featurizer)
    # the search embedded with ONNX Runtime, the saved step embeds with torch: the same numbers
    assert np.allclose(featurizer.transform(X), cached, atol=1e-5)


@pytest.mark.slow  # ~60-90 s on the shared 2 cores: embedding, a search and a fresh interpreter
@needs_data
def test_embedding_family_trains_and_predicts_with_the_network_blocked(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK)
    train = _yelp(80).drop(columns="length")
    train.to_csv(tmp_path / "train.csv", index=False)
    script = ("import pandas as pd\nfrom automl_core import AutoML\n"
              "df = pd.read_csv('train.csv')\n"
              "m = AutoML(max_trials=1, time_budget=None, seed=0, ensembles=False,"
              " allowed_models=('text_embedding_logistic',)).fit(df, target='Sentiment')\n"
              "m.save('out')\nprint(m.leaderboard['model'].tolist())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "text_embedding_logistic" in run.stdout
    predict = NO_NETWORK + ("import joblib, pandas as pd\nm = joblib.load('out/model.joblib')\n"
                            "p = m.predict_proba(pd.DataFrame({'ReviewText': ['The food was delicious and fresh.',"
                            " 'Worst service ever, never again.']}))[:, 1]\nprint(p[0] > p[1])\n")
    out = subprocess.run([sys.executable, "-I", "-c", predict], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**env, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "True"


@needs_data
def test_an_ensemble_of_text_and_tabular_members_reads_one_featurizer_in_blocks():
    from automl_core.prepare.featurize import feature_to_column
    from automl_core.search.finalize import FinalChoice, fit_final
    from automl_core.search.results import TrialResult
    from automl_core.search.trial import RefitData
    df = _yelp(120)
    X, y = df.drop(columns="Sentiment"), df["Sentiment"].to_numpy()
    columns = infer_roles(clean_frame(X)[0])
    tfidf = {"tfidf_words": "1", "tfidf_chars": "2-4", "tfidf_max_terms": 20_000}
    members = [TrialResult(1, "text_logistic", {**tfidf, "C": 10.0}, "ok", 0.8),
               TrialResult(2, "text_complement_nb", {**tfidf, "alpha": 0.3}, "ok", 0.78),
               TrialResult(3, "linear", {"C": 1.0}, "ok", 0.7)]
    row = TrialResult(4, "ensemble", {"members": [1, 2, 3], "weights": [0.5, 0.3, 0.2]}, "ok", 0.82)
    sample = build_featurizer(columns, task=Task.BINARY).fit_transform(X, y)
    data = RefitData(X, y, tuple(columns), Task.BINARY, "auto", sample)
    model, chosen = fit_final(data, FinalChoice(row, members, [0.5, 0.3, 0.2]), {}, y, None, 1, 0)
    assert chosen.row is row
    features = model.named_steps["features"]
    prefixes = {name.split("_")[0] for name, *_ in features.transformers}
    assert prefixes == {"b0", "b1", "b2"}  # TF-IDF + scaled columns, TF-IDF of the text only, the shared one
    assert set(feature_to_column(features, columns).values()) == {"ReviewText", "length"}
    proba = model.predict_proba(X.head(20))
    assert proba.shape == (20, 2) and np.allclose(proba.sum(axis=1), 1)
    assert (model.predict(X) == y).mean() > 0.8


def test_text_lead_trials_come_after_the_text_defaults_and_before_the_portfolio():
    """On a text table the search runs a few searched text trials (cheap once a fold's TF-IDF is cached)
    before the portfolio's tabular warm starts; a table without text has no lead."""
    from automl_core.models.families import load_portfolio
    from automl_core.models.text_families import LEAD_TRIALS_PER_FAMILY, text_lead, text_warm_start
    from automl_core.search.scheduler import Scheduler
    families = select_families(None, (), 150, text=True)
    names, count = text_lead(families)
    assert set(names) == set(TEXT_NAMES) & {f.name for f in families}
    assert count == LEAD_TRIALS_PER_FAMILY * len(names)
    portfolio = load_portfolio()
    order = [tuple(x) for x in portfolio.get("order", {}).get("classification", [])]
    scheduler = Scheduler(families, Task.MULTICLASS, portfolio["classification"], 0, True,
                          text_warm_start(families), order, lead=(names, count))
    asked = [scheduler.next(i)[0] for i in range(1, len(names) + count + 2)]
    assert asked[:len(names)] == [f.name for f in families if f.text is not None]  # the defaults, in order
    assert set(asked[len(names):len(names) + count]) <= set(names)                # then the lead trials
    assert asked[-1] not in names                                                # then the portfolio
    assert text_lead(select_families(None, (), 150, text=False)) == ((), 0)
