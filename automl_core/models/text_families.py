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
TFIDF_DEFAULTS = {"tfidf_words": "1-2", "tfidf_chars": "2-5", "tfidf_max_terms": 100_000}


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


def _text_only_settings(params: dict[str, Any]) -> dict[str, Any]:
    return text_settings(params, text_only=True)


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
