"""The model zoo: each family is a small declarative record (search space + estimator factory).

Families are registered in one ordered list that refuses duplicates. The warm-start portfolio
(configurations tried first) lives in ``portfolio.json`` beside this file, as data.
"""
from __future__ import annotations

import re

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from ..errors import AutoMLInputError
from ..prepare.schema import Task

if TYPE_CHECKING:  # workers never need optuna itself
    import optuna

# Boosting gets a generous cap; early stopping on validation picks the real number of trees.
MAX_BOOSTING_ROUNDS = 3000
EARLY_STOPPING_ROUNDS = 50


@dataclass(frozen=True)
class ModelFamily:
    name: str
    label: str                                      # for people: "LightGBM"
    space: Callable[["optuna.Trial", Task], dict[str, Any]]
    build: Callable[[dict[str, Any], Task, int, int], Any]  # (params, task, threads, seed) -> estimator
    needs_scaling: bool = False
    # (estimator, X, y, X_val, y_val) -> best number of rounds: fits with early stopping on the
    # validation rows; the trial records the mean over folds as ``n_estimators`` for the refit.
    early_stopping: Callable[[Any, Any, Any, Any, Any], int] | None = None
    max_rows: int | None = None                     # beyond this the family is too slow to be worth it
    relative_cost: float = 1.0                      # rough cost of a default trial, LightGBM = 1
    dense_only: bool = False                        # cannot take a sparse matrix (text features)
    # share of the ideal speed-up a fit gains from more threads (measured on diamonds, 2 cores:
    # forests 2.0x, LightGBM / HistGradientBoosting 1.25x)
    thread_scaling: float = 0.0
    # The family's first trial when the warm-start portfolio has none for it (a point of ``space``).
    defaults: dict[str, Any] | None = None
    # A classifier that only learns class codes 0..K-1 (XGBoost) or predicts a column instead of a
    # vector (CatBoost, multiclass): the saved pipeline wraps it, see ``classifier_step``.
    label_codes: bool = False
    # A text family (see ``text_families``): (params) -> its own text featurization, which every trial
    # fits per fold on the raw rows (TF-IDF sizes are searched). None: the shared featurized folds.
    text: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Reads the columns as an image's pixels (``image_families``): image tasks only, never chosen for a
    # table unless allowed by name.
    pixels: bool = False
    # Offered only when allowed by name (the image task names its heads): a family the tables' search does
    # not choose by default (the kernel SVM, see ``svm_family``).
    opt_in: bool = False
    # (training rows, features) -> estimated seconds of one fold's fit and validation predictions, for a family
    # whose cost grows faster than its rows: the search does not start a first trial that cannot finish
    # (``Scheduler.trial_seconds``).
    fit_seconds: Callable[[int, int], float] | None = None
    # The label for regression when the family's estimator differs by task ("Linear (ridge / elastic net)");
    # ``classifier_label`` likewise for classification. None: ``label`` fits every task.
    regressor_label: str | None = None
    classifier_label: str | None = None
    # (params, classes) -> peak bytes one boosting round adds while fitting, for a family whose model grows a
    # tree per class per round: a trial is given no more rounds than its worker's memory cap holds
    # (``trial.rounds_that_fit``), instead of dying under the cap on a 1,000-class target.
    round_bytes: Callable[[dict[str, Any], int], float] | None = None

    def label_for(self, task: str | None = None) -> str:
        """The label for people on a run of ``task`` (a ``Task`` value); ``label`` when the task is unknown."""
        if task == Task.REGRESSION.value and self.regressor_label:
            return self.regressor_label
        if task in (Task.BINARY.value, Task.MULTICLASS.value, Task.MULTILABEL.value) and self.classifier_label:
            return self.classifier_label
        return self.label


