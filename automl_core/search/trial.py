"""One trial, run inside a worker process: featurize each fold, fit, predict out-of-fold, score.

Workers are separate processes (loky) so that a trial can be cut off at its timeout, and a trial
that crashes its process costs only that trial. The training data is shipped once, as a file the
workers load and keep; featurized folds are cached per worker, since every trial reuses them.
"""
from __future__ import annotations

import contextlib
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import joblib
import numpy as np
from scipy import sparse
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ..models.metrics import score_all
from ..io.limits import address_space_left, size_text
from ..models.families import FAMILIES, MAX_BOOSTING_ROUNDS, classifier_step
from ..prepare.schema import ColumnInfo, Task
from .results import TrialOutcome, TrialSpec


@dataclass(frozen=True)
class TrainingData:
    """What workers need, written once to a file by the search and cached by path in each worker.

    Only featurized folds: the raw table stays in the parent (see :class:`RefitData`), so a worker
    holds the data once, not twice.
    """

    y_codes: np.ndarray          # class codes 0..K-1, or float values, of the rows the splits index
    splits: tuple                # ((train_idx, val_idx), ...)
    folds: tuple                 # ((featurized train rows, featurized validation rows), ...) per split
    task: Task
    n_classes: int
    pos_index: int
    # For text families only (None without them): the raw rows the splits index, which their trials
    # featurize per fold with their own TF-IDF settings; and how (columns, featurization mode, seed).
    raw: Any = None
    columns: tuple[ColumnInfo, ...] = ()
    featurization: Any = "auto"
    seed: int = 0
    embeddings: dict | None = None  # text hash -> sentence embedding, of every text (``prepare.embeddings``)
    keep_models_bytes: int = 0   # a trial sends its fold models back when they pickle to at most this (0: never)


@dataclass(frozen=True)
class RefitData:
    """What the final refit needs, kept in the parent: every training row, raw."""

    X: Any                       # raw feature frame of all training rows
    y: np.ndarray                # labels (classification) or float values
    columns: tuple[ColumnInfo, ...]
    task: Task
    featurization: Any
    sample: Any                  # a featurized matrix (a training fold), to choose dense / scale steps


