"""The last steps of a run, inside the budget: ensembles on the leaderboard, the final choice, the refit.

Ensembles are built from the out-of-fold predictions of the best trials (see ``ensemble``) and
recorded as leaderboard rows of their own. The saved model is whichever row scores best on
validation and can still be refit on all training rows in the time left: a single model's
Pipeline, or a Pipeline ending in a weighted soft ``Voting*`` (Caruana selection) or a
``Stacking*`` estimator (logistic regression / elastic net on the members' predictions). All of them
are plain scikit-learn objects, so the saved file keeps loading without this repository.
"""
from __future__ import annotations

import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch

from . import blocks, ensemble as ens
from .bag import Bagger, decide, spread_seconds
from ..models.metrics import Metric
from ..models.families import ENSEMBLE_KINDS, FAMILIES, bag_folds, single_member
from .results import TrialResult
from ..prepare.schema import Task
from .trial import RefitData, _limit_threads, model_steps, refit

#: Fewer members for stacking: every member is refit, and the learner gains little past a handful.
STACKING_MEMBERS = 6
#: The refit's reserve: estimated seconds times this (estimates from fold fits run a little short).
RESERVE_MARGIN = 1.3
#: Seconds for what follows the refit whatever the data: scoring the training sample, the card, saving.
FIXED_SECONDS = 1.0
#: The likely ensemble is picked on at most this many validation rows (a sample: it runs during the search).
LIKELY_ROWS = 1000


def likely_members(trials: list[TrialResult], oof: dict[int, np.ndarray], y: np.ndarray, metric: Metric,
                   task: Task, pos_index: int, seed: int = 0, cache: dict | None = None) -> list[TrialResult]:
    """The members of the Caruana ensemble the search's trials so far would make (as ``ensemble_rows``
    picks it), on a sample of the validation rows. Empty when it would hold one model only.

    ``cache`` (a dict kept between calls) skips the pick when the candidate pool has not changed."""
    ok = _ensemble_pool(trials, oof)
    if len(ok) < 2:
        return []
    pool = ens.pick_members([t.trial_id for t in ok], [t.family for t in ok], [metric.loss(t.score) for t in ok])
    if len(pool) < 2:
        return []
    if cache is not None and cache.get("pool") == pool:
        return cache["members"]
    rows = np.arange(len(y))
    if len(rows) > LIKELY_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), LIKELY_ROWS, replace=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = ens.caruana_weights([oof[i][rows] for i in pool], y[rows], metric, task, pos_index)
    by_id = {t.trial_id: t for t in ok}
    chosen = [by_id[pool[i]] for i in np.flatnonzero(counts)]
    chosen = chosen if len(chosen) > 1 else []
    if cache is not None:
        cache.update(pool=pool, members=chosen)
    return chosen


def _ensemble_pool(trials: list[TrialResult], oof: dict[int, np.ndarray]) -> list[TrialResult]:
    """Trials an ensemble may hold: every scored one (text families too, see ``blocks``)."""
    return [t for t in trials if t.status == "ok" and t.trial_id in oof and t.score is not None]


@dataclass
class FinalChoice:
    row: TrialResult                       # the leaderboard row of the saved model
    members: list[TrialResult] = field(default_factory=list)  # for ensembles: the member trials
    weights: list[float] = field(default_factory=list)
    note: str = ""                         # why this one, when it is not simply the best row
    final: str = "refit"                   # "refit" (on all rows) or "bag" (the fold models pooled, bag.py)