def unnest(label: str) -> str:
    """A label that will sit inside brackets, with its own brackets made a comma clause:
    "the chosen model (LightGBM on lags, global)", not "(LightGBM on lags (global))"."""
    while True:  # innermost brackets first: "LightGBM (lags (1..24))" -> "LightGBM, lags, 1..24"
        flat = re.sub(r"\s*\(([^()]*)\)", r", \1", label)
        if flat == label:
            return flat.strip()
        label = flat


def _class_weight(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    if not task.is_classification:
        return {}
    return {"class_weight": trial.suggest_categorical("class_weight", ["none", "balanced"])}


def _cw(params: dict[str, Any]) -> Any:
    value = params.get("class_weight", "none")
    return None if value in (None, "none") else value


# --- LightGBM -------------------------------------------------------------------------------------

def _lgbm_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
        **_class_weight(trial, task),
    }


def _lgbm_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    import lightgbm as lgb

    p = {k: v for k, v in params.items() if k not in ("class_weight", "n_estimators")}
    cls = lgb.LGBMClassifier if task.is_classification else lgb.LGBMRegressor
    extra = {"class_weight": _cw(params)} if task.is_classification else {}
    return cls(n_estimators=int(params.get("n_estimators", MAX_BOOSTING_ROUNDS)), subsample_freq=1,
               n_jobs=threads, random_state=seed, verbose=-1, deterministic=True, force_col_wise=True,
               **extra, **p)


# Peak address space per LightGBM tree while fitting, measured as VmPeak growth on the corpus' 1,000-class table
# (993 trees a round, full trees): training maps about 1 KB + 80 B a leaf per tree (31 leaves 3.3 KB, 127 leaves
# 10.8 KB); the model text the sklearn wrapper writes and reads back at the end adds about 470 B a leaf for every
# round it keeps, which is all of them when early stopping never triggers. 31 leaves: 18 KB, 127: 61 KB per tree;
# the line below lies a little above both (tests/test_memory_pricing.py checks it). A trial that ends also
# holds that text twice more while it returns (LightGBM's string, its Python copy, the pickle sent back to the
# parent): priced at 500 B a leaf only, a 1,000-class trial under a 1,000-1,300 MB cap reached the cap there and
# its worker died with SIGSEGV (bench/results/memory-cap-*.md), so a leaf costs its text three times over.
LGBM_TREE_BYTES = 4 * 1024
LGBM_LEAF_BYTES = 1400


def _lgbm_round_bytes(params: dict[str, Any], n_classes: int) -> float:
    """Multiclass LightGBM grows one tree per class per round (binary and regression: one)."""
    trees = n_classes if n_classes > 2 else 1
    return trees * (LGBM_TREE_BYTES + LGBM_LEAF_BYTES * int(params.get("num_leaves", 31)))


def _lgbm_fit(estimator: Any, X: Any, y: Any, X_val: Any, y_val: Any) -> int:
    import lightgbm as lgb
    estimator.fit(X, y, eval_X=(X_val,), eval_y=(y_val,),
                  callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False), lgb.log_evaluation(0)])
    return int(estimator.best_iteration_ or estimator.n_estimators_)


# --- XGBoost ---------------------------------------------------------------------------------------

def _xgb_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 12),
        "min_child_weight": trial.suggest_float("min_child_weight", 1e-3, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
    }


def _xgb_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    import xgboost as xgb
    p = {k: v for k, v in params.items() if k != "n_estimators"}
    cls = xgb.XGBClassifier if task.is_classification else xgb.XGBRegressor
    return cls(n_estimators=int(params.get("n_estimators", MAX_BOOSTING_ROUNDS)), tree_method="hist",
               n_jobs=threads, random_state=seed, verbosity=0, **p)


def _xgb_fit(estimator: Any, X: Any, y: Any, X_val: Any, y_val: Any) -> int:
    estimator.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS)
    estimator.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
    return int(estimator.best_iteration) + 1


# --- CatBoost ----------------------------------------------------------------------------------------

