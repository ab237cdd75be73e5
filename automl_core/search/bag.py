"""The bag of fold models: the k models a k-fold search already fit for a trial, averaged, as the saved model.

With k-fold validation every trial fits k models, each on (k-1)/k of the rows, and its validation score
is exactly the score of those k models on the rows each did not see. Averaging them (AutoGluon's
default in its quality presets) costs no refit, and its validation score is honest: it is the trial's.

A Caruana ensemble is bagged the same way: per fold, its members' fold models in a weighted soft Voting
(the weighted average of bags is the bag of the folds' weighted averages). Stacking is always refit.

**The rule** (``final_model="auto"``):

1. no fold models were kept for the trial (hold-out validation, a row-sample trial, models too large
   to keep, see ``KEEP_MODEL_BYTES``; a member of the ensemble lacks them) -> refit on all rows;
2. the refit's measured cost (the trial's fit seconds per fold, scaled to all rows, times the reserve
   margin), with measuring the spread, does not fit in the time left -> bag (it needs no fitting);
3. the fold models disagree by at least ``MIN_AMBIGUITY`` of their out-of-fold squared error -> bag,
   else refit. The average of models has exactly "their mean squared error minus their mean squared
   spread" (Krogh & Vedelsby's ambiguity decomposition; on probabilities for classification), so
   the spread is what the bag gains; the refit instead gains from 1/(k-1) more rows.

The saved bag is a plain scikit-learn object: ``Pipeline([("model", Voting*([("fold_1",
Pipeline([("features", featurizer_1), ..., ("model", estimator_1 or a Voting of members)])), ...]))])``
— every fold keeps its own featurizer, fit on its own training rows. Predicting costs k models' time.

**Under log loss** a classifier's bag is their *geometric* pool instead (``pool="geometric"``):
softmax(mean_k log p_k), the normalised geometric mean of the fold models' probabilities, saved as a
``StackingClassifier(cv="prefit")`` over the same fold pipelines whose learner is clip -> log (binary:
logit of the one column stacking keeps) -> a LogisticRegression with weight 1/k on each fold's own
class column and no intercept. Why: an early-stopped fold model stops on its own small fold and can be
nearly uninformative; the arithmetic mean shrinks every row toward it (wine: test log loss 0.0152
against one default LightGBM's 0.0016), while in the log pool an uninformative member adds about the
same to every class's log-probability and drops out (0.0029; bench/results/bag-metric-*). The choice
bag or refit is unchanged: the out-of-fold predictions of both shapes are the same (each fold model on
its own fold), so there is no validation evidence between them beyond the spread the rule measures.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logit
from sklearn.ensemble import StackingClassifier, VotingClassifier, VotingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder
from sklearn.utils import Bunch

from ..prepare.schema import Task
from .book import BAG_MEMORY_BYTES

#: A trial's fold models travel back from its worker only when they pickle to at most this; the parent
#: keeps those of the best KEEP_FOLD_MODELS trials within BAG_MEMORY_BYTES together (``book``).
KEEP_MODEL_BYTES = BAG_MEMORY_BYTES // 3
#: Bag when the fold models' spread is at least this share of their out-of-fold squared error.
MIN_AMBIGUITY = 0.03
#: Rows the spread is measured on (every fold model predicts them: a fold model's spread is heavy-tailed,
#: so a sample of the folds can miss the one that differs).
AMBIGUITY_ROWS = 200
#: Seconds a fold pipeline takes to predict a few rows whatever their number (featurizer overhead).
SPREAD_FIXED_SECONDS = 0.05
FINAL_MODELS = ("auto", "refit", "bag")
#: How a bag combines its folds: "mean" (soft voting) or "geometric" (log-opinion pool; classifiers under log loss).
POOLS = ("mean", "geometric")
#: Probabilities are clipped to [PROB_FLOOR, 1 - PROB_FLOOR] before the geometric pool takes their logarithm.
PROB_FLOOR = 1e-15


def pool_for(metric_name: str, task: Task) -> str:
    """The bag's pool for a run: geometric for a classifier judged by log loss, else the mean."""
    return "geometric" if metric_name == "log_loss" and task.is_classification else "mean"


def spread_seconds(k: int, members: list[Any], featurize_seconds: float, n_rows: int) -> float:
    """What measuring the fold models' spread costs, from the trials' measured times: each of the k
    folds featurizes and predicts AMBIGUITY_ROWS rows (``predict_seconds`` covered every row once)."""
    per_row = (featurize_seconds + sum(m.predict_seconds for m in members)) / max(n_rows, 1)
    return k * (SPREAD_FIXED_SECONDS + AMBIGUITY_ROWS * per_row)