@dataclass
class RefitCost:
    """Seconds the steps after the search take, estimated from the trials' cross-validated fits."""

    n_splits: int
    n_rows: int
    train_fold_rows: float
    featurize_seconds: float = 0.0     # fitting the featurizer on all rows
    n_validation_rows: int = 0
    trial_threads: int = 1             # threads each search trial fit with
    refit_threads: int = 1             # threads the final fits use (all cores unless the data is small)

    def final_stage(self, trials: list[TrialResult], metric: Metric, ensembles: bool,
                    likely: list[TrialResult] | None = None) -> float:
        """Seconds to keep free at the end of the search: ensembles, the refit, scoring and saving.

        ``likely`` are the members of the ensemble most likely to be chosen (see ``likely_members``);
        without them, the five best trials. The reserve is what refitting them takes by their
        measured fit times, so on small data (fits of milliseconds) the search keeps nearly all the
        budget."""
        ok = sorted((t for t in trials if t.status == "ok"), key=lambda t: metric.loss(t.score))
        if not ok:
            return 0.0
        need = RESERVE_MARGIN * self.single(ok[0])
        if ensembles and len(ok) > 1:
            # building ensembles: a few metric evaluations per candidate and pick, on the validation rows
            build = 0.3 + 2e-5 * self.n_validation_rows * ens.MAX_CANDIDATES
            members = likely if likely else ok[:5]
            need = max(need, RESERVE_MARGIN * self.members(members) + build)
        return need + self.featurize_seconds + FIXED_SECONDS

    def single(self, trial: TrialResult) -> float:
        seconds = trial.fit_seconds / max(self.n_splits, 1) * (self.n_rows / max(self.train_fold_rows, 1.0))
        family = FAMILIES.get(trial.family)
        gain = 1.0 + (family.thread_scaling if family else 0.0) * (self.refit_threads / self.trial_threads - 1.0)
        return seconds / max(gain, 1.0)

    def members(self, trials: list[TrialResult]) -> float:
        # members are refit one after another, each with every core (see ``fit_final``)
        return sum(self.single(t) for t in trials)