def _catboost_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "depth": trial.suggest_int("depth", 4, 8),
        # CatBoost's cost grows with the borders per feature: 254 (its default) ran 6x slower than 32
        # on 320 rows x 10 features, for trees that rarely need them all on small data
        "border_count": trial.suggest_categorical("border_count", [32, 64, 128, 254]),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
        "random_strength": trial.suggest_float("random_strength", 1e-3, 10.0, log=True),
        "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 1.0),
    }
    if task.is_classification:
        params["auto_class_weights"] = trial.suggest_categorical("auto_class_weights", ["none", "Balanced"])
    return params


def _catboost_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    import catboost as cb
    p = {k: v for k, v in params.items() if k not in ("n_estimators", "auto_class_weights")}
    # allow_writing_files: CatBoost otherwise leaves a catboost_info/ folder in the working directory
    common = dict(iterations=int(params.get("n_estimators", MAX_BOOSTING_ROUNDS)), thread_count=threads,
                  random_seed=seed, verbose=False, allow_writing_files=False, **p)
    if task.is_classification:
        weights = params.get("auto_class_weights", "none")
        return cb.CatBoostClassifier(auto_class_weights=None if weights == "none" else weights, **common)
    return cb.CatBoostRegressor(**common)


def _catboost_fit(estimator: Any, X: Any, y: Any, X_val: Any, y_val: Any) -> int:
    estimator.fit(X, y, eval_set=(X_val, y_val), early_stopping_rounds=EARLY_STOPPING_ROUNDS, verbose=False)
    return int(estimator.get_best_iteration()) + 1


# --- scikit-learn's histogram gradient boosting ----------------------------------------------------

def _hgb_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-8, 10.0, log=True),
        "max_features": trial.suggest_float("max_features", 0.3, 1.0),
        **_class_weight(trial, task),
    }


def _hgb_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    p = {k: v for k, v in params.items() if k != "class_weight"}
    p.setdefault("max_iter", 1000)
    if task.is_classification:
        return HistGradientBoostingClassifier(early_stopping=True, n_iter_no_change=20, random_state=seed,
                                              class_weight=_cw(params), **p)
    return HistGradientBoostingRegressor(early_stopping=True, n_iter_no_change=20, random_state=seed, **p)


# --- bagged trees ------------------------------------------------------------------------------------

def _forest_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        **_class_weight(trial, task),
    }


def _forest_builder(classifier: type, regressor: type) -> Callable[..., Any]:
    def build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
        p = {k: v for k, v in params.items() if k != "class_weight"}
        if task.is_classification:
            return classifier(n_jobs=threads, random_state=seed, class_weight=_cw(params), **p)
        return regressor(n_jobs=threads, random_state=seed, **p)
    return build


# --- linear ------------------------------------------------------------------------------------------

def _linear_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    if task.is_classification:
        return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True), **_class_weight(trial, task)}
    kind = trial.suggest_categorical("kind", ["ridge", "elasticnet"])
    params: dict[str, Any] = {"kind": kind, "alpha": trial.suggest_float("alpha", 1e-4, 100.0, log=True)}
    if kind == "elasticnet":
        params["l1_ratio"] = trial.suggest_float("l1_ratio", 0.05, 1.0)
    return params


def _linear_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    if task.is_classification:
        return LogisticRegression(C=params.get("C", 1.0), class_weight=_cw(params), max_iter=2000)
    if params.get("kind", "ridge") == "ridge":
        return Ridge(alpha=params.get("alpha", 1.0), random_state=seed)
    return ElasticNet(alpha=params.get("alpha", 1.0), l1_ratio=params.get("l1_ratio", 0.5),
                      random_state=seed, max_iter=5000)


# --- k nearest neighbours ----------------------------------------------------------------------------

def _knn_space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 3, 60, log=True),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
        "p": trial.suggest_categorical("p", [1, 2]),
    }


def _knn_build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    cls = KNeighborsClassifier if task.is_classification else KNeighborsRegressor
    return cls(n_jobs=threads, **params)


