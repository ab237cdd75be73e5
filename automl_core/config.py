"""The experiment configuration: one frozen dataclass, validated once where the user hands it over.

Inside the engine the config is trusted. ``None`` means "not set" for every optional limit; a real
0 or False is never silently replaced by a default.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .errors import AutoMLInputError

#: The one list of tasks: the CLI's choices and the Task page's select box are this tuple.
TASKS = ("auto", "binary", "multiclass", "multilabel", "regression", "forecasting", "image_classification")
#: Tasks whose data is a set of images, not a table (the Task page, which starts from a table, leaves them out).
IMAGE_TASKS = ("image_classification",)
VALIDATIONS = ("auto", "cv", "holdout")
FEATURIZATIONS = ("auto", "off")
AGGREGATIONS = ("auto", "mean", "sum", "error")
#: Settings only one kind of task reads: given to the other kind they are refused, not ignored.
FORECAST_ONLY = ("time_column", "horizon", "series_id", "frequency", "cv_step", "country", "aggregation",
                 "past_only_columns", "future_columns", "partition_by")
TABLE_ONLY = ("validation", "holdout_fraction", "group_column", "featurization", "positive_class")


def _bad(name: str, rule: str, got: Any) -> AutoMLInputError:
    return AutoMLInputError(f"The '{name}' parameter must be {rule}. Got {got!r}",
                            f"set '{name}' to {rule}")


@dataclass(frozen=True)
class AutoMLConfig:
    """Everything that decides how an experiment runs.

    Exit criteria: the search stops at whichever comes first of ``time_budget`` seconds (the whole
    run, final refit included), ``max_trials`` trials, a primary score reaching ``score_threshold``,
    or ``early_stop_trials`` trials in a row without improvement.
    """

    task: str = "auto"
    metric: str = "auto"
    time_budget: float | None = 60.0
    max_trials: int | None = None
    score_threshold: float | None = None
    early_stop_trials: int | None = None
    trial_timeout: float | None = None          # seconds; None: the remaining budget
    validation: str = "auto"                    # auto | cv | holdout
    cv_folds: int | None = None
    holdout_fraction: float | None = None
    group_column: str | None = None
    test_size: float | None = None              # fraction split off before anything else
    allowed_models: tuple[str, ...] | None = None
    blocked_models: tuple[str, ...] = ()
    featurization: str | dict[str, str] = "auto"
    column_roles: dict[str, str] = field(default_factory=dict)
    exclude_columns: tuple[str, ...] = ()
    positive_class: Any = None
    ensembles: bool = True
    final_model: str = "auto"                   # auto | refit (on all rows) | bag (the k-fold models averaged)
    n_jobs: int | None = None                   # cores for the whole run; None: all
    max_concurrent_trials: int | None = None    # trials side by side; None: one per core (small data)
    dask_scheduler: str | None = None           # "tcp://host:port": run trials on that Dask cluster
    seed: int = 0
    time_column: str | None = None
    horizon: int | None = None
    series_id: tuple[str, ...] = ()
    # Forecasting only (issue #5): see automl_core/forecast/setup.py.
    frequency: str | None = None                # pandas offset alias ("h", "D", "W-THU", "MS"); None: detected
    cv_step: int | None = None                  # rows between rolling origins; None: the horizon
    country: str | None = None                  # holiday calendar (ISO code of the `holidays` package)
    aggregation: str = "auto"                   # duplicate timestamps: auto (mean, stated) | mean | sum | error
    past_only_columns: tuple[str, ...] = ()     # exogenous columns not known in the future: lagged by the horizon
    future_columns: tuple[str, ...] = ()        # exogenous columns vouched known in the future: kept so even when
                                                # the leak check (forecast/leaks.py) would make them past-only
    partition_by: tuple[str, ...] = ()          # many models: one forecasting model per partition (partitions.py)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise _bad("task", f"one of {', '.join(TASKS)}", self.task)
        if self.validation not in VALIDATIONS:
            raise _bad("validation", f"one of {', '.join(VALIDATIONS)}", self.validation)
        if self.time_budget is not None and not (_is_number(self.time_budget) and self.time_budget > 0):
            raise _bad("time_budget", "a number of seconds > 0", self.time_budget)
        for name in ("max_trials", "early_stop_trials"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise _bad(name, "a whole number >= 1", value)
        if self.time_budget is None and self.max_trials is None:
            raise AutoMLInputError("Neither a time budget nor a trial limit was given, so the search would never end",
                                   "set time_budget (seconds) or max_trials")
        if self.trial_timeout is not None and not (_is_number(self.trial_timeout) and self.trial_timeout > 0):
            raise _bad("trial_timeout", "a number of seconds > 0", self.trial_timeout)
        if self.cv_folds is not None and not (isinstance(self.cv_folds, int) and 2 <= self.cv_folds <= 50):
            raise _bad("cv_folds", "a whole number from 2 to 50", self.cv_folds)
        for name in ("holdout_fraction", "test_size"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0 < value < 0.9):
                raise _bad(name, "a fraction between 0 and 0.9", value)
        if self.score_threshold is not None and not _is_number(self.score_threshold):
            raise _bad("score_threshold", "a number", self.score_threshold)
        if self.n_jobs is not None and not (isinstance(self.n_jobs, int) and self.n_jobs >= 1):
            raise _bad("n_jobs", "a whole number >= 1", self.n_jobs)
        if self.max_concurrent_trials is not None and not (
                isinstance(self.max_concurrent_trials, int) and not isinstance(self.max_concurrent_trials, bool)
                and 1 <= self.max_concurrent_trials <= 64):
            raise _bad("max_concurrent_trials", "a whole number from 1 to 64", self.max_concurrent_trials)
        if self.dask_scheduler is not None and not (isinstance(self.dask_scheduler, str)
                                                    and "://" in self.dask_scheduler):
            raise _bad("dask_scheduler", "a scheduler address such as tcp://127.0.0.1:8786", self.dask_scheduler)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise _bad("seed", "a whole number", self.seed)
        if isinstance(self.featurization, str) and self.featurization not in FEATURIZATIONS:
            raise _bad("featurization", "auto, off, or a mapping column -> transform", self.featurization)
        if self.horizon is not None and not (isinstance(self.horizon, int) and not isinstance(self.horizon, bool)
                                             and self.horizon >= 1):
            raise _bad("horizon", "a whole number of rows >= 1", self.horizon)
        if self.cv_step is not None and not (isinstance(self.cv_step, int) and self.cv_step >= 1):
            raise _bad("cv_step", "a whole number of rows >= 1", self.cv_step)
        if self.final_model not in ("auto", "refit", "bag"):
            raise _bad("final_model", "one of auto, refit, bag", self.final_model)
        if self.aggregation not in AGGREGATIONS:
            raise _bad("aggregation", f"one of {', '.join(AGGREGATIONS)}", self.aggregation)
        # Lists arrive from JSON and argparse; store tuples so the config stays hashable-ish and frozen.
        for name in ("allowed_models", "blocked_models", "exclude_columns", "series_id", "past_only_columns",
                     "future_columns", "partition_by"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            if value is not None and not isinstance(value, tuple):
                value = tuple(value)
            object.__setattr__(self, name, value)
        self._check_task_settings()
        self._check_names()

    @property
    def forecasting(self) -> bool:
        """Forecasting when asked for, or when the task is left to detection and a horizon is given."""
        return self.task == "forecasting" or (self.task == "auto" and self.horizon is not None)

    def _check_task_settings(self) -> None:
        """A setting the task does not read is an error, not silently dropped."""
        defaults = {f.name: (f.default_factory() if callable(f.default_factory) else f.default)  # type: ignore[misc]
                    for f in fields(self)}
        given = [n for n in (TABLE_ONLY if self.forecasting else FORECAST_ONLY) if getattr(self, n) != defaults[n]]
        if given and self.forecasting:
            raise AutoMLInputError(f"The setting(s) {', '.join(given)} apply to tables only, not to forecasting",
                                   "leave them out (forecasting validates on rolling-origin windows: cv_folds "
                                   "and cv_step set them)")
        if given:
            raise AutoMLInputError(f"The setting(s) {', '.join(given)} apply to forecasting only",
                                   "set task='forecasting' with a time_column and a horizon, or leave them out")
        if self.forecasting and not (self.time_column and self.horizon):
            missing = [n for n in ("time_column", "horizon") if not getattr(self, n)]
            raise AutoMLInputError(f"Forecasting needs a time column and a horizon ({' and '.join(missing)} not given)",
                                   "name the time column (--time-column) and how many rows ahead to forecast "
                                   "(--horizon)")

    def _check_names(self) -> None:
        """Metric and model names exist (whether they suit the data's task is known only once the
        data is read: ``resolve_metric`` says so then)."""
        from .models.metrics import METRICS, resolve_alias
        if self.metric not in ("auto", "", None) and resolve_alias(str(self.metric)) not in METRICS:
            raise AutoMLInputError(f"Unknown metric {self.metric!r}", f"use 'auto' or one of {', '.join(METRICS)}")
        names = (*(self.allowed_models or ()), *self.blocked_models)
        if names:
            known = model_names(self.forecasting)
            unknown = [n for n in names if n not in known]
            if unknown:
                kind = "forecasting" if self.forecasting else "table"
                raise AutoMLInputError(f"Unknown {kind} model(s): {', '.join(unknown)}",
                                       f"use names from: {', '.join(known)}")
            left = set(known if self.allowed_models is None else self.allowed_models) - set(self.blocked_models)
            if not left:
                raise AutoMLInputError("No model is left to try after the allowed / blocked lists",
                                       f"allow at least one of {', '.join(known)}")

    @property
    def cores(self) -> int:
        return self.n_jobs or os.cpu_count() or 1

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AutoMLConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AutoMLInputError(f"Unknown setting(s): {', '.join(unknown)}",
                                   f"use only {', '.join(sorted(known))}")
        return cls(**data)

    def with_changes(self, **changes: Any) -> "AutoMLConfig":
        return replace(self, **changes)


def model_names(forecasting: bool) -> list[str]:
    """The one list of model family names a config may allow or block, per kind of task."""
    if forecasting:
        from .forecast.families import FAMILY_NAMES
        return list(FAMILY_NAMES)
    from .models.families import FAMILIES
    return list(FAMILIES)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
