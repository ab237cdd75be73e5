"""Text at short budgets (issue 22): embedding every text is costed before it is paid for, so a run whose
budget cannot hold it trains the TF-IDF tier and says why the embeddings sat out. Nothing here is timed:
the decisions rest on word counts and a speed, given or predicted."""
from __future__ import annotations

from functools import lru_cache

import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.config import AutoMLConfig
from automl_core.models.families import FAMILIES
from automl_core.models.text_families import TEXT_FAMILIES, embed_for_search
from automl_core.prepare import embeddings
from automl_core.prepare.tables import prepare
from shared_data import DATASETS, needs_data


def _rotten(n: int) -> pd.DataFrame:
    df = pd.read_csv(DATASETS / "rotten_tomatoes.csv").dropna(subset=["text"])
    return df.sample(n, random_state=0)[["text", "category"]].reset_index(drop=True)


def _refuse(*args, **kwargs):
    raise AssertionError("texts were embedded")


@pytest.fixture
def untouched_encoder(monkeypatch, tmp_path):
    """A process that has measured nothing, with a cache of its own, on a machine that has not exported the
    ORT graph yet (so the loading prior is the same wherever the tests run); embedding anything fails the test."""
    monkeypatch.setenv("AUTOML_ENCODER_CACHE", str(tmp_path))
    monkeypatch.setattr(embeddings, "_MEASURED", {})
    monkeypatch.setattr(embeddings, "shared_cache", lambda: embeddings.EmbeddingCache())
    monkeypatch.setattr(embeddings.EmbeddingCache, "encode", _refuse)
    monkeypatch.setattr(embeddings, "load_search_encoder", lru_cache(maxsize=1)(_refuse))  # not loaded, in this process


@needs_data
@pytest.mark.parametrize("measured, seconds_left, said", [
    (None, 50.0, "at least"),  # the optimistic prior already rules it out: not even a probe
    (500.0, 600.0, "at this machine's measured speed"),  # a slow machine, measured earlier in the process
])
def test_embedding_that_cannot_fit_is_skipped_before_any_text_is_embedded(untouched_encoder, measured,
                                                                         seconds_left, said):
    if measured:
        embeddings._MEASURED["tokens_per_second"] = measured
    prepared = prepare(_rotten(4000), "category", AutoMLConfig.from_dict({"time_budget": seconds_left}))
    families = [FAMILIES[f.name] for f in TEXT_FAMILIES]
    kept, vectors = embed_for_search(prepared, families, "auto", seconds_left, prepared.notes)
    assert vectors is None
    assert [f.name for f in kept] == ["text_logistic", "text_linear_svm", "text_complement_nb"]
    note = next(n for n in prepared.notes if n.startswith("sentence-embedding models skipped"))
    assert said in note and " texts would take " in note and "TF-IDF models carry the text" in note


def test_texts_are_costed_by_their_words_up_to_the_encoder_cut():
    short, long = embeddings.tokens(["good film", " ".join(["word"] * 5000)])
    assert short == 5 and long == embeddings.MAX_TOKENS  # 2 words -> 3 pieces, and [CLS], [SEP]
    seconds, measured = embeddings.predicted_seconds(["a b c"] * 1000)  # 6 pieces each
    assert seconds >= 6000 / embeddings._MEASURED.get("tokens_per_second", embeddings.PRIOR_TOKENS_PER_SECOND)


@pytest.mark.slow  # a 60 s budget (its least on a loaded machine: workers start, folds, one trial)
@needs_data
def test_a_budget_too_small_for_embeddings_still_ends_with_a_tfidf_model(untouched_encoder):
    df = _rotten(4000)
    automl = AutoML(time_budget=60, seed=0, ensembles=False,
                    allowed_models=("text_logistic", "text_embedding_logistic")).fit(df, target="category")
    assert automl.best_trial_.family == "text_logistic"
    assert set(automl.leaderboard["model"]) == {"text_logistic"}
    assert any("sentence-embedding models skipped" in n for n in automl.card_["notes"])
    proba = automl.predict_proba(pd.DataFrame({"text": ["A tender, funny and moving film.", "Dull and far too long."]}))
    assert proba.shape == (2, 3)


