"""The facade: ``AutoML(...).fit(df, target=...)`` runs prepare -> search -> refit -> test scoring."""
from __future__ import annotations

import math
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from .export.artifacts import clean_json, save_model
from .export.drift_checks import training_profile
from .config import AutoMLConfig
from .errors import AutoMLInputError
from .prepare.featurize import featurization_summary
from .search.bag import Bagger, pool_for
from .search.fork_server import start_fork_server
from .search.data import MAX_SEARCH_ROWS, write_search_data
from .search.finalize import (FinalChoice, RefitCost, choose, ensemble_rows, fit_final, free_cores, label_order,
                              likely_members, member_predictions)
from .models.metrics import score_all
from .models.families import bag_pool, load_portfolio, select_families
from .models.text_families import embed_for_search, reads_text, text_lead, text_warm_start
from .understand.predictions import Predictions
from .prepare.tables import Prepared, TableLike, prepare
from .search.results import Event, TrialResult
from .search.scheduler import Scheduler
from .search.loop import Clock, Emitter, SearchResult, SearchSettings, run_search, start_pool
from .prepare.folds import ValidationPlan

#: Rows used for the training score of the final model (the overfitting check) at most.
TRAIN_SCORE_ROWS = 20_000
#: Validation predictions are kept for this many of the best single models (plus every ensemble).
KEPT_PREDICTIONS = 20
#: Training folds larger than this make the warm-start trials fit on a row sample first.
LOW_FIDELITY_ROWS = 100_000
#: Below this many cells (rows x columns) every fit uses one thread: more cost more than they gain.
SMALL_DATA_CELLS = 200_000
#: The likely ensemble (which sizes the search's reserve) is re-picked at most every this share of the budget.
LIKELY_EVERY = 0.05

Callback = Callable[[Event], None]