def free_cores(cores: int, samples: int = 5) -> int:
    """Threads the final fits may use without oversubscribing the machine: ``cores`` minus the tasks
    of other processes running right now (the median of a few reads of ``/proc/loadavg``'s runnable
    count, less this process), at least 1.

    Why: the boosting libraries' and BLAS's OpenMP threads wait for each other at every step, so one
    thread descheduled by another process stalls the rest. Under load 12 on 2 cores a LightGBM refit
    of 52 rounds on 30,000 rows took 1.5 s with 1 thread and 3-114 s with 2 (bank marketing, the
    20 s run that ended at 30 s). The load average lags by a minute and counts this run's own trial
    workers, which are gone by the refit; the runnable count is now. Where it cannot be read
    (not Linux), every core."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)  # this process is one of them
        except (OSError, ValueError, IndexError):
            return cores
        if i < samples - 1:
            time.sleep(0.01)
    return max(1, min(cores, cores - int(statistics.median(counts))))


def ensemble_rows(trials: list[TrialResult], oof: dict[int, np.ndarray], y: np.ndarray, metric: Metric,
                  task: Task, pos_index: int, seed: int, next_id: int, label_order: np.ndarray | None,
                  at: float) -> tuple[list[TrialResult], dict[int, np.ndarray]]:
    """Caruana and stacking ensembles of the best trials, as leaderboard rows (ids from ``next_id``)."""
    ok = _ensemble_pool(trials, oof)
    if len(ok) < 2:
        return [], {}
    pool = ens.pick_members([t.trial_id for t in ok], [t.family for t in ok], [metric.loss(t.score) for t in ok])
    if len(pool) < 2:
        return [], {}
    by_id = {t.trial_id: t for t in ok}
    rows: list[TrialResult] = []
    preds: dict[int, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        candidates = [ens.caruana(pool, [oof[i] for i in pool], y, metric, task, pos_index),
                      ens.stacking(pool[:STACKING_MEMBERS], [oof[i] for i in pool[:STACKING_MEMBERS]], y, metric,
                                   task, pos_index, seed, label_order)]
    for cand in candidates:
        if cand is None or not math.isfinite(cand.score):
            continue
        trial_id = next_id + len(rows)
        members = [by_id[m] for m in cand.members]
        params: dict[str, Any] = {"members": list(cand.members)}
        if cand.weights:
            params["weights"] = [round(w, 4) for w in cand.weights]
        rows.append(TrialResult(trial_id, cand.kind, params, "ok", cand.score, cand.metrics,
                                fit_seconds=round(sum(m.fit_seconds for m in members), 3), started_at=at,
                                finished_at=at, note=_note(cand, members)))
        preds[trial_id] = cand.oof
    return rows, preds


def choose(best: TrialResult, ensembles: list[TrialResult], trials: list[TrialResult], metric: Metric,
           cost: RefitCost, seconds_left: float, bagger: Bagger | None = None, mode: str = "auto") -> FinalChoice:
    """The best-scoring row that can be refit in the time left, or (a Caruana ensemble) bagged from its
    members' fold models without fitting; the best single model always can be one or the other.

    ``seconds_left`` may include the budget's tolerance (the run may end a little past the budget).
    """
    by_id = {t.trial_id: t for t in trials}
    note = ""
    for row in sorted(ensembles, key=lambda r: metric.loss(r.score)):
        if not metric.better(row.score, best.score):
            break
        members = [by_id[m] for m in row.params["members"]]
        baggable = (mode != "refit" and row.family == "ensemble" and bagger is not None
                    and bagger.available(*(m.trial_id for m in members)))
        if baggable or cost.members(members) * RESERVE_MARGIN + cost.featurize_seconds + 0.5 <= seconds_left:
            return FinalChoice(row, members, list(row.params.get("weights", [])))
        note = (f"the {ENSEMBLE_KINDS[row.family].lower()} scored better but could not be refit in the "
                f"{max(seconds_left, 0):.0f} s left; the best single model was saved")
    return FinalChoice(best, note=note)


def fit_final(data: RefitData, choice: FinalChoice, oof: dict[int, np.ndarray], y_oof: np.ndarray,
              label_order: np.ndarray | None, threads: int, seed: int, best: TrialResult | None = None,
              cost: RefitCost | None = None, seconds_left: float = math.inf, bagger: Bagger | None = None,
              mode: str = "auto", row_oof: np.ndarray | None = None) -> tuple[Pipeline, FinalChoice]:
    """Make the saved model of the chosen row; return the Pipeline that is saved and what it is.

    A single model or a Caruana ensemble is refit on all rows or its fold models are bagged
    (``bag.decide``: by the time left against its measured cost, and by how much the fold models
    disagree; ``row_oof`` are the row's validation predictions). Ensemble members are
    fit one after another, best first, each with ``threads`` threads: side by side in threads they took
    three times their estimate (california: 36.5 s for 12 s). Before each member, the first included,
    the time left is checked against its measured cost, scaled by how far off the estimates of the
    members already fit were; when the rest cannot be fit in ``seconds_left`` the best single model
    (``best``) is saved instead, by what costs no fitting first: its bag, its fit among the members.
    """
    start = time.perf_counter()
    ids = [m.trial_id for m in choice.members] or [choice.row.trial_id]
    if not choice.members or choice.row.family == "ensemble":
        fits = (cost.members(choice.members) if choice.members else cost.single(choice.row)) if cost else 0.0
        refit_seconds = RESERVE_MARGIN * (fits + cost.featurize_seconds) if cost else 0.0
        spread = (spread_seconds(bagger.k, choice.members or [choice.row], cost.featurize_seconds, cost.n_rows)
                  if bagger is not None and cost is not None else 0.0)
        kind, why = decide(mode, bagger, ids, choice.weights or None, refit_seconds, seconds_left,
                           row_oof if row_oof is not None else oof.get(choice.row.trial_id), y_oof, spread)
        if kind == "bag":
            return bagger.pipeline(ids, choice.weights or None), _with(choice, why, "bag")
        choice = _with(choice, why, "refit")
    if not choice.members:
        return refit(data, choice.row.family, choice.row.params, threads, seed), choice
    y = data.y
    voting = choice.row.family == "ensemble"
    # a Voting classifier fits its members on label codes (explanations and exports rely on it)
    codes = voting and data.task.is_classification
    y_members = LabelEncoder().fit_transform(y) if codes else y
    fitted: list[tuple[str, Pipeline]] = []
    featurizer = prefix = None
    with _limit_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimated = actual = 0.0
        for m in choice.members:
            guess = (cost.single(m) + (0.0 if fitted else cost.featurize_seconds)) if cost is not None else 0.0
            # estimates under a second are mostly fixed overhead: do not let them scale the rest
            drift = max(1.0, actual / max(estimated, 1.0)) if fitted else RESERVE_MARGIN
            if time.perf_counter() - start + guess * drift > seconds_left:
                reusable = [] if codes else fitted
                return _fallback(data, choice, best, featurizer, reusable, threads, seed, len(fitted),
                                 time.perf_counter() - start, bagger, mode)
            began = time.perf_counter()
            if featurizer is None:  # fit only once the first member is known to fit in time
                featurizer, prefix = blocks.ensemble_featurizer(choice.members, list(data.columns), data.featurization,
                                                                data.task, seed)
                with blocks.encoding(choice.members):
                    Xf = featurizer.fit_transform(data.X, y)
                blocks.finish(featurizer, choice.members)
            keep = [] if prefix is None else [("select", blocks.selector(blocks.block_columns(featurizer, prefix[m.trial_id])))]
            sample = Xf if not keep else keep[0][1].fit_transform(Xf)
            steps = keep + model_steps(m.family, m.params, data.task, threads, seed, sample, codes)
            member = Pipeline(steps).fit(Xf, y_members)
            fitted.append((f"trial_{m.trial_id}", member))
            estimated, actual = estimated + guess, actual + time.perf_counter() - began
        if voting:
            model = _prefit_voting(fitted, Xf, y, data.task, choice.weights)
        else:
            model = _prefit_stacking(fitted, Xf, y, data.task, oof, choice, y_oof, label_order, seed)
    return Pipeline([("features", featurizer), ("model", model)]), choice


def _with(choice: FinalChoice, why: str, final: str) -> FinalChoice:
    if not why and final == choice.final:
        return choice
    note = "; ".join(n for n in (choice.note, why) if n)
    return FinalChoice(choice.row, choice.members, choice.weights, note, final)


def _fallback(data: RefitData, choice: FinalChoice, best: TrialResult | None, featurizer: Any,
              fitted: list[tuple[str, Pipeline]], threads: int, seed: int, n_fitted: int,
              spent: float, bagger: Bagger | None, mode: str) -> tuple[Pipeline, FinalChoice]:
    """The best single model, when an ensemble's members could not all be refit in time: its bag
    (no fitting), else its fit among the members done, else (the one fit left) its refit."""
    best = best or choice.members[0]
    spent = max(spent, 0.0)
    did = f" ({spent:.0f} s for {n_fitted} of {len(choice.members)})" if n_fitted else ""
    note = (f"the {ENSEMBLE_KINDS[choice.row.family].lower()} scored better, but refitting its members would "
            f"have taken longer than the time left{did}; the best single model was saved")
    done = dict(fitted)
    ids = [m.trial_id for m in choice.members]
    if mode != "refit" and choice.row.family == "ensemble" and bagger is not None and bagger.available(*ids):
        return bagger.pipeline(ids, choice.weights or None), _with(choice, (
            f"refitting the ensemble's members would have taken longer than the time left{did}: their "
            f"{bagger.k} fold models were {bagger.combined} instead"), "bag")
    if mode != "refit" and bagger is not None and bagger.available(best.trial_id):
        note += f", its {bagger.k} fold models {bagger.combined}"
        return bagger.pipeline([best.trial_id]), FinalChoice(best, note=note, final="bag")
    if f"trial_{best.trial_id}" in done:
        pipeline = Pipeline([("features", featurizer), *done[f"trial_{best.trial_id}"].steps])
    else:
        pipeline = refit(data, best.family, best.params, threads, seed)
    return pipeline, FinalChoice(best, note=note)


def _prefit_voting(fitted: list[tuple[str, Pipeline]], Xf: Any, y: np.ndarray, task: Task,
                   weights: list[float]) -> Any:
    """A weighted soft Voting estimator around members already fit (classifiers on label codes)."""
    cls = VotingClassifier if task.is_classification else VotingRegressor
    extra = {"voting": "soft"} if task.is_classification else {}
    model = cls([(name, FrozenEstimator(est)) for name, est in fitted], weights=weights, **extra).fit(Xf, y)
    # unwrap, so that the saved file holds the members themselves, exactly as a plain fit leaves them
    model.estimators = list(fitted)
    model.estimators_ = [est for _, est in fitted]
    model.named_estimators_ = Bunch(**dict(fitted))
    return model


def _prefit_stacking(fitted: list[tuple[str, Pipeline]], Xf: Any, y: np.ndarray, task: Task,
                     oof: dict[int, np.ndarray], choice: FinalChoice, y_oof: np.ndarray,
                     label_order: np.ndarray | None, seed: int) -> Any:
    """A Stacking estimator around members fit on all rows, whose learner is fit on their
    out-of-fold predictions (scikit-learn's own cv would refit every member k more times)."""
    cls = StackingClassifier if task.is_classification else StackingRegressor
    extra = {"stack_method": "predict_proba"} if task.is_classification else {}
    stack = cls(fitted, final_estimator=ens.stacking_learner(task, seed), cv="prefit", **extra)
    # "prefit" fits the learner on in-sample predictions, which would overfit: fit it on a few rows
    # (every class present) to set the estimator up, then replace the learner by one fit out of fold.
    stack.fit(Xf[_setup_rows(y)], y[_setup_rows(y)])
    X_meta = ens.stack_features([oof[m.trial_id] for m in choice.members], task, label_order)
    target = y_oof if label_order is None else np.argsort(label_order)[y_oof]
    stack.final_estimator_ = ens.stacking_learner(task, seed).fit(X_meta, target)
    return stack


def _setup_rows(y: np.ndarray, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(y), min(n, len(y)), replace=False)]
    if y.dtype.kind in "OUSb" or len(np.unique(y)) < 50:
        picks += [np.flatnonzero(y == label)[:2] for label in np.unique(y)]
    return np.unique(np.concatenate(picks))


def label_order(classes: list[Any] | None, y_labels: np.ndarray) -> np.ndarray | None:
    """For each class in scikit-learn's sorted order, its index in ``classes`` (None for regression)."""
    if classes is None:
        return None
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[c] for c in np.unique(np.asarray(y_labels))])