# A trial's seconds relative to LightGBM's: mean trial fit time over 4 trials each, one core, on
# german_credit / islp_default / wine_quality_white / california_housing (bench/bench_families.py):
# XGBoost 1.7x / 2.5x / 2.0x / 0.8x, CatBoost 7.8x / 2.7x / 7.3x / 0.7x; the medians are used. Thread
# scaling is assumed like the other boosting libraries'
# (not measured: the 2 cores were shared while these families were added).
COST_XGBOOST, SCALING_XGBOOST = 2.0, 0.25
COST_CATBOOST, SCALING_CATBOOST = 5.0, 0.25


class _Registry(dict):
    def add(self, family: ModelFamily) -> None:
        if family.name in self:
            raise ValueError(f"model family {family.name!r} registered twice")
        self[family.name] = family


FAMILIES: dict[str, ModelFamily] = _Registry()
#: Leaderboard rows that are not a family's trial but an ensemble of trials (see ``finalize``).
ENSEMBLE_KINDS = {"ensemble": "Ensemble (Caruana selection)", "stacking": "Stacking ensemble"}
for _family in [
    ModelFamily("lightgbm", "LightGBM", _lgbm_space, _lgbm_build, early_stopping=_lgbm_fit, relative_cost=1.0,
                round_bytes=_lgbm_round_bytes,
                thread_scaling=0.25),
    ModelFamily("linear", "Linear (logistic / ridge / elastic net)", _linear_space, _linear_build,
                needs_scaling=True, relative_cost=0.5, regressor_label="Linear (ridge / elastic net)",
                classifier_label="Linear (logistic regression)"),
    ModelFamily("hist_gradient_boosting", "Histogram gradient boosting", _hgb_space, _hgb_build, relative_cost=1.5,
                dense_only=True, thread_scaling=0.25),
    ModelFamily("random_forest", "Random forest", _forest_space,
                _forest_builder(RandomForestClassifier, RandomForestRegressor), relative_cost=3.0,
                thread_scaling=0.9),
    ModelFamily("extra_trees", "Extra trees", _forest_space,
                _forest_builder(ExtraTreesClassifier, ExtraTreesRegressor), relative_cost=2.0,
                thread_scaling=0.9),
    ModelFamily("knn", "k-nearest neighbours", _knn_space, _knn_build, needs_scaling=True,
                max_rows=50_000, relative_cost=1.0),
    # In the warm-start portfolio since it was re-mined leave-one-dataset-out on the wide bench
    # (bench/mine_portfolio.py --collection); ``defaults`` is where the search starts a family the
    # portfolio does not hold. Dense input: a sparse matrix's absent cells would be
    # "missing" to XGBoost, not 0, and the ONNX graph feeds dense zeros.
    ModelFamily("xgboost", "XGBoost", _xgb_space, _xgb_build, early_stopping=_xgb_fit, relative_cost=COST_XGBOOST,
                dense_only=True, thread_scaling=SCALING_XGBOOST, label_codes=True,
                defaults={"learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0, "subsample": 1.0,
                          "colsample_bytree": 1.0, "reg_alpha": 1e-8, "reg_lambda": 1.0}),
    ModelFamily("catboost", "CatBoost", _catboost_space, _catboost_build, early_stopping=_catboost_fit,
                relative_cost=COST_CATBOOST, dense_only=True, thread_scaling=SCALING_CATBOOST, label_codes=True,
                defaults={"learning_rate": 0.1, "depth": 6, "border_count": 64, "l2_leaf_reg": 3.0,
                          "random_strength": 1.0, "bagging_temperature": 1.0, "auto_class_weights": "none"}),
]:
    FAMILIES.add(_family)


from .text_families import TEXT_FAMILIES  # noqa: E402 (they are ModelFamily records too)

for _family in TEXT_FAMILIES:
    FAMILIES.add(_family)

from . import image_families, svm_family  # noqa: E402