class AutoML:
    """Automated machine learning for tables: give a frame and a target, get a fitted pipeline.

    Args: every field of :class:`AutoMLConfig` (task, metric, time_budget, max_trials, seed, ...).

    After ``fit``: ``model_`` (the refit scikit-learn Pipeline), ``leaderboard`` (best first),
    ``task_``, ``metric_``, ``validation_``, ``best_trial_``, ``test_score_``, ``card_``, and for
    classification ``classes_`` (the column order of ``predict_proba``).
    """

    def __init__(self, **settings: Any) -> None:
        self.config = settings.pop("config", None) or AutoMLConfig.from_dict(settings)
        self.model_ = None

    # --- public API --------------------------------------------------------------------------------

    def fit(self, train_data: TableLike | None, target: str | list[str], *, test_data: TableLike | None = None,
            validation_data: TableLike | None = None, callbacks: Iterable[Callback] = (),
            stop_event: threading.Event | None = None, prepared: Prepared | None = None,
            first_trial_id: int = 1, warm_start: list[tuple[str, dict[str, Any]]] = (),
            clock: Clock | None = None) -> "AutoML":
        """Search for the best model within the configured limits and refit it on all training rows.

        Give the data (``train_data`` and optionally ``test_data`` / ``validation_data``) or what
        ``prepare`` made of it (``prepared``), not both. ``first_trial_id`` and ``warm_start``
        (family, hyperparameters) let a resumed experiment continue its trial numbering and start
        from its best earlier configurations. ``clock``: the run's clock when it started before this
        call (``run_experiment`` starts it before reading and checking the data).
        """
        given = [n for n, v in (("train_data", train_data), ("test_data", test_data),
                                ("validation_data", validation_data)) if v is not None]
        if prepared is not None and given:
            raise AutoMLInputError(f"fit() was given both prepared data and {', '.join(given)}",
                                   "pass the tables, or prepared=..., not both")
        if prepared is None and train_data is None:
            raise AutoMLInputError("fit() was given no training data", "pass the training table (or prepared=...)")
        clock = clock or Clock(self.config.time_budget)  # reading and preparing the table count against the budget
        self.clock_ = clock  # the stages after fit (explanations) report on the same clock
        if not self.config.dask_scheduler:
            start_fork_server()  # trial workers' imports overlap preparing the data
        if prepared is None:
            prepared = prepare(train_data, target, self.config, test_data=test_data, validation_data=validation_data)
        if self.config.forecasting:  # the same search loop, with forecasting's scheduler and trials
            if self.config.partition_by:  # many models: one forecasting run per partition, side by side
                from .forecast.partitions import fit_partitioned
                return fit_partitioned(self, prepared, callbacks=callbacks, stop_event=stop_event,
                                       first_trial_id=first_trial_id, warm_start=list(warm_start))
            from .forecast.runner import fit_forecasting
            return fit_forecasting(self, prepared, callbacks=callbacks, stop_event=stop_event,
                                   first_trial_id=first_trial_id, warm_start=list(warm_start), clock=clock)
        if prepared.task.value == "multilabel":  # issue #22: one-vs-rest heads in the same search loop
            from .search.multilabel import fit_multilabel
            return fit_multilabel(self, prepared, callbacks=callbacks, stop_event=stop_event,
                                  first_trial_id=first_trial_id, warm_start=list(warm_start), clock=clock)
        self.prepared_ = prepared
        self.task_ = prepared.task
        self.metric_ = prepared.metric
        text = reads_text(prepared.columns, prepared.task, self.config.featurization)
        families = select_families(self.config.allowed_models, self.config.blocked_models, len(prepared.X), text)
        emit = Emitter(list(callbacks), clock)
        # Featurizing the folds can take much of a short budget (dates, text): said, the live page names
        # it instead of counting down a budget while no trial has started.
        emit("featurizing_started", rows=len(prepared.X), columns=len(prepared.columns),
             doing="featurizing the validation folds")
        families, vectors = embed_for_search(prepared, families, self.config.featurization, clock.remaining(),
                                             prepared.notes)
        stop_event = stop_event or threading.Event()
        settings = self._settings(prepared)
        pool = start_pool(settings.n_concurrent, self.config.dask_scheduler)  # boots while folds are featurized
        try:
            with tempfile.TemporaryDirectory(prefix="automl-") as tmp:
                data = write_search_data(prepared, self.config, tmp, text, vectors, clock.remaining())
                data_path, plan, y_all = data.path, data.plan, data.y_codes
                self._featurize_seconds, self._fold_featurizers = data.featurize_seconds, data.fold_featurizers
                self._refit_data, self._y_codes, self._y_labels_all = data.refit, data.y_codes, data.y_labels
                self._table_rows = data.table_rows
                self.validation_ = plan
                emit("experiment_started", task=prepared.task.value, task_reason=prepared.task_reason,
                     metric=self.metric_.name, validation=plan.description, n_rows=len(prepared.X),
                     columns=[c.to_dict() for c in prepared.columns], notes=prepared.notes,
                     time_budget=self.config.time_budget, concurrent_trials=settings.n_concurrent,
                     threads_per_trial=settings.threads_per_trial)
                result = self._search(data_path, families, plan, clock, emit, stop_event, pool, settings,
                                      first_trial_id, [*warm_start, *text_warm_start(families)])
                if result.pool is not None:
                    result.pool.shutdown()  # the workers' memory is the refit's: it runs here, on every core
                    result.pool = None
                self.search_ = result
                result.require_best()
                self.final_ = self._finish(result, plan, y_all, clock, emit, stop_event)
        finally:
            pool.shutdown()
        self.best_trial_ = self.final_.row
        self.test_score_, self.test_metrics_ = self._score_test(prepared)
        self.train_score_, self.train_metrics_ = self._score_train(prepared)
        self.wall_seconds_ = clock.elapsed()
        self.card_ = self._card(prepared, result)
        emit("experiment_finished", stopped_by=result.stopped_by, best_trial_id=self.best_trial_.trial_id,
             best_score=self.best_trial_.score, test_score=self.test_score_, wall_seconds=round(self.wall_seconds_, 3))
        return self

    @property
    def leaderboard(self) -> pd.DataFrame:
        """All trials, best first (failed ones last), one column per metric."""
        self._check_fitted()
        rows = []
        for t in self.trials_:
            rows.append({"trial_id": t.trial_id, "model": t.family, "status": t.status, "score": t.score,
                         **t.metrics, "fit_seconds": round(t.fit_seconds, 3), "params": t.params, "error": t.error})
        board = pd.DataFrame(rows)
        if board.empty:
            return board
        board["_loss"] = [self.metric_.loss(s) for s in board["score"]]
        return board.sort_values(["_loss", "trial_id"]).drop(columns="_loss").reset_index(drop=True)

    def predict(self, data: TableLike) -> np.ndarray:
        self._check_fitted()
        if self.task_.value == "forecasting":  # issue #5: the forecast for each row's timestamp and series
            from .forecast import predict_forecast
            from .io.reader import load_table
            return predict_forecast(self.model_, self.card_, load_table(data, "prediction"))["prediction"].to_numpy()
        if self.task_.value == "multilabel":  # each row's labels, written the way the target wrote them
            return self._multilabel(data)["prediction"].to_numpy()
        return self.model_.predict(self._features(data))

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in the column order of :meth:`predict_proba` (scikit-learn's convention).

        Raises AttributeError before ``fit`` and for regression or forecasting, so ``hasattr`` tells
        whether the model has classes, as it does for a scikit-learn estimator.
        """
        if self.model_ is not None and self.task_.value == "multilabel":
            return np.asarray(self.model_["labels"])
        if self.model_ is None or not self.task_.is_classification:
            raise AttributeError("classes_ exists only on a fitted classification model")
        return np.asarray(self.model_.classes_)

    def predict_proba(self, data: TableLike) -> np.ndarray:
        """Class probabilities, one column per class in the order of :attr:`classes_`."""
        self._check_fitted()
        if self.task_.value == "multilabel":  # per label, in the order of classes_
            return self._multilabel(data).drop(columns="prediction").to_numpy()
        if not self.task_.is_classification:
            raise AutoMLInputError("predict_proba needs a classification model", "use predict for regression")
        return self.model_.predict_proba(self._features(data))

    def explain(self, **options: Any) -> Any:
        """SHAP explanations of the fitted model on the raw columns (see ``automl_core.understand.explain``);
        ``options`` go to ``explain_model`` (``sample_rows``, ``budget_seconds``, ``progress``, ``stop``)."""
        from .understand.explain import explain_model
        self._check_fitted()
        p = self.prepared_
        self.explanation_ = explain_model(self.model_, p.X, p.y, columns=p.columns, task=p.task, classes=p.classes,
                                          positive_class=p.positive_class, metric=self.metric_,
                                          seed=self.config.seed, **options)
        return self.explanation_

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write model.joblib and model.json; returns their paths."""
        self._check_fitted()
        return save_model(self.model_, self.card_, out_dir)

    # --- steps -------------------------------------------------------------------------------------

    def _settings(self, p: Prepared) -> SearchSettings:
        """How trials run. Small data: trials side by side on one thread each; large data: one trial
        on every core. A fixed trial count asks for a reproducible run: batches of trials then finish
        in trial order, whatever order the workers return them in."""
        cfg = self.config
        cores = cfg.cores
        n = cfg.max_concurrent_trials
        if n is None:
            n = 1 if cores == 1 or len(p.X) * len(p.columns) > 2_000_000 else cores
        threads = 1 if len(p.X) * max(len(p.columns), 1) < SMALL_DATA_CELLS else max(1, cores // n)
        fold_rows = min(len(p.X), MAX_SEARCH_ROWS) * 0.9
        fraction = min(1.0, LOW_FIDELITY_ROWS / fold_rows) if fold_rows > LOW_FIDELITY_ROWS else 1.0
        return SearchSettings(n, threads, synchronous=cfg.max_trials is not None, low_fidelity_fraction=fraction)

    def _search(self, data_path: str, families: list, plan: ValidationPlan, clock: Clock, emit: Emitter,
                stop_event: threading.Event, pool: Any, settings: SearchSettings, first_trial_id: int,
                warm_start: list[tuple[str, dict[str, Any]]]) -> SearchResult:
        cfg = self.config
        deterministic = cfg.max_trials is not None
        kind = "classification" if self.task_.is_classification else "regression"
        portfolio = load_portfolio()
        order = [tuple(x) for x in portfolio.get("order", {}).get(kind, [])]
        train_fold_rows = float(np.mean([len(tr) for tr, _ in plan.splits]))
        sample = getattr(self._refit_data, "sample", None)
        shape = None if sample is None else (train_fold_rows, sample.shape[1], plan.n_splits)
        scheduler = Scheduler(families, self.task_, portfolio[kind], cfg.seed, deterministic, warm_start, order, shape,
                              lead=text_lead(families))
        n_rows = len(self.prepared_.X)
        self._cost = cost = RefitCost(plan.n_splits, n_rows, train_fold_rows,
                                      self._featurize_seconds * n_rows / max(train_fold_rows, 1.0),
                                      sum(len(v) for _, v in plan.splits), settings.threads_per_trial,
                                      refit_threads=1 if n_rows * max(len(self.prepared_.columns), 1)
                                      < SMALL_DATA_CELLS else cfg.cores)

        oof: dict[int, np.ndarray] = {}
        y_oof = self._y_codes[np.concatenate([v for _, v in plan.splits])]
        likely: dict[str, Any] = {"at": -math.inf, "members": []}
        picked: dict[str, Any] = {}

        def reserve(trials: list[TrialResult]) -> float:
            # The ensemble the trials so far would make, re-picked at most every LIKELY_EVERY of the
            # budget (it scores candidates on validation rows, in this thread, while trials run)
            if cfg.ensembles and clock.elapsed() - likely["at"] >= LIKELY_EVERY * (cfg.time_budget or 60.0):
                likely["at"] = clock.elapsed()
                likely["members"] = likely_members(trials, oof, y_oof, self.metric_, self.task_,
                                                   self.prepared_.pos_index, cfg.seed, cache=picked)
            return cost.final_stage(trials, self.metric_, cfg.ensembles, likely["members"])

        return run_search(data_path=data_path, scheduler=scheduler, metric=self.metric_, config=cfg, clock=clock,
                          emit=emit, stop_event=stop_event, reserve=reserve, settings=settings, pool=pool,
                          first_trial_id=first_trial_id, oof=oof)

    def _finish(self, result: SearchResult, plan: ValidationPlan, y_all: np.ndarray,
                clock: Clock, emit: Emitter, stop_event: threading.Event) -> FinalChoice:
        """Ensembles (as leaderboard rows), the choice of the saved model, its refit on all training rows."""
        p, metric, cfg = self.prepared_, self.metric_, self.config
        val_rows = np.concatenate([v for _, v in plan.splits])
        y_oof = y_all[val_rows]
        order = label_order(p.classes, p.y)  # the refit's labels, sorted as scikit-learn sorts them
        ensembles: list[TrialResult] = []
        ens_oof: dict[int, np.ndarray] = {}
        if cfg.ensembles and not stop_event.is_set() and clock.remaining() > 0:
            next_id = max(t.trial_id for t in result.trials) + 1
            ensembles, ens_oof = ensemble_rows(result.trials, result.oof, y_oof, metric, p.task, p.pos_index,
                                               cfg.seed, next_id, order, round(clock.elapsed(), 3))
            for row in ensembles:
                emit("trial_finished", row, best_score=result.best.score)
        self.trials_ = [*result.trials, *ensembles]
        # The final refit may use a little of the budget's tolerance (runs must end within 10 % of it).
        slack = 0.03 * cfg.time_budget if cfg.time_budget else 0.0
        # The refit's threads are chosen now, not when the search began: other work may hold the cores
        self._cost.refit_threads = min(self._cost.refit_threads, free_cores(cfg.cores))
        bagger = (Bagger(self._fold_featurizers, result.fold_models, p.task, p.classes, self._refit_data.X,
                         self._refit_data.y, cfg.seed, pool_for(metric.name, p.task))
                  if self._fold_featurizers and result.fold_models else None)
        choice = choose(result.best, ensembles, result.trials, metric, self._cost, clock.remaining() + slack,
                        bagger, cfg.final_model)
        estimate = self._cost.members(choice.members) if choice.members else self._cost.single(choice.row)
        emit("refit_started", trial_id=choice.row.trial_id, family=choice.row.family,
             members=[m.trial_id for m in choice.members],
             estimate_seconds=round(estimate + self._cost.featurize_seconds, 3))
        planned = choice
        self.model_, choice = fit_final(self._refit_data, choice, result.oof, y_oof, order, self._cost.refit_threads,
                                        cfg.seed, best=result.best, cost=self._cost,
                                        seconds_left=clock.remaining() + slack, bagger=bagger, mode=cfg.final_model,
                                        row_oof=result.oof.get(choice.row.trial_id, ens_oof.get(choice.row.trial_id)))
        self._bagger = bagger  # for benches comparing the final models of one search; dropped below
        if not getattr(self, "_keep_fold_models", False):
            self.search_.fold_models, self._bagger = {}, None  # the bag holds the ones it uses; free the others
        if choice is not planned and choice.note:  # the members ran late, or the fold models were bagged
            emit("message", text=choice.note)
        if metric.better(choice.row.score, result.best.score):  # new best only once it is the saved model
            emit("new_best", choice.row, score=choice.row.score, family=choice.row.family)
        kept = sorted((t for t in result.trials if t.trial_id in result.oof), key=lambda t: metric.loss(t.score))
        models = {t.trial_id: result.oof[t.trial_id] for t in kept[:KEPT_PREDICTIONS]}
        models.update({choice.row.trial_id: result.oof.get(choice.row.trial_id, ens_oof.get(choice.row.trial_id))})
        models.update(ens_oof)
        self.predictions_ = {"validation": Predictions(p.task.value, p.classes, y_oof, self._table_rows[val_rows], models,
                                                       self._y_labels_all[val_rows] if p.classes else None),
                             "test": None}
        return choice

    def _score_test(self, p: Prepared) -> tuple[float | None, dict[str, float]]:
        """Score the saved model (and, for ensembles, each member) once on the test rows."""
        self.test_predictions_ = None
        if p.X_test is None or len(p.X_test) == 0:
            return None, {}
        predictions = pd.DataFrame({f"actual_{p.target}": p.y_test, "prediction": self.model_.predict(p.X_test)})
        members = {int(name.rsplit("_", 1)[1]): pred
                   for name, pred in member_predictions(self.model_, p.X_test, p.classes).items()}
        if p.task.is_classification:
            proba = self._proba(p.X_test)
            predictions = pd.concat([predictions, pd.DataFrame(proba, columns=[f"proba_{c}" for c in p.classes],
                                                               index=predictions.index)], axis=1)
            y_true = p.codes(p.y_test)
            metrics = score_all(p.task, y_true, proba, p.pos_index)
        else:
            proba = predictions["prediction"].to_numpy(dtype=float)
            y_true = np.asarray(p.y_test, dtype=float)
            metrics = score_all(p.task, y_true, proba)
        self.test_predictions_ = pd.concat([p.X_test.reset_index(drop=True), predictions], axis=1)
        self.predictions_["test"] = Predictions(p.task.value, p.classes, y_true, np.arange(len(p.X_test)),
                                                {self.best_trial_.trial_id: proba, **members},
                                                np.asarray(p.y_test) if p.classes else None)
        return metrics.get(self.metric_.name), metrics

    def _score_train(self, p: Prepared) -> tuple[float | None, dict[str, float]]:
        """The saved model's score on (a sample of) its own training rows: the overfitting check."""
        rows = np.arange(len(p.X))
        if len(rows) > TRAIN_SCORE_ROWS:
            rows = np.sort(np.random.default_rng(self.config.seed).choice(len(rows), TRAIN_SCORE_ROWS, replace=False))
        X, y = p.X.iloc[rows], p.y[rows]
        if p.task.is_classification:
            metrics = score_all(p.task, p.codes(y), self._proba(X), p.pos_index)
        else:
            metrics = score_all(p.task, np.asarray(y, dtype=float), self.model_.predict(X))
        return metrics.get(self.metric_.name), metrics

    def _proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities ordered like ``prepared_.classes``."""
        classes = self.prepared_.classes
        raw = self.model_.predict_proba(X)
        order = [classes.index(c) for c in self.model_.classes_]
        proba = np.zeros((len(X), len(classes)))
        proba[:, order] = raw
        return proba

    def _card(self, p: Prepared, result: SearchResult) -> dict[str, Any]:
        best = self.best_trial_
        return clean_json({
            "format": "automl-studio-model/1",
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "target": p.target, "task": p.task.value, "task_reason": p.task_reason,
            "metric": self.metric_.name, "greater_is_better": self.metric_.greater_is_better,
            "classes": p.classes, "positive_class": p.positive_class,
            "features": [c.to_dict() for c in p.columns],
            "featurization": featurization_summary(self.model_, p.columns),
            "input_columns": [str(c) for c in p.X.columns],
            "best_model": best.family, "best_trial_id": best.trial_id, "hyperparameters": best.params,
            "members": [{"trial_id": m.trial_id, "family": m.family, "hyperparameters": m.params,
                         "validation_score": m.score, "weight": w}
                        for m, w in zip(self.final_.members, self.final_.weights or [None] * len(self.final_.members))],
            "choice_note": self.final_.note,
            "final_model": self.final_.final,   # "refit" on all rows, or "bag": the k fold models pooled (bag.py)
            "bag_pool": bag_pool(self.model_),  # a bag: "mean" (soft voting) or "geometric" (log loss); else None
            "train": {"score": self.train_score_, "metrics": self.train_metrics_,
                      "n_rows": min(len(p.X), TRAIN_SCORE_ROWS)},
            "validation": {"strategy": self.validation_.description, "score": best.score, "metrics": best.metrics},
            "test": {"score": self.test_score_, "metrics": self.test_metrics_,
                     "n_rows": 0 if p.X_test is None else len(p.X_test)},
            "n_trials": len(self.trials_), "stopped_by": result.stopped_by,
            "seed": self.config.seed, "config": self.config.to_dict(),
            "data_fingerprint": p.fingerprint, "n_training_rows": len(p.X), "notes": p.notes,
            # the training side of the checks new data gets before scoring (computed once per run)
            "profile": training_profile(self.model_, p.X),
        })

    def _features(self, data: TableLike) -> pd.DataFrame:
        from .io.reader import load_table
        df = load_table(data, "prediction")
        absent = [c for c in self.prepared_.X.columns if c not in df.columns]
        if absent:
            raise AutoMLInputError(f"The data lacks required column(s): {', '.join(map(str, absent[:10]))}",
                                   "add the columns the model was trained on")
        return df[list(self.prepared_.X.columns)]

    def _multilabel(self, data: TableLike) -> pd.DataFrame:
        from .io.reader import load_table
        from .search.multilabel import predict_multilabel
        return predict_multilabel(self.model_, load_table(data, "prediction"))

    def _check_fitted(self) -> None:
        if self.model_ is None:
            raise AutoMLInputError("This AutoML has not been fitted", "call fit(data, target=...) first")
