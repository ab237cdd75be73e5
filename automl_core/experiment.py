"""An experiment: an AutoML run recorded in the store, with its model saved as store artifacts.

The CLI and the studio both run experiments through ``run_experiment``, so both record the same
things the same way. Input is checked (``prepare``) before anything is written.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .automl import AutoML
from .config import AutoMLConfig
from .errors import AutoMLInputError
from .understand.insights import DataChecks, record_after_training, save_guardrails
from .prepare.tables import TableLike, prepare
from .search.results import Event
from .prepare.schema import Task


TEST_PREDICTIONS = "test_predictions.csv"
FORECAST_CHART = "forecast_chart.parquet"  # issue #5: history, validation windows and forecasts to draw


@dataclass(frozen=True)
class ExperimentOutcome:
    experiment_id: str
    status: str            # completed, stopped or failed
    automl: AutoML | None
    model_path: Path | None
    error: str = ""


def create_record(store: Any, *, target: str, config: AutoMLConfig, dataset_id: str | None, name: str | None = None,
                  task: str | None = None, metric: str | None = None, extras: dict[str, Any] | None = None) -> str:
    """The one way an experiment record is made (by ``run_experiment``, or by the studio when it queues
    a run, so the live page shows it at once). The stored config is the engine's settings plus the
    target, and the studio's own fields under ``studio``. Returns the experiment id."""
    task = task or config.task
    stored = {**config.to_dict(), "target": target, **({"studio": extras} if extras is not None else {})}
    return store.create_experiment(name or f"{target} ({task})", dataset_id=dataset_id, task=task,
                                   metric=metric or config.metric, config=stored)