@needs_data
def test_folds_too_slow_to_featurize_for_the_time_left_make_the_search_read_a_sample():
    from automl_core.models.text_families import MIN_SEARCH_ROWS, search_rows_for_time
    prepared = prepare(_rotten(3000), "category", AutoMLConfig.from_dict({}))
    args = (prepared.X, prepared.codes(prepared.y), prepared.columns, prepared.task, "auto", 0)
    rows, need = search_rows_for_time(*args, seconds_left=1.0)
    assert rows == MIN_SEARCH_ROWS and need > 0.2  # measured: n-gram counting of 3,000 texts, three folds
    assert search_rows_for_time(*args, seconds_left=1e6)[0] == 3000
    assert search_rows_for_time(*args, seconds_left=float("inf")) == (3000, 0.0)


def test_until_a_trial_finishes_the_budget_stretches_by_its_grace():
    import threading
    from types import SimpleNamespace
    from automl_core.search import loop
    clock = loop.Clock(60.0, start=__import__("time").perf_counter() - 63.0)  # 3 s past a 60 s budget
    nothing, something = SimpleNamespace(best=None), SimpleNamespace(best=object())
    # half the budget more (90 s in all), or as much searching (30 s) when the search began late (at 80 s)
    assert loop._grace_left(clock, search_start=5.0) == pytest.approx(27.0, abs=0.5)
    assert loop._grace_left(clock, search_start=80.0) == pytest.approx(47.0, abs=0.5)
    stop = threading.Event()
    assert loop._hard_stop(stop, clock, nothing, 5.0) == ""  # the first trial may still finish
    assert loop._hard_stop(stop, clock, something, 5.0) == "time budget reached"
    assert loop._grace_left(loop.Clock(None), 0.0) == float("inf")
    # a trial without a model yet plans by the budget (1 s floor) and is killed at the grace's end
    assert loop.trial_limits(clock, 0.0, False, 5.0, None) == (1.0, pytest.approx(27.0, abs=0.5))
    assert loop.trial_limits(clock, 0.0, True, 5.0, None) == (1.0, 1.0)
    early = loop.Clock(60.0)
    plan, kill = loop.trial_limits(early, 10.0, False, 0.0, 30.0)
    assert plan == pytest.approx(30.0) and kill == pytest.approx(30.0)  # the per-trial limit caps both


@needs_data
def test_embedding_that_runs_past_its_deadline_is_given_up_for_the_tfidf_tier(untouched_encoder, monkeypatch):
    def slower_than_measured(self, sentences, **kwargs):
        assert self.deadline is not None  # the run set one from its prediction
        raise embeddings.EmbeddingTimeout("256 of 3,996 texts embedded in time")

    embeddings._MEASURED["tokens_per_second"] = 1e9  # predicted to fit easily
    monkeypatch.setattr(embeddings.EmbeddingCache, "encode", slower_than_measured)
    prepared = prepare(_rotten(4000), "category", AutoMLConfig.from_dict({"time_budget": 600}))
    kept, vectors = embed_for_search(prepared, [FAMILIES[f.name] for f in TEXT_FAMILIES], "auto", 600.0,
                                     prepared.notes)
    assert vectors is None and "text_embedding_logistic" not in [f.name for f in kept]
    assert any("embedding ran slower than measured (256 of 3,996" in n for n in prepared.notes)


@needs_data
def test_a_short_budget_does_not_load_the_encoder_to_measure_it(untouched_encoder, monkeypatch):
    monkeypatch.setattr(embeddings, "PRIOR_LOAD_SECONDS", 0.0)  # the prior says it fits: only the rule stops it
    prepared = prepare(_rotten(100), "category", AutoMLConfig.from_dict({"time_budget": 60}))
    kept, vectors = embed_for_search(prepared, [FAMILIES[f.name] for f in TEXT_FAMILIES], "auto", 60.0,
                                     prepared.notes)
    assert vectors is None and "text_embedding_logistic" not in [f.name for f in kept]
    assert any("loading the encoder takes 10 s on a quiet machine" in n for n in prepared.notes)