def member_predictions(pipeline: Pipeline, X: Any, classes: list[Any] | None) -> dict[str, np.ndarray]:
    """Each member's predictions of a saved ensemble (probabilities ordered like ``classes``)."""
    model = pipeline.named_steps["model"]
    if bag_folds(pipeline) is not None:  # a bag's folds are one configuration, not members to compare
        return {}
    if not isinstance(model, (VotingClassifier, VotingRegressor, StackingClassifier, StackingRegressor)) \
            or single_member(model) is not None:  # one model in scikit-learn's label encoding, not an ensemble
        return {}
    Xf = pipeline.named_steps["features"].transform(X)
    names = [n for n, _ in model.estimators]
    out = {}
    for name, est in zip(names, model.estimators_):
        out[name] = _ordered(est, Xf, classes, getattr(model, "classes_", None))
    return out


def _ordered(est: Any, X: Any, classes: list[Any] | None, model_classes: Any) -> np.ndarray:
    if classes is None:
        return np.asarray(est.predict(X), dtype=float)
    raw = est.predict_proba(X)
    labels = list(model_classes) if model_classes is not None else list(est.classes_)
    out = np.zeros((raw.shape[0], len(classes)))
    lookup = {c: i for i, c in enumerate(classes)}
    out[:, [lookup[c] for c in labels]] = raw
    return out


def _note(cand: ens.EnsembleCandidate, members: list[TrialResult]) -> str:
    label = {m.trial_id: FAMILIES[m.family].label.split(" (")[0] if m.family in FAMILIES else m.family for m in members}
    if cand.kind == "ensemble":
        parts = ", ".join(f"#{m} {label[m]} ×{w:.2f}" for m, w in zip(cand.members, cand.weights))
        return f"weighted average of {len(members)} models: {parts}"
    parts = ", ".join(f"#{m} {label[m]}" for m in cand.members)
    return f"{'logistic regression' if cand.oof.ndim == 2 else 'elastic net'} on {len(members)} models: {parts}"

