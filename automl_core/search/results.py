"""Plain records that flow through a search: a trial asked of a worker and its outcome, finished
trials and progress events.

Trials and events are frozen so that callbacks (the DuckDB writer, the CLI's progress lines, the studio's live
view) can keep them without copying.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TrialStatus = Literal["ok", "failed", "timeout"]


@dataclass(frozen=True)
class TrialResult:
    """One finished (or failed) trial: a model family with hyperparameters, scored on validation."""

    trial_id: int
    family: str
    params: dict[str, Any]
    status: TrialStatus
    score: float | None  # primary metric, in its natural direction (see metrics.METRICS)
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    started_at: float = 0.0  # seconds since the search started
    finished_at: float = 0.0
    error: str = ""
    note: str = ""  # e.g. "ensemble of 3 trials", "row sample 20%"


EventKind = Literal[
    "experiment_started", "trial_started", "trial_finished", "new_best", "message",
    "refit_started", "experiment_finished",
    # after the model is saved: the explaining stage (see ``insights.explain_stage``)
    "explaining_started", "explaining_progress", "explaining_finished",
    # before the search: an image run's images become a feature matrix (``images.run``), a table's
    # validation folds are featurized (``AutoML.fit``)
    "featurizing_started",
    # the trial worker processes are still starting (``search.loop._warm``), said when it takes a while
    "workers_starting",
]


@dataclass(frozen=True)
class Event:
    """A progress event. ``payload`` holds plain JSON-able values."""

    kind: EventKind
    elapsed: float
    payload: dict[str, Any] = field(default_factory=dict)
    trial: TrialResult | None = None


@dataclass(frozen=True)
class TrialSpec:
    data_path: str
    trial_id: int
    family: str
    params: dict[str, Any]
    threads: int
    seed: int
    row_fraction: float = 1.0    # low-fidelity trials fit on a sample of each training fold
    seconds: float | None = None  # the time the loop gives this trial (its timeout), None: no limit


@dataclass
class TrialOutcome:
    trial_id: int
    status: str                  # "ok" or "failed"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    oof: Any = None              # validation predictions (tables: an array over every split's rows;
                                 # forecasting: a frame of every window's forecasts)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    n_features: int = 0
    error: str = ""
    fold_models: Any = None      # tables, k-fold: each fold's fitted steps after the featurizer (see trial.py)
    fold_bytes: int = 0          # their pickled size
    note: str = ""               # what the worker changed, e.g. fewer boosting rounds under its memory cap