def run_experiment(store: Any, train: TableLike, target: str, config: AutoMLConfig, *,
                   test_data: TableLike | None = None, validation_data: TableLike | None = None,
                   name: str | None = None, dataset_id: str | None = None,
                   callbacks: Iterable[Callable[[Event], None]] = (),
                   stop_event: threading.Event | None = None, out_dir: str | Path | None = None,
                   experiment_id: str | None = None, resume: bool = False,
                   data_checks: bool = True, first_configs: list[tuple[str, dict]] = ()) -> ExperimentOutcome:
    """Prepare, create the experiment record, search, save the model; the store sees every trial.

    Raises AutoMLInputError for bad input, before anything is written. ``experiment_id`` continues a
    record created earlier (the studio creates it when the job is queued). With ``resume`` the record's
    finished trials are kept, numbering continues after them, and the search starts from the best
    three of them (re-run: only the final model of a run is saved). The caller sets the budget left.
    ``data_checks=False`` skips the table guardrails and explanations (image features: per-column leakage
    probes and SHAP over a thousand pixel / CNN columns cost minutes and tell a person nothing).
    ``first_configs`` (family, hyperparameters) are tried first, after a resumed run's best (the image task's
    heads start from their own order, ``image_families.IMAGE_START``, not the tables' portfolio).
    """
    from .search.fork_server import start_fork_server
    from .search.loop import Clock
    clock = Clock(config.time_budget)  # reading, preparing and checking the data count against the budget
    if not config.dask_scheduler:
        start_fork_server()  # trial workers' imports overlap reading and checking the data
    prepared = prepare(train, target, config, test_data=test_data, validation_data=validation_data)
    callbacks = list(callbacks)  # used twice: the search and the explaining stage
    metric = prepared.metric
    if experiment_id is None:
        experiment_id = create_record(store, target=target, config=config, dataset_id=dataset_id, name=name,
                                      task=prepared.task.value, metric=metric.name)
    else:  # created when queued, before the task and metric were known
        store.update_experiment(experiment_id, task=prepared.task.value, metric=metric.name)
    first_trial_id, warm_start = 1, []
    if resume and experiment_id is not None:
        first_trial_id, warm_start = _earlier_trials(store, experiment_id, metric)
    warm_start = [*warm_start, *first_configs]
    stop_event = stop_event or threading.Event()
    store.set_status(experiment_id, "running")
    # Table guardrails and explanations are about tables; a forecast checks itself (forecast/guardrails.py).
    checks = (DataChecks(store, experiment_id, prepared, config, metric)
              if data_checks and prepared.task not in (Task.FORECASTING, Task.MULTILABEL) else None)
    automl = AutoML(config=config)
    early = [checks.callback] if checks else [_forecast_checks(store, experiment_id)]
    try:
        automl.fit(None, target, prepared=prepared,
                   callbacks=[store.callback(experiment_id), *early, *callbacks],
                   stop_event=stop_event, first_trial_id=first_trial_id, warm_start=warm_start, clock=clock)
    except AutoMLInputError as exc:
        store.finish_experiment(experiment_id, status="failed", best_trial_id=None, best_model=None,
                                best_score=None, test_score=None, model_path=None, summary={"error": str(exc)})
        store.set_status(experiment_id, "failed", error=str(exc))
        return ExperimentOutcome(experiment_id, "failed", None, None, str(exc))
    except BaseException as exc:
        store.set_status(experiment_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    # Stop pressed while explaining only skips the explanations: the search and the model are complete
    status = "stopped" if stop_event.is_set() else "completed"
    target_dir = store.artifact_dir(experiment_id)
    model_path, card_path = automl.save(target_dir)
    store.register_artifact(experiment_id, model_path, "model")
    store.register_artifact(experiment_id, card_path, "model_card")
    from .understand.predictions import save_predictions
    for which, predictions in automl.predictions_.items():
        if predictions is not None:
            store.register_artifact(experiment_id, save_predictions(predictions, target_dir, which), f"predictions_{which}")
    if getattr(automl, "label_sets_", None) is not None:  # a multi-label run's out-of-fold label sets
        from .understand.label_sets import ARTIFACT, save_label_sets
        store.register_artifact(experiment_id, save_label_sets(automl.label_sets_, target_dir), ARTIFACT)
    if automl.test_predictions_ is not None:
        from .export.predict import safe_csv
        predictions_path = target_dir / TEST_PREDICTIONS
        safe_csv(automl.test_predictions_).to_csv(predictions_path, index=False)
        store.register_artifact(experiment_id, predictions_path, "test_predictions")
    if getattr(automl, "forecast_chart_", None) is not None:
        chart_path = target_dir / FORECAST_CHART
        automl.forecast_chart_.to_parquet(chart_path, index=False)
        store.register_artifact(experiment_id, chart_path, "forecast_chart")
    record = store.callback(experiment_id)
    listeners = [record, *callbacks]

    def emit(event: Event) -> None:
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener must not cost the experiment its explanations
                pass

    understood = record_after_training(store, experiment_id, automl, target_dir, checks, emit=emit,
                                       stop_event=stop_event) if checks else {}
    if not checks and automl.card_.get("guardrails"):  # forecasting's own checks, made with the model (card)
        store.register_artifact(experiment_id, save_guardrails(automl.card_["guardrails"], target_dir), "guardrails")
    if out_dir is not None:
        model_path, _ = automl.save(out_dir)
    best = automl.best_trial_
    store.finish_experiment(experiment_id, status=status, best_trial_id=best.trial_id, best_model=best.family,
                            best_score=best.score, test_score=automl.test_score_, model_path=str(model_path),
                            summary={**automl.card_, **understood})
    return ExperimentOutcome(experiment_id, status, automl, model_path)


def _forecast_checks(store: Any, experiment_id: str) -> Callable[[Event], None]:
    """Stores the data guardrails a forecasting search announces as it starts, so the live page shows
    them during the search as it does a table's (the finished run's summary replaces them)."""
    def record(event: Event) -> None:
        if event.kind == "experiment_started" and event.payload.get("guardrails"):
            store.update_experiment(experiment_id, summary={"guardrails": event.payload["guardrails"]})
    return record


def _earlier_trials(store: Any, experiment_id: str, metric: Any) -> tuple[int, list[tuple[str, dict]]]:
    """The next trial id and the best three earlier configurations of an experiment being resumed."""
    trials = store.trials(experiment_id)
    if trials.empty:
        return 1, []
    from .models.families import FAMILIES
    ok = trials[(trials["status"] == "ok") & trials["family"].isin(list(FAMILIES))].copy()  # ensembles are rebuilt
    ok["_loss"] = [metric.loss(s) for s in ok["score"]]
    best = ok.sort_values("_loss").head(3)
    return int(trials["trial_id"].max()) + 1, [(r.family, dict(r.params)) for r in best.itertuples()]
