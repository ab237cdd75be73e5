"""The facade: ``AutoML(...).fit(df, target=...)`` runs prepare -> search -> refit -> test scoring."""
from __future__ import annotations

import os
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import joblib
import numpy as np
import pandas as pd

from .artifacts import clean_json, save_model
from .config import AutoMLConfig
from .errors import AutoMLInputError
from .featurize import featurization_summary
from .metrics import resolve_metric, score_all
from .models import load_portfolio, select_families
from .prepare import Prepared, TableLike, prepare
from .results import Event, TrialResult
from .scheduler import Scheduler
from .search import Clock, Emitter, SearchResult, run_search, start_pool
from .trial import TrainingData, featurize_folds, refit
from .validation import ValidationPlan, plan_validation

Callback = Callable[[Event], None]


class AutoML:
    """Automated machine learning for tables: give a frame and a target, get a fitted pipeline.

    Args: every field of :class:`AutoMLConfig` (task, metric, time_budget, max_trials, seed, ...).

    After ``fit``: ``model_`` (the refit scikit-learn Pipeline), ``leaderboard`` (best first),
    ``task_``, ``metric_``, ``validation_``, ``best_trial_``, ``test_score_``, ``card_``.
    """

    def __init__(self, **settings: Any) -> None:
        self.config = settings.pop("config", None) or AutoMLConfig.from_dict(settings)
        self.model_ = None

    # --- public API --------------------------------------------------------------------------------

    def fit(self, train_data: TableLike, target: str, *, test_data: TableLike | None = None,
            validation_data: TableLike | None = None, callbacks: Iterable[Callback] = (),
            stop_event: threading.Event | None = None, prepared: Prepared | None = None,
            first_trial_id: int = 1, warm_start: list[tuple[str, dict[str, Any]]] = ()) -> "AutoML":
        """Search for the best model within the configured limits and refit it on all training rows.

        ``first_trial_id`` and ``warm_start`` (family, hyperparameters) let a resumed experiment
        continue its trial numbering and start from its best earlier configurations.
        """
        from .forecast import is_forecasting  # issue #5: forecasting runs its own search, same events
        if is_forecasting(self.config):
            from .forecast.runner import fit_forecasting
            data = prepared if prepared is not None else prepare(train_data, target, self.config, test_data=test_data,
                                                                 validation_data=validation_data)
            return fit_forecasting(self, data, callbacks=callbacks, stop_event=stop_event, first_trial_id=first_trial_id)
        clock = Clock(self.config.time_budget)
        if prepared is None:
            prepared = prepare(train_data, target, self.config, test_data=test_data, validation_data=validation_data)
        self.prepared_ = prepared
        self.task_ = prepared.task
        self.metric_ = resolve_metric(self.config.metric, prepared.task)
        families = select_families(self.config.allowed_models, self.config.blocked_models, len(prepared.X))
        emit = Emitter(list(callbacks), clock)
        stop_event = stop_event or threading.Event()
        n_concurrent = self._concurrency(prepared)
        pool = start_pool(n_concurrent)  # workers boot while the folds are featurized
        try:
            with tempfile.TemporaryDirectory(prefix="automl-") as tmp:
                data_path, plan = self._write_training_data(prepared, tmp)
                self.validation_ = plan
                emit("experiment_started", task=prepared.task.value, task_reason=prepared.task_reason,
                     metric=self.metric_.name, validation=plan.description, n_rows=len(prepared.X),
                     columns=[c.to_dict() for c in prepared.columns], notes=prepared.notes,
                     time_budget=self.config.time_budget)
                result = self._search(data_path, families, plan, clock, emit, stop_event, pool, n_concurrent,
                                          first_trial_id, list(warm_start))
                self.search_ = result
                if result.best is None:
                    reasons = "; ".join(sorted({t.error for t in result.trials if t.error}))[:500]
                    raise AutoMLInputError(f"No trial finished ({result.stopped_by}){': ' + reasons if reasons else ''}",
                                           "give the search more time, or check the data")
                emit("refit_started", trial_id=result.best.trial_id, family=result.best.family)
                # Small data: one thread. OpenMP threads spin-wait, and on a busy machine two of them
                # make a half-second fit take many seconds.
                threads = self._threads(prepared, 1)
                self.model_ = refit(data_path, result.best.family, result.best.params, threads, self.config.seed)
        finally:
            pool.shutdown(wait=False, kill_workers=True)
        self.best_trial_ = result.best
        self.test_score_, self.test_metrics_ = self._score_test(prepared)
        self.wall_seconds_ = clock.elapsed()
        self.card_ = self._card(prepared, result)
        emit("experiment_finished", stopped_by=result.stopped_by, best_trial_id=result.best.trial_id,
             best_score=result.best.score, test_score=self.test_score_, wall_seconds=round(self.wall_seconds_, 3))
        return self

    @property
    def leaderboard(self) -> pd.DataFrame:
        """All trials, best first (failed ones last), one column per metric."""
        self._check_fitted()
        rows = []
        for t in self.search_.trials:
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
            from .prepare import load_table
            return predict_forecast(self.model_, self.card_, load_table(data, "prediction"))["prediction"].to_numpy()
        return self.model_.predict(self._features(data))

    def predict_proba(self, data: TableLike) -> np.ndarray:
        self._check_fitted()
        if not self.task_.is_classification:
            raise AutoMLInputError("predict_proba needs a classification model", "use predict for regression")
        return self.model_.predict_proba(self._features(data))

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write model.joblib and model.json; returns their paths."""
        self._check_fitted()
        return save_model(self.model_, self.card_, out_dir)

    # --- steps -------------------------------------------------------------------------------------

    def _write_training_data(self, p: Prepared, tmp: str) -> tuple[str, ValidationPlan]:
        X, y = p.X, p.y
        if p.X_valid is not None:
            X = pd.concat([p.X, p.X_valid], ignore_index=True)
            y = np.concatenate([p.y, p.y_valid])
        codes = p.codes(y)
        plan = plan_validation(codes[:len(p.X)], classification=p.task.is_classification, config=self.config,
                               groups=p.groups, n_validation_rows=0 if p.X_valid is None else len(p.X_valid))
        folds = featurize_folds(X, codes, plan.splits, p.columns, p.task, self.config.featurization, self.config.seed)
        data = TrainingData(X=X, y_codes=codes, y_labels=np.asarray(y),
                            splits=plan.splits, folds=folds, n_train=len(p.X), columns=tuple(p.columns), task=p.task,
                            featurization=self.config.featurization,
                            n_classes=len(p.classes) if p.classes else 0, pos_index=p.pos_index)
        path = os.path.join(tmp, "training.joblib")
        joblib.dump(data, path)
        return path, plan

    def _concurrency(self, p: Prepared) -> int:
        """Small data: trials side by side on one thread each; large data: one trial on every core.
        A fixed trial count asks for a reproducible run, which needs trials in a fixed order."""
        cores = self.config.cores
        if self.config.max_trials is not None or cores == 1 or len(p.X) * len(p.columns) > 2_000_000:
            return 1
        return cores

    def _threads(self, p: Prepared, n_concurrent: int) -> int:
        """Threads per fit. Small data gets one: OpenMP threads contend, and on a busy machine two of
        them can make a half-second fit take many seconds."""
        if len(p.X) * max(len(p.columns), 1) < 200_000:
            return 1
        return max(1, self.config.cores // n_concurrent)

    def _search(self, data_path: str, families: list, plan: ValidationPlan, clock: Clock, emit: Emitter,
                stop_event: threading.Event, pool: Any, n_concurrent: int, first_trial_id: int,
                warm_start: list[tuple[str, dict[str, Any]]]) -> SearchResult:
        cfg = self.config
        deterministic = cfg.max_trials is not None
        n_rows = len(self.prepared_.X)
        portfolio = load_portfolio()["classification" if self.task_.is_classification else "regression"]
        scheduler = Scheduler(families, self.task_, portfolio, cfg.seed, deterministic, warm_start)
        train_fold = np.mean([len(tr) for tr, _ in plan.splits])

        def refit_reserve(best: TrialResult | None) -> float:
            if best is None:
                return 0.0
            per_fit = best.fit_seconds / max(plan.n_splits, 1) * (n_rows / max(train_fold, 1))
            return 1.5 * per_fit * n_concurrent + 1.0

        return run_search(data_path=data_path, families=families, scheduler=scheduler, metric=self.metric_,
                          config=cfg, clock=clock, emit=emit, stop_event=stop_event, refit_reserve=refit_reserve,
                          n_concurrent=n_concurrent, threads_per_trial=self._threads(self.prepared_, n_concurrent), pool=pool,
                          first_trial_id=first_trial_id)

    def _score_test(self, p: Prepared) -> tuple[float | None, dict[str, float]]:
        self.test_predictions_ = None
        if p.X_test is None or len(p.X_test) == 0:
            return None, {}
        predictions = pd.DataFrame({f"actual_{p.target}": p.y_test, "prediction": self.model_.predict(p.X_test)})
        if p.task.is_classification:
            raw = self.model_.predict_proba(p.X_test)
            order = [p.classes.index(c) for c in self.model_.classes_]
            proba = np.zeros((len(p.X_test), len(p.classes)))
            proba[:, order] = raw
            for i, cls in enumerate(p.classes):
                predictions[f"proba_{cls}"] = proba[:, i]
            metrics = score_all(p.task, p.codes(p.y_test), proba, p.pos_index)
        else:
            metrics = score_all(p.task, np.asarray(p.y_test, dtype=float), predictions["prediction"].to_numpy())
        self.test_predictions_ = pd.concat([p.X_test.reset_index(drop=True), predictions], axis=1)
        return metrics.get(self.metric_.name), metrics

    def _card(self, p: Prepared, result: SearchResult) -> dict[str, Any]:
        best = result.best
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
            "validation": {"strategy": self.validation_.description, "score": best.score, "metrics": best.metrics},
            "test": {"score": self.test_score_, "metrics": self.test_metrics_,
                     "n_rows": 0 if p.X_test is None else len(p.X_test)},
            "n_trials": len(result.trials), "stopped_by": result.stopped_by,
            "seed": self.config.seed, "config": self.config.to_dict(),
            "data_fingerprint": p.fingerprint, "n_training_rows": len(p.X), "notes": p.notes,
        })

    def _features(self, data: TableLike) -> pd.DataFrame:
        from .prepare import load_table
        df = load_table(data, "prediction")
        absent = [c for c in self.prepared_.X.columns if c not in df.columns]
        if absent:
            raise AutoMLInputError(f"The data lacks required column(s): {', '.join(map(str, absent[:10]))}",
                                   "add the columns the model was trained on")
        return df[list(self.prepared_.X.columns)]

    def _check_fitted(self) -> None:
        if self.model_ is None:
            raise AutoMLInputError("This AutoML has not been fitted", "call fit(data, target=...) first")