def featurize_folds(X: Any, y_codes: np.ndarray, splits: tuple, columns: list[ColumnInfo], task: Task,
                    featurization: Any, seed: int, featurizers: list | None = None) -> tuple:
    """Featurize every split once, in the parent: trials of every family reuse these matrices.

    ``featurizers`` (a list, filled in place) receives each split's fitted featurizer: with the
    trials' fold models they make the bag of fold models (``finalize.bag_pipeline``)."""
    from ..prepare.featurize import build_featurizer  # workers never featurize, and skrub is slow to import
    folds = []
    for train_idx, val_idx in splits:
        featurizer = build_featurizer(columns, mode=featurization, scale=False, task=task, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Xt = featurizer.fit_transform(X.iloc[train_idx], y_codes[train_idx])
            Xv = featurizer.transform(X.iloc[val_idx])
        folds.append((Xt, Xv))
        if featurizers is not None:
            featurizers.append(featurizer)
    return tuple(folds)


def scaler_for(X: Any) -> StandardScaler:
    """Linear models and kNN need comparable feature scales; sparse matrices cannot be centred."""
    return StandardScaler(with_mean=not sparse.issparse(X))


_DATA: dict[str, TrainingData] = {}
_FOLDS: dict[tuple, tuple] = {}


def load_data(path: str) -> TrainingData:
    if path not in _DATA:
        _DATA.clear()
        _FOLDS.clear()
        _DATA[path] = joblib.load(path)
    return _DATA[path]


# A sparse matrix is densified for families that need it only up to this many cells (8 bytes each).
MAX_DENSE_CELLS = 30_000_000
# Beyond this many cells a fold's scaled or densified copy is not kept beside others.
LARGE_FOLD_CELLS = 20_000_000


def densifier(X: Any) -> FunctionTransformer:
    """A pipeline step turning the featurizer's sparse output dense (public scipy callable)."""
    if X.shape[0] * X.shape[1] > MAX_DENSE_CELLS:
        raise ValueError(f"this model needs dense data, and {X.shape[0]:,} rows x {X.shape[1]:,} features "
                         "is too large to densify")
    return FunctionTransformer(type(X).toarray, accept_sparse=True)


def _fold(path: str, data: TrainingData, fold: int, scale: bool, dense: bool) -> tuple:
    """The fold's matrices for a family, and the fitted steps (densify, scale) that made them."""
    key = (path, fold, scale, dense)
    if key not in _FOLDS:
        Xt, Xv = data.folds[fold]
        steps: list[tuple[str, Any]] = []
        if dense and sparse.issparse(Xt):
            steps.append(("dense", densifier(Xt).fit(Xt[:1])))  # raises when too large
            Xt, Xv = Xt.toarray(), Xv.toarray()
        if scale:
            scaler = scaler_for(Xt).fit(Xt)
            steps.append(("scale", scaler))
            Xt, Xv = scaler.transform(Xt), scaler.transform(Xv)
        if Xt.shape[0] * Xt.shape[1] > LARGE_FOLD_CELLS:
            # Large data: one scaled / densified copy at a time, or a worker holds several of them.
            for other in [k for k in _FOLDS if k[:2] == key[:2] and k[2:] != (False, False)]:
                del _FOLDS[other]
        _FOLDS[key] = (Xt, Xv, tuple(steps))
    return _FOLDS[key]


#: Share of its timeout a trial plans to use when a family bounds its own fit (``max_seconds``): the
#: rest is for predicting the validation rows and sending the outcome back.
SHARE_OF_TIMEOUT = 0.8

#: Fitted text featurizations a worker keeps (per fold); trials with the same TF-IDF settings reuse them.
TEXT_CACHE_SETTINGS = 2


def _text_fold(path: str, data: TrainingData, fold: int, settings: dict[str, Any]) -> tuple:
    """A text family's featurized fold: (train rows, validation rows, seconds its fit took)."""
    from ..prepare.featurize import build_featurizer
    key = (path, fold, "text", tuple(sorted(settings.items())))
    if key not in _FOLDS:
        others = list(dict.fromkeys(k[3] for k in _FOLDS if len(k) == 4 and k[2] == "text" and k[3] != key[3]))
        for old in others[:max(0, len(others) - TEXT_CACHE_SETTINGS + 1)]:  # the oldest settings go first
            for k in [k for k in _FOLDS if len(k) == 4 and k[3] == old]:
                del _FOLDS[k]
        train_idx, val_idx = data.splits[fold]
        start = time.perf_counter()
        featurizer = build_featurizer(list(data.columns), mode=data.featurization, scale=True, task=data.task,
                                      seed=data.seed, text=settings)
        with _encoding(settings, data):
            Xt = featurizer.fit_transform(data.raw.iloc[train_idx], data.y_codes[train_idx])
            Xv = featurizer.transform(data.raw.iloc[val_idx])
        _FOLDS[key] = (Xt, Xv, time.perf_counter() - start)
    return _FOLDS[key]


def _encoding(settings: dict[str, Any], data: TrainingData | None = None) -> Any:
    """Sentence embeddings come from the vectors computed before the search (workers: ``data``; the
    refit: this process's cache); nothing to do for TF-IDF."""
    if settings.get("kind") != "embedding":
        return contextlib.nullcontext()
    from ..prepare import embeddings
    cache = embeddings.shared_cache() if data is None else embeddings.EmbeddingCache(vectors=data.embeddings, frozen=True)
    return embeddings.encoding_with(cache)


def _limit_threads(threads: int):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=threads)