FAMILIES.add(ModelFamily(**image_families.RECORD))
FAMILIES.add(ModelFamily(**svm_family.RECORD))


def _load_plugins() -> None:
    """Extra families from modules named in AUTOML_EXTRA_FAMILIES (comma-separated).

    Each module has ``register(registry)``. Set in the environment, so trial worker processes load
    the same families as the search. Tests use it to inject trials that raise, crash or hang.
    """
    for name in filter(None, (m.strip() for m in os.environ.get("AUTOML_EXTRA_FAMILIES", "").split(","))):
        module = importlib.import_module(name)
        module.register(FAMILIES)


_load_plugins()


def classifier_step(family: ModelFamily, estimator: Any, task: Task, fit_on_codes: bool) -> Any:
    """The estimator as a pipeline step that predicts the training labels themselves.

    A ``label_codes`` classifier fit on labels goes inside a one-member soft ``VotingClassifier``:
    scikit-learn's own label encoding around it, so the saved pipeline predicts the user's labels
    (a 1-d vector) and still loads with public packages only. Its probabilities are the member's.
    """
    if not (family.label_codes and task.is_classification) or fit_on_codes:
        return estimator
    from sklearn.ensemble import VotingClassifier
    return VotingClassifier([(family.name, estimator)], voting="soft")


def single_member(estimator: Any) -> Any | None:
    """The classifier inside a :func:`classifier_step` wrapper (None for anything else)."""
    members = getattr(estimator, "estimators", None)
    if type(estimator).__name__ == "VotingClassifier" and len(members or []) == 1 and members[0][0] in FAMILIES:
        fitted = getattr(estimator, "estimators_", None)
        return fitted[0] if fitted else members[0][1]
    return None


def bag_folds(model: Any) -> list[Any] | None:
    """The fold pipelines (each ``features`` first) of a saved bag of fold models (``search/bag.py``),
    or None for any other model."""
    if bag_pool(model) is None:
        return None
    estimator = model.steps[-1][1]
    return list(getattr(estimator, "estimators_", None) or [p for _, p in estimator.estimators])


def bag_pool(model: Any) -> str | None:
    """How a saved bag of fold models combines its folds: "mean" (soft Voting) or "geometric" (a Stacking
    whose learner is the log-opinion pool, ``search/bag.py``); None for any other model."""
    if not hasattr(model, "named_steps") or "features" in model.named_steps:
        return None
    estimator = model.steps[-1][1]
    names = [n for n, _ in getattr(estimator, "estimators", None) or []]
    if not names or not all(n.startswith("fold_") for n in names):
        return None
    kind = type(estimator).__name__
    return "mean" if kind.startswith("Voting") else "geometric" if kind == "StackingClassifier" else None


def select_families(allowed: tuple[str, ...] | None, blocked: tuple[str, ...], n_rows: int,
                    text: bool = False) -> list[ModelFamily]:
    """The families this experiment may try, in registry order (names checked by ``AutoMLConfig``).

    Text families only when ``text`` (the table has a text column a classifier can read); pixel and
    opt-in families only when ``allowed`` names them (the image task does)."""
    names = [n for n in FAMILIES if (allowed is None or n in allowed) and n not in blocked
             and (text or FAMILIES[n].text is None)
             and (allowed is not None or not (FAMILIES[n].pixels or FAMILIES[n].opt_in))]
    chosen = [FAMILIES[n] for n in names if FAMILIES[n].max_rows is None or n_rows <= FAMILIES[n].max_rows
              or (allowed is not None and n in allowed)]
    if not chosen:
        raise AutoMLInputError("No model is left to try after the allowed / blocked lists",
                               f"allow at least one of {', '.join(FAMILIES)}")
    return chosen


def load_portfolio() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Warm-start configurations: {task kind: {family: [params, ...]}}, cheapest first."""
    return json.loads((Path(__file__).with_name("portfolio.json")).read_text())
