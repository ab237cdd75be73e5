"""The multilabel run behind ``AutoML(task="multilabel").fit`` (issue #22): one-vs-rest heads in the one search loop.

A trial is a table or text family's binary classifier wrapped in scikit-learn's ``OneVsRestClassifier`` (one head
per label), fit on each fold: the same ``run_search``, tabular ``Scheduler`` (over the families that make sense,
with their binary search spaces), worker pool, Stop, budget and events as every table. Each trial returns its
out-of-fold probabilities per label; its score uses per-label decision thresholds that are themselves tuned out of
fold (on the other folds' rows; per-label F1-best, one for all labels, or 0.5: whichever the primary metric
prefers), so the leaderboard is not flattered by thresholds tuned on the rows they score.
The saved model's thresholds are tuned on every out-of-fold row.

The final model is the best single trial refit on all rows (no ensemble yet). It is saved as a dict that loads with
joblib without this repository: ``pipeline`` (featurizer + one-vs-rest heads, scikit-learn only), ``labels``,
``thresholds``, ``label_format``; its ``usage`` key says how to score by hand.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable

import joblib
import numpy as np
import pandas as pd

from ..errors import AutoMLInputError
from ..models.families import FAMILIES, load_portfolio
from ..models.metrics import per_label_average_precision, score_all
from ..prepare.multilabel import LabelFormat, tune_thresholds
from ..prepare.schema import Task
from .loop import Clock, Emitter, SearchSettings, run_search, start_pool
from .results import TrialOutcome, TrialSpec
from .trial import TrainingData, _fold, _text_fold, featurize_folds, featurizer_for, model_steps

FORMAT = "automl-studio-multilabel-model/1"
#: The families whose binary heads make sense one-vs-rest (text ones only when the table has text).
HEADS = ("text_logistic", "text_linear_svm", "text_embedding_logistic", "linear", "lightgbm", "kernel_svm")
#: LightGBM heads have no early stopping here (one per label): this many rounds unless searched.
BOOSTING_ROUNDS = 200
USAGE = ("import joblib; m = joblib.load('model.joblib'); P = m['pipeline'].predict_proba(df[m['input_columns']]); "
         "labels = [[l for l, on in zip(m['labels'], row) if on] for row in P >= m['thresholds']]")


@dataclass(frozen=True)
class MultilabelData(TrainingData):
    """Training data whose target is a rows x labels 0/1 matrix ``Y`` (``y_codes``: one label's column,
    for the featurizer's supervised encoders only)."""

    Y: Any = None
    metric: str = "f1_micro"     # the primary metric: the decision thresholds are chosen for it


def _head(family_name: str, params: dict[str, Any], threads: int, seed: int) -> Any:
    from sklearn.multiclass import OneVsRestClassifier
    family = FAMILIES[family_name]
    if family_name.endswith("lightgbm"):
        params = {**params, "n_estimators": params.get("n_estimators", BOOSTING_ROUNDS)}
    return OneVsRestClassifier(family.build(params, Task.BINARY, threads, seed), n_jobs=1)


def run_multilabel_trial(spec: TrialSpec, data: MultilabelData) -> TrialOutcome:
    """One configuration on every split (called by ``trial.run_trial``, which catches its failures)."""
    family = FAMILIES[spec.family]
    oof = np.zeros((len(data.Y), data.Y.shape[1]))
    fit_s = pred_s = 0.0
    rng = np.random.default_rng(spec.seed + spec.trial_id)
    n_features = 0
    for fold, (train_idx, val_idx) in enumerate(data.splits):
        if family.text is not None:
            Xt, Xv, featurize_s = _text_fold(spec.data_path, data, fold, family.text(spec.params))
            fit_s += featurize_s
        else:
            Xt, Xv, _ = _fold(spec.data_path, data, fold, family.needs_scaling, family.dense_only)
        Yt = data.Y[train_idx]
        if spec.row_fraction < 1.0:
            keep = np.sort(rng.choice(len(train_idx), max(50, int(len(train_idx) * spec.row_fraction)), replace=False))
            Xt, Yt = Xt[keep], Yt[keep]
        n_features = Xt.shape[1]
        start = time.perf_counter()
        head = _head(spec.family, spec.params, spec.threads, spec.seed).fit(Xt, Yt)
        fit_s += time.perf_counter() - start
        start = time.perf_counter()
        oof[val_idx] = head.predict_proba(Xv)
        pred_s += time.perf_counter() - start
    rows = np.concatenate([v for _, v in data.splits])
    metrics = cross_fitted_scores(data.Y, oof, data.splits, data.metric)
    return TrialOutcome(spec.trial_id, "ok", metrics=metrics, params=dict(spec.params), oof=oof[rows],
                        fit_seconds=fit_s, predict_seconds=pred_s, n_features=n_features)


def choose_thresholds(Y: np.ndarray, proba: np.ndarray, metric: str) -> np.ndarray:
    """The decision thresholds, out of three candidates, that score best on ``metric`` for these rows: each
    label's F1-best threshold (helps rare labels, costs false positives), one threshold for every label chosen
    for the metric, and 0.5."""
    from ..models.metrics import METRICS
    from ..prepare.multilabel import THRESHOLDS
    m = METRICS[metric]
    if m.needs_proba:  # threshold-free (average precision): per-label F1 thresholds decide the labels
        return tune_thresholds(Y, proba)
    candidates = [tune_thresholds(Y, proba), np.full(Y.shape[1], 0.5)]
    candidates.append(np.full(Y.shape[1], min(THRESHOLDS, key=lambda t: m.loss(
        score_all(Task.MULTILABEL, Y, proba, only=metric, thresholds=t).get(metric)))))
    return min(candidates, key=lambda t: m.loss(score_all(Task.MULTILABEL, Y, proba, only=metric, thresholds=t).get(metric)))


def cross_fitted_scores(Y: np.ndarray, oof: np.ndarray, splits: tuple, metric: str = "f1_micro") -> dict[str, float]:
    """Every multilabel metric with each fold's rows decided by thresholds tuned on the other folds' rows
    (one split, a holdout: thresholds tuned on the rows they score, the only rows there are)."""
    pred = np.zeros_like(Y, dtype=bool)
    rows = np.concatenate([v for _, v in splits])
    for _, val_idx in splits:
        others = np.setdiff1d(rows, val_idx) if len(splits) > 1 else val_idx
        pred[val_idx] = oof[val_idx] >= choose_thresholds(Y[others], oof[others], metric)
    scores = score_all(Task.MULTILABEL, Y[rows], pred[rows].astype(float), thresholds=0.5)
    scores.update(score_all(Task.MULTILABEL, Y[rows], oof[rows], only="average_precision_macro"))
    return scores


# --- the run -----------------------------------------------------------------------------------------------

def fit_multilabel(automl: Any, prepared: Any, *, callbacks: Iterable[Any] = (), stop_event: threading.Event | None = None,
                   first_trial_id: int = 1, warm_start: list[tuple[str, dict[str, Any]]] = (),
                   clock: Clock | None = None) -> Any:
    """Search one-vs-rest heads for ``prepared`` (task multilabel) within the config's limits; fills ``automl``."""
    from ..models.families import select_families
    from ..models.text_families import embed_for_search, reads_text, text_warm_start
    from ..prepare.folds import plan_validation
    from .scheduler import Scheduler
    cfg, p = automl.config, prepared
    clock = clock or Clock(cfg.time_budget)
    stop_event = stop_event or threading.Event()
    emit = Emitter(list(callbacks), clock)
    automl.prepared_, automl.task_, automl.metric_ = p, p.task, p.metric
    binary = replace(p, task=Task.BINARY)  # what the families, featurizer and embeddings see: one binary head each
    text = reads_text(p.columns, Task.BINARY, cfg.featurization)
    # opt-in heads (the kernel SVM) only when named: the image task names its heads
    allowed = tuple(n for n in (cfg.allowed_models or HEADS) if n in HEADS
                    and (cfg.allowed_models is not None or not FAMILIES[n].opt_in))
    if not allowed:
        raise AutoMLInputError(f"None of the allowed models can be a multilabel head",
                               f"allow one of {', '.join(HEADS)}")
    families = select_families(allowed, cfg.blocked_models, len(p.X), text)
    families, vectors = embed_for_search(binary, families, cfg.featurization, clock.remaining(), p.notes)
    Y = np.asarray(p.y, dtype=np.int8)
    proxy = Y[:, int(Y.sum(axis=0).argmax())].astype(int)  # the most frequent label, for supervised encoders
    plan = plan_validation(proxy, classification=False, config=cfg)
    automl.validation_ = plan
    settings = automl._settings(p)
    settings = SearchSettings(settings.n_concurrent, settings.threads_per_trial, settings.synchronous)
    pool = start_pool(settings.n_concurrent, cfg.dask_scheduler)
    try:
        with tempfile.TemporaryDirectory(prefix="automl-multilabel-") as tmp:
            families = _affordable(families, p, proxy, cfg, plan.n_splits, clock.remaining())
            tabular = any(f.text is None for f in families)  # text families featurize their own folds
            folds = (featurize_folds(p.X, proxy, plan.splits, p.columns, Task.BINARY, cfg.featurization, cfg.seed)
                     if tabular else ())
            data = MultilabelData(y_codes=proxy, splits=plan.splits, folds=folds, task=Task.BINARY, n_classes=2,
                                  pos_index=1, raw=p.X.reset_index(drop=True) if text else None,
                                  columns=tuple(p.columns), featurization=cfg.featurization, seed=cfg.seed,
                                  embeddings=vectors, Y=Y, metric=p.metric.name)
            path = os.path.join(tmp, "training.joblib")
            joblib.dump(data, path)
            emit("experiment_started", task=p.task.value, task_reason=p.task_reason, metric=p.metric.name,
                 validation=plan.description, n_rows=len(p.X), columns=[c.to_dict() for c in p.columns],
                 notes=[f"{len(p.classes)} labels, {Y.sum(axis=1).mean():.2f} per row on average; one-vs-rest "
                        "heads with per-label thresholds tuned out of fold", *p.notes],
                 time_budget=cfg.time_budget, concurrent_trials=settings.n_concurrent,
                 threads_per_trial=settings.threads_per_trial)
            portfolio = load_portfolio()
            order = [tuple(x) for x in portfolio.get("order", {}).get("classification", [])]
            shape = (float(np.mean([len(t) for t, _ in plan.splits])), folds[0][0].shape[1],
                     plan.n_splits * Y.shape[1]) if folds else None  # one head per label and fold
            scheduler = Scheduler(families, Task.BINARY, portfolio["classification"], cfg.seed, cfg.max_trials is not None,
                                  [*warm_start, *text_warm_start(families)], order, shape)
            result = run_search(data_path=path, scheduler=scheduler, metric=p.metric, config=cfg, clock=clock,
                                emit=emit, stop_event=stop_event, reserve=lambda trials: _reserve(trials, plan.n_splits),
                                settings=settings, pool=pool, first_trial_id=first_trial_id)
    finally:
        pool.shutdown()
    if result.pool is not None:
        result.pool.shutdown()
        result.pool = None
    automl.search_ = result
    best = result.require_best()
    emit("refit_started", trial_id=best.trial_id, family=best.family, members=[])
    rows = np.concatenate([v for _, v in plan.splits])
    thresholds = choose_thresholds(Y[rows], result.oof[best.trial_id], p.metric.name)
    automl.model_ = _refit(p, best, thresholds, cfg)
    automl.best_trial_ = best
    automl.trials_ = result.trials
    automl.final_ = None
    automl.predictions_ = {"validation": None, "test": None}  # one class per row: not a label set's shape
    from ..understand.label_sets import LabelSets
    automl.label_sets_ = LabelSets([str(x) for x in p.classes], rows, Y[rows], result.oof[best.trial_id],
                                   np.asarray(thresholds, dtype=float), best.trial_id)
    automl.test_score_, automl.test_metrics_, automl.test_predictions_ = _score_test(automl)
    automl.train_score_, automl.train_metrics_ = None, {}
    automl.wall_seconds_ = clock.elapsed()
    automl.card_ = _card(automl, result, Y[rows], result.oof[best.trial_id])
    emit("experiment_finished", stopped_by=result.stopped_by, best_trial_id=best.trial_id, best_score=best.score,
         test_score=automl.test_score_, wall_seconds=round(automl.wall_seconds_, 3))
    return automl


def _affordable(families: list, p: Any, proxy: np.ndarray, cfg: Any, n_splits: int, seconds_left: float) -> list:
    """The families, less the table heads when their shared folds (the featurizer's word and character n-gram
    blocks on every split, before any trial) would take more than ``FOLD_SHARE`` of the time left: the text
    families carry the text, featurizing their own folds per trial (the tabular run samples rows instead;
    a multi-label run has no row sampling yet). arXiv's 591 abstracts at 60 s: 33 s of folds, on the loaded
    2 cores, before the first trial."""
    from ..models.text_families import FOLD_SHARE, shared_fold_cost
    text = [f for f in families if f.text is not None]
    if not text or len(text) == len(families) or seconds_left == float("inf"):
        return families
    fixed, per_row = shared_fold_cost(p.X, proxy, p.columns, Task.BINARY, cfg.featurization, cfg.seed)
    need = n_splits * (2 * fixed + len(p.X) * per_row)
    if need <= FOLD_SHARE * seconds_left:
        return families
    dropped = [f.name for f in families if f.text is None]
    p.notes.append(f"{', '.join(dropped)} skipped: featurizing the {n_splits} validation folds for them would take "
                   f"about {need:.0f} s of the {seconds_left:.0f} s left; the text models carry the text "
                   "(a larger time budget adds them)")
    return text


def _reserve(trials: list, n_splits: int) -> float:
    """Time the final refit needs: the best trial's fit on one fold, scaled to all rows."""
    done = [t for t in trials if t.status == "ok"]
    return 0.0 if not done else 1.3 * min(done, key=lambda t: t.fit_seconds).fit_seconds / max(n_splits, 1)


def _refit(p: Any, best: Any, thresholds: np.ndarray, cfg: Any) -> dict[str, Any]:
    """The best trial's featurizer and one-vs-rest heads fit on every row.

    One BLAS thread, like the heads themselves: they fit one label after another, and the linear heads' many
    small L-BFGS steps only wait on a second BLAS thread (arXiv's 8 heads: 1.5-3 s on one thread, 9-28 s on
    two, on the shared 2 cores)."""
    from sklearn.pipeline import Pipeline
    from .trial import _encoding, _limit_threads
    family = FAMILIES[best.family]
    Y = np.asarray(p.y, dtype=np.int8)
    proxy = Y[:, int(Y.sum(axis=0).argmax())].astype(int)
    with _limit_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        featurizer = featurizer_for(best.family, best.params, list(p.columns), cfg.featurization, Task.BINARY, cfg.seed)
        with _encoding(family.text(best.params) if family.text else {}):
            Xt = featurizer.fit_transform(p.X, proxy)  # the featurizer sees one label (supervised encoders)
            steps = model_steps(best.family, best.params, Task.BINARY, 1, cfg.seed, Xt)[:-1]
            steps.append(("model", _head(best.family, best.params, 1, cfg.seed)))
            Pipeline(steps).fit(Xt, Y)
        pipeline = Pipeline([("features", featurizer), *steps])
        if family.text and family.text(best.params).get("kind") == "embedding":
            from ..prepare.embeddings import attach_encoder
            attach_encoder(pipeline)
    fmt = p.label_format or LabelFormat("python")
    return {"format": FORMAT, "pipeline": pipeline, "labels": list(p.classes), "thresholds": np.asarray(thresholds),
            "label_format": {"kind": fmt.kind, "separator": fmt.separator},
            "input_columns": [str(c) for c in p.X.columns], "usage": USAGE}


def is_multilabel_model(model: Any) -> bool:
    return isinstance(model, dict) and model.get("format") == FORMAT


def predict_multilabel(model: dict[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """``prediction`` (each row's labels, written the way the training target wrote them), ``prediction_<label>``
    (0/1) when the target was several 0/1 columns, and ``proba_<label>``."""
    absent = [c for c in model["input_columns"] if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"The data lacks required column(s): {', '.join(map(str, absent[:10]))}",
                               "add the columns the model was trained on")
    proba = np.asarray(model["pipeline"].predict_proba(df[model["input_columns"]]), dtype=float)
    fmt = LabelFormat(model["label_format"]["kind"], model["label_format"]["separator"])
    labels = model["labels"]
    chosen = proba >= np.asarray(model["thresholds"])
    out = pd.DataFrame({"prediction": [fmt.write([l for l, on in zip(labels, row) if on]) for row in chosen]},
                       index=df.index)
    if fmt.kind == "columns":  # trained on 0/1 columns: each column's prediction as 0/1 as well
        out = out.join(pd.DataFrame(chosen.astype(int), columns=[f"prediction_{l}" for l in labels], index=df.index))
    return out.join(pd.DataFrame(proba, columns=[f"proba_{l}" for l in labels], index=df.index))


def _score_test(automl: Any) -> tuple[float | None, dict[str, float], pd.DataFrame | None]:
    p = automl.prepared_
    if p.X_test is None or len(p.X_test) == 0:
        return None, {}, None
    out = predict_multilabel(automl.model_, p.X_test)
    proba = out[[f"proba_{l}" for l in p.classes]].to_numpy()
    metrics = score_all(Task.MULTILABEL, p.y_test, proba, thresholds=automl.model_["thresholds"])
    fmt = p.label_format or LabelFormat("python")
    actual = [fmt.write([l for l, on in zip(p.classes, row) if on]) for row in p.y_test]
    frame = pd.concat([p.X_test.reset_index(drop=True), pd.DataFrame({f"actual_{p.target}": actual}),
                       out.reset_index(drop=True)], axis=1)
    return metrics.get(automl.metric_.name), metrics, frame


def _card(automl: Any, result: Any, Y_oof: np.ndarray, oof: np.ndarray) -> dict[str, Any]:
    from ..export.artifacts import clean_json
    from ..export.drift_checks import training_profile
    p, best, model = automl.prepared_, automl.best_trial_, automl.model_
    ap = dict(zip([l for j, l in enumerate(p.classes) if Y_oof[:, j].any()], per_label_average_precision(Y_oof, oof)))
    return clean_json({
        "format": "automl-studio-model/1", "model_format": FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": p.target, "task": p.task.value, "task_reason": p.task_reason,
        "metric": automl.metric_.name, "greater_is_better": automl.metric_.greater_is_better,
        "classes": p.classes, "labels": p.classes, "label_format": model["label_format"],
        "thresholds": dict(zip(p.classes, map(float, model["thresholds"]))),
        "per_label_average_precision": ap,
        "features": [c.to_dict() for c in p.columns], "input_columns": model["input_columns"],
        "best_model": best.family, "best_trial_id": best.trial_id, "hyperparameters": best.params,
        "members": [], "final_model": "refit",
        "choice_note": "the best single trial refit on all rows (no multilabel ensemble yet)",
        "validation": {"strategy": automl.validation_.description, "score": best.score, "metrics": best.metrics},
        "test": {"score": automl.test_score_, "metrics": automl.test_metrics_,
                 "n_rows": 0 if p.X_test is None else len(p.X_test)},
        "n_trials": len(automl.trials_), "stopped_by": result.stopped_by, "seed": automl.config.seed,
        "config": automl.config.to_dict(), "data_fingerprint": p.fingerprint, "n_training_rows": len(p.X),
        "notes": p.notes, "usage": USAGE,
        "profile": training_profile(model["pipeline"], p.X),  # what predict / serve check new rows against
    })