def run_trial(spec: TrialSpec, data: TrainingData | None = None) -> TrialOutcome:
    """Fit and score one configuration on every split. Never raises: failures come back as outcomes.

    ``data`` is given on a Dask cluster (scattered to the workers); locally it is read from the file.
    """
    if data is not None and spec.data_path not in _DATA:
        _DATA.clear()
        _FOLDS.clear()
        _DATA[spec.data_path] = data
    try:
        with _limit_threads(spec.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library chatter would drown the progress lines
            return _run_trial(spec)
    except MemoryError as exc:  # the worker's memory limit (limits.py): this trial alone fails
        return TrialOutcome(spec.trial_id, "failed", params=dict(spec.params),
                            error=f"ran out of memory (MemoryError{': ' + str(exc)[:200] if str(exc) else ''}); "
                                  "the worker memory limit is set by AUTOML_WORKER_MEMORY_MB")
    except Exception as exc:  # a failing trial is recorded and the search goes on
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return TrialOutcome(spec.trial_id, "failed", params=dict(spec.params), error=detail[:2000])


def _run_trial(spec: TrialSpec) -> TrialOutcome:
    data = load_data(spec.data_path)
    if getattr(data, "Y", None) is not None:  # a multilabel target: one-vs-rest heads (search/multilabel.py)
        from .multilabel import run_multilabel_trial
        return run_multilabel_trial(spec, data)
    family = FAMILIES[spec.family]
    task = data.task
    classification = task.is_classification
    fit_params, note = dict(spec.params), ""
    if family.round_bytes is not None:
        rounds, note = rounds_that_fit(family.round_bytes, spec.params, data.n_classes if classification else 1)
        if rounds == 0:  # not even a handful of rounds fits: fail with the reason, the search goes on
            return TrialOutcome(spec.trial_id, "failed", params=dict(spec.params), error=note)
        fit_params["n_estimators"] = rounds
    val_rows = np.concatenate([v for _, v in data.splits])
    oof = np.zeros((len(val_rows), data.n_classes)) if classification else np.zeros(len(val_rows))
    fit_s = pred_s = 0.0
    best_rounds: list[int] = []
    epochs_run: list[int] = []  # per fold, for a family that trains in epochs and may cut them (``epochs_run_``)
    offset = 0
    n_features = 0
    rng = np.random.default_rng(spec.seed + spec.trial_id)
    began = time.perf_counter()
    fold_models: list[tuple] = []
    for fold, (train_idx, val_idx) in enumerate(data.splits):
        if family.text is not None:
            # the vectorizer's fit counts as fit time (a cached one too): the refit will pay it
            Xt, Xv, featurize_s = _text_fold(spec.data_path, data, fold, family.text(spec.params))
            fit_s += featurize_s
            steps = None  # its own featurizer per fold: no fold model a bag could reuse
        else:
            Xt, Xv, steps = _fold(spec.data_path, data, fold, family.needs_scaling, family.dense_only)
        y_train, y_val = data.y_codes[train_idx], data.y_codes[val_idx]
        if spec.row_fraction < 1.0:
            keep = np.sort(rng.choice(len(train_idx), max(50, int(len(train_idx) * spec.row_fraction)), replace=False))
            Xt, y_train = Xt[keep], y_train[keep]
        n_features = Xt.shape[1]
        estimator = family.build(fit_params, task, spec.threads, spec.seed)
        if spec.seconds and hasattr(estimator, "max_seconds"):
            # a family that bounds its own fit gets this fold's share of the trial's time, with room to spare
            left = SHARE_OF_TIMEOUT * spec.seconds - (time.perf_counter() - began)
            estimator.set_params(max_seconds=max(0.1, left / (len(data.splits) - fold)))
        start = time.perf_counter()
        if family.early_stopping:
            best_rounds.append(family.early_stopping(estimator, Xt, y_train, Xv, y_val))
        else:
            estimator.fit(Xt, y_train)
        fit_s += time.perf_counter() - start
        if hasattr(estimator, "epochs_run_"):
            epochs_run.append(int(estimator.epochs_run_))
        start = time.perf_counter()
        if classification:
            proba = np.zeros((len(val_idx), data.n_classes))
            proba[:, np.asarray(estimator.classes_, dtype=int)] = estimator.predict_proba(Xv)
            oof[offset:offset + len(val_idx)] = proba
        else:
            oof[offset:offset + len(val_idx)] = estimator.predict(Xv)
        pred_s += time.perf_counter() - start
        offset += len(val_idx)
        if steps is not None:
            fold_models.append((*steps, ("model", estimator)))
    params = dict(spec.params)
    if best_rounds:
        params["n_estimators"] = refit_rounds(best_rounds)
    if epochs_run:
        # as with early stopping: the record (and the refit on all rows) holds the epochs the folds ran
        # (a time limit may have cut the plan), each fold's beside them
        params["epochs"] = max(1, int(round(float(np.mean(epochs_run)))))
        params["epochs_run"] = epochs_run
    metrics = score_all(task, data.y_codes[val_rows], oof, data.pos_index)
    whole = spec.row_fraction >= 1.0 and family.text is None
    kept, size = _kept_models(fold_models, data.keep_models_bytes if whole else 0)
    return TrialOutcome(spec.trial_id, "ok", metrics=metrics, params=params, oof=oof,
                        fit_seconds=fit_s, predict_seconds=pred_s, n_features=n_features,
                        fold_models=kept, fold_bytes=size, note=note)


#: Share of a worker's remaining address space a boosted model may take: the rest holds the folds, the
#: validation predictions and the pickled fold models sent back.
MODEL_SHARE = 0.5
#: Fewer rounds than this is no model worth scoring: the trial fails with the reason instead.
MIN_ROUNDS = 5


def rounds_that_fit(round_bytes: Callable[[dict[str, Any], int], float], params: dict[str, Any], n_classes: int,
                    room: int | None = None) -> tuple[int, str]:
    """The boosting rounds a trial may run under its worker's memory cap, and a note when they are fewer than asked.

    Args:
        round_bytes: the family's price of one round (``ModelFamily.round_bytes``).
        params: the trial's hyperparameters (``n_estimators`` when fixed, else MAX_BOOSTING_ROUNDS).
        n_classes: classes of the target (1 for regression).
        room: bytes left under the cap; None: this process's (``limits.address_space_left``).

    Returns:
        (rounds, note): rounds 0 with the reason when not even MIN_ROUNDS fit; the asked rounds and "" when they
        fit or the worker has no cap.
    """
    asked = int(params.get("n_estimators", MAX_BOOSTING_ROUNDS))
    room = address_space_left() if room is None else room
    if room is None:
        return asked, ""
    per_round = round_bytes(params, n_classes)
    fits = int(room * MODEL_SHARE // per_round) if per_round > 0 else asked
    if fits >= asked:
        return asked, ""
    what = f"{size_text(per_round)} a round ({n_classes:,} classes, {params.get('num_leaves', 31)} leaves)"
    if fits < MIN_ROUNDS:
        return 0, (f"the model would not fit in the worker's memory: {what}, and {size_text(room)} is left under "
                   "its cap; fewer classes or leaves fit (the cap is set by AUTOML_WORKER_MEMORY_MB)")
    return fits, f"at most {fits} boosting rounds: {what} under the worker's memory cap"


def refit_rounds(best_rounds: list[int]) -> int:
    """The round count the refit on all rows uses, from each fold's early-stopped best round count:
    their mean (bench/refit_rounds.py measures the alternatives: the median, the mean scaled by rows)."""
    return max(1, int(round(float(np.mean(best_rounds)))))


def _kept_models(fold_models: list[tuple], limit: int) -> tuple[tuple | None, int]:
    """The fold models (fitted steps after the featurizer, per fold) when they pickle to at most
    ``limit`` bytes: only those travel back to the parent, which keeps the best few (``book``)."""
    if limit <= 0:
        return None, 0
    import pickle
    try:
        size = len(pickle.dumps(fold_models, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # a model that does not pickle cannot be saved either: no bag of it
        return None, 0
    return (tuple(fold_models), size) if size <= limit else (None, 0)


def model_steps(family_name: str, params: dict[str, Any], task: Task, threads: int, seed: int,
                sample: Any, fit_on_codes: bool = False) -> list[tuple[str, Any]]:
    """The steps after the featurizer for one model: densify and scale where the family needs it.

    ``sample`` is (a part of) the featurized matrix, to tell sparse from dense and size the densifier.
    ``fit_on_codes``: the steps will be fit on class codes 0..K-1 (a Voting ensemble's members),
    not on the labels.
    """
    family = FAMILIES[family_name]
    steps: list[tuple[str, Any]] = []
    if family.text is not None:  # its featurizer (``featurizer_for``) already scaled what needs it
        return [("model", family.build(params, task, threads, seed))]
    if family.dense_only and sparse.issparse(sample):
        steps.append(("dense", densifier(sample)))
    if family.needs_scaling:
        steps.append(("scale", scaler_for(sample)))
    steps.append(("model", classifier_step(family, family.build(params, task, threads, seed), task, fit_on_codes)))
    return steps


def featurizer_for(family_name: str, params: dict[str, Any], columns: list[ColumnInfo], featurization: Any,
                   task: Task, seed: int) -> Any:
    """The (unfitted) featurizer a model of this family is saved with: the shared one, or a text
    family's own TF-IDF settings (other columns scaled for its linear head)."""
    from ..prepare.featurize import build_featurizer
    family = FAMILIES[family_name]
    if family.text is not None:
        return build_featurizer(columns, mode=featurization, scale=True, task=task, seed=seed,
                                text=family.text(params))
    return build_featurizer(columns, mode=featurization, scale=False, task=task, seed=seed)


def refit(data: RefitData, family_name: str, params: dict[str, Any], threads: int, seed: int) -> Pipeline:
    """The final model: featurizer + estimator fit on all training rows, with the original labels."""
    with _limit_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        featurizer = featurizer_for(family_name, params, list(data.columns), data.featurization, data.task, seed)
        steps = [("features", featurizer), *model_steps(family_name, params, data.task, threads, seed, data.sample)]
        pipeline = Pipeline(steps)
        text = FAMILIES[family_name].text
        with _encoding(text(params) if text else {}):
            pipeline.fit(data.X, data.y)
        if text and text(params).get("kind") == "embedding":
            from ..prepare.embeddings import attach_encoder
            attach_encoder(pipeline)  # the saved model embeds new texts with the packaged encoder itself
        return pipeline