@dataclass
class Bagger:
    """What a bag needs, kept by the facade after the search: the folds' featurizers and the fold
    models of the best few trials (``book.TrialBook.fold_models``)."""

    featurizers: list[Any]
    fold_models: dict[int, tuple]      # trial id -> (per fold: fitted steps after the featurizer, bytes)
    task: Task
    classes: list[Any] | None          # labels in code order (the fold models predict codes 0..K-1)
    X: Any                             # raw training rows (setup rows and the spread's sample)
    y: np.ndarray                      # their labels (classification) or values
    seed: int = 0
    pool: str = "mean"                 # how ``pipeline`` combines the folds (POOLS, ``pool_for``)

    def __post_init__(self) -> None:
        self._made: dict[tuple, list[Pipeline]] = {}

    @property
    def k(self) -> int:
        return len(self.featurizers)

    def available(self, *trial_ids: int) -> bool:
        """Whether every one of the trials' fold models was kept (and each fold saw every class)."""
        return all(t in self.fold_models and len(self.fold_models[t][0]) == self.k >= 2 and self._all_classes(t)
                   for t in trial_ids)

    def _all_classes(self, trial_id: int) -> bool:
        if not self.task.is_classification:
            return True
        k = len(self.classes or [])
        return all(np.array_equal(np.asarray(steps[-1][1].classes_, dtype=int), np.arange(k))
                   for steps in self.fold_models[trial_id][0])

    def folds(self, trial_ids: list[int], weights: list[float] | None = None) -> list[Pipeline]:
        """Per fold, one fitted Pipeline on the raw columns: the fold's featurizer, then the trial's fold
        model, or (several trials: a Caruana ensemble) their weighted soft Voting, shaped like a
        refit ensemble. The weighted average of bags is the bag of the folds' weighted averages."""
        key = (tuple(trial_ids), tuple(weights or ()))
        if key not in self._made:
            self._made[key] = self._folds(trial_ids, weights)
        return self._made[key]

    def _folds(self, trial_ids: list[int], weights: list[float] | None) -> list[Pipeline]:
        out = []
        for i, featurizer in enumerate(self.featurizers):
            if len(trial_ids) == 1:
                out.append(Pipeline([("features", featurizer), *self.fold_models[trial_ids[0]][0][i]]))
                continue
            members = [(f"trial_{t}", Pipeline(list(self.fold_models[t][0][i]))) for t in trial_ids]
            rows = _setup_rows(self.y)
            Xf = featurizer.transform(self.X.iloc[rows])
            voting = self._voting(members, Xf, self.y[rows], weights)
            out.append(Pipeline([("features", featurizer), ("model", voting)]))
        return out

    @property
    def combined(self) -> str:
        """How the saved bag combines its folds, in words (for the run's notes)."""
        return ("pooled (the normalised geometric mean of their probabilities)" if self.geometric
                else "averaged")

    @property
    def geometric(self) -> bool:
        return self.pool == "geometric" and self.task.is_classification

    def pipeline(self, trial_ids: list[int], weights: list[float] | None = None) -> Pipeline:
        """The bag of the fold models, equal weights over folds, as a plain scikit-learn Pipeline
        (soft voting, or the geometric pool: ``pool``)."""
        fitted = [(f"fold_{i + 1}", p) for i, p in enumerate(self.folds(trial_ids, weights))]
        rows = _setup_rows(self.y)
        make = self._geometric if self.geometric else self._voting
        return Pipeline([("model", make(fitted, self.X.iloc[rows], self.y[rows], None))])

    def _geometric(self, fitted: list[tuple[str, Any]], X: Any, y: np.ndarray, weights: None = None) -> Any:
        """The log-opinion pool of classifiers fit on class codes: softmax(mean log p), as a StackingClassifier
        whose learner's weights are set, not fit (see the module doc)."""
        k, n_classes = len(fitted), len(self.classes)
        binary = n_classes == 2  # stacking keeps one column a member: log p1 - log p0 is its logit
        learner = Pipeline([("clip", FunctionTransformer(np.clip, kw_args={"a_min": PROB_FLOOR,
                                                                           "a_max": 1.0 - PROB_FLOOR})),
                            ("log", FunctionTransformer(logit if binary else np.log)),
                            ("pool", LogisticRegression())])
        model = StackingClassifier(list(fitted), final_estimator=learner, cv="prefit", stack_method="predict_proba")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)  # prefit members: this only sets the stack up; the weights are set below
        pool = model.final_estimator_[-1]
        # column j * K + c is fold j's probability of class code c: weight 1/k toward class c
        coef = np.full((1, k), 1.0 / k) if binary else np.kron(np.full((1, k), 1.0 / k), np.eye(n_classes))
        pool.coef_, pool.intercept_ = coef, np.zeros(coef.shape[0])
        pool.classes_ = np.arange(n_classes)
        model._label_encoder.classes_ = np.asarray(self.classes)  # the members' columns are the codes' classes
        model.classes_ = model._label_encoder.classes_
        return model

    def _voting(self, fitted: list[tuple[str, Any]], X: Any, y: np.ndarray, weights: list[float] | None) -> Any:
        """A soft Voting estimator around members already fit on class codes (or values)."""
        if self.task.is_classification:
            model = VotingClassifier([(n, FrozenEstimator(p)) for n, p in fitted], voting="soft", weights=weights)
        else:
            model = VotingRegressor([(n, FrozenEstimator(p)) for n, p in fitted], weights=weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)  # frozen members: this only sets the ensemble up
        model.estimators = list(fitted)  # unwrapped, as a plain fit leaves them
        model.estimators_ = [p for _, p in fitted]
        model.named_estimators_ = Bunch(**dict(fitted))
        if self.task.is_classification:  # the members' columns are the classes in code order
            model.le_ = LabelEncoder()
            model.le_.classes_ = np.asarray(self.classes)
            model.classes_ = model.le_.classes_
        return model

    def ambiguity(self, trial_ids: list[int], weights: list[float] | None, oof: np.ndarray, y_oof: np.ndarray) -> float:
        """The fold models' mean squared spread on a sample of rows, as a share of their out-of-fold
        squared error (probabilities for classification): what averaging them takes off."""
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(len(self.X), min(AMBIGUITY_ROWS, len(self.X)), replace=False))
        X = self.X.iloc[rows]
        folds = self.folds(trial_ids, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.task.is_classification:
                preds = np.stack([p.predict_proba(X) for p in folds])        # (k, n, K)
                onehot = np.eye(oof.shape[1])[np.asarray(y_oof, dtype=int)]
                error = float(np.mean(np.sum((oof - onehot) ** 2, axis=1)))
                spread = float(np.mean(np.sum((preds - preds.mean(axis=0)) ** 2, axis=2)))
            else:
                preds = np.stack([p.predict(X) for p in folds]).astype(float)  # (k, n)
                error = float(np.mean((oof - np.asarray(y_oof, dtype=float)) ** 2))
                spread = float(np.mean((preds - preds.mean(axis=0)) ** 2))
        return spread / error if error > 0 else 0.0


def decide(mode: str, bagger: Bagger | None, trial_ids: list[int], weights: list[float] | None,
           refit_seconds: float, seconds_left: float, oof: np.ndarray | None, y_oof: np.ndarray,
           spread_cost: float = 0.0) -> tuple[str, str]:
    """("bag" | "refit", why in words) for the saved model, by the rule in the module doc;
    ``spread_cost``: what measuring the spread would take (``spread_seconds``), on top of the refit."""
    if mode == "refit":
        return "refit", ""
    if bagger is None or not bagger.available(*trial_ids):
        why = "" if mode == "auto" else ("no fold models were kept (hold-out validation, a row-sample trial or "
                                         "models too large to keep): the model was refit on all rows")
        return "refit", why
    k = bagger.k
    if mode == "bag":
        return "bag", f"the {k} fold models were {bagger.combined} (final_model='bag')"
    if refit_seconds + spread_cost > seconds_left:
        return "bag", (f"refitting on all rows would take about {refit_seconds:.1f} s and {max(seconds_left, 0):.1f} s "
                       f"were left: the {k} models fitted during validation (one per fold) were {bagger.combined} "
                       "instead")
    share = bagger.ambiguity(trial_ids, weights, oof, y_oof) if oof is not None else 0.0
    if share >= MIN_AMBIGUITY:
        return "bag", (f"the {k} fold models disagree by {share:.1%} of their validation error, which averaging "
                       f"them removes (at least {MIN_AMBIGUITY:.0%} bags): they were {bagger.combined}, not refit")
    return "refit", ""


def _setup_rows(y: np.ndarray, n: int = 50) -> np.ndarray:
    """A few rows (every class present) to set a Voting estimator up around frozen members."""
    picks = [np.arange(min(n, len(y)))]
    if y.dtype.kind in "OUSb" or len(np.unique(y)) < 50:
        picks += [np.flatnonzero(y == label)[:1] for label in np.unique(y)]
    return np.unique(np.concatenate(picks))
