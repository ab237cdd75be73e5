"""Many models (Azure's "many models support through grouping"): one forecasting model per partition.

``partition_by`` names columns that split the table into partitions (a store, a region). Each
partition gets a whole forecasting run of its own (``AutoML.fit`` on its rows: search, ensemble,
refit), side by side: in local worker processes (one per core), or on a Dask cluster given
``dask_scheduler``. A partition's trials run one after another inside its worker (the partitions
already fill the cores), so the same seed gives the same models on either.

The time budget covers the whole run. Each partition, when it starts, gets 90 % of the time left
divided by the rounds of partitions still to run (unfinished partitions, running ones included, /
partitions side by side, rounded up), at least ``MIN_SECONDS``: a partition that finishes early
leaves its time to the ones after it. Local workers import the engine before the first share is
computed. Inside a partition the trials run one at a time on threads (``InlinePool``): a trial past
its limit is abandoned, as on Dask, and the final refit cannot be cut short.
A trial limit (``max_trials``) applies to each partition.

The saved model is one dict (format ``automl-studio-forecast-partitioned/1``) holding each
partition's forecasting bundle (bundle.py); rows are routed to their partition's model by the
partition columns (see partition_bundle.py).
"""
from __future__ import annotations

import math
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

from ..config import AutoMLConfig
from ..errors import AutoMLInputError
from ..prepare.schema import Task
from ..search.executors import INLINE_TRIALS, DaskPool, LocalPool
from ..search.loop import Clock, Emitter, SearchResult
from ..search.results import TrialResult
from .series import ForecastData, series_ids, time_parts

#: The fewest seconds a partition's search is given, whatever the split of the budget says.
MIN_SECONDS = 5.0
#: Share of the time left handed out to the partitions (the rest: assembling, saving, overheads).
BUDGET_SHARE = 0.9
#: The family name of the summary row (the saved many-models artifact) on the leaderboard.
FAMILY = "many_models"
LABEL = "Many models (one per partition)"
POLL_SECONDS = 0.2


@dataclass(frozen=True, eq=False)
class PartitionedData:
    """A forecasting table split by the partition columns, each part prepared (``prepare``'s result)."""

    target: str
    partition_by: tuple[str, ...]
    parts: dict[str, ForecastData]      # partition key ("2", or "2 / north" for two columns) -> its data
    values: dict[str, dict[str, str]]   # partition key -> {column: value}
    config: AutoMLConfig                # what each partition runs with (before its budget is set)
    notes: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # partition key -> why it could not be prepared
    task: Task = Task.FORECASTING
    task_reason: str = "chosen by the user (a time column and a horizon were given)"
    metric: Any = None

    @property
    def X(self) -> pd.DataFrame:  # the facade and the CLI count rows through this
        return pd.concat([p.panel for p in self.parts.values()], ignore_index=True)

    @property
    def fingerprint(self) -> str:
        return "+".join(p.fingerprint[:16] for p in self.parts.values())


def prepare_partitions(df: pd.DataFrame, target: str, config: AutoMLConfig, *, test: pd.DataFrame | None = None,
                       validation: pd.DataFrame | None = None) -> PartitionedData:
    """Split the table by ``config.partition_by`` and prepare every partition as a forecasting problem.

    The partition columns join the series ids (a partition holds whole series, and every series id
    stays unique across partitions). A partition that cannot be prepared (too short, say) is left out
    and said so. Raises AutoMLInputError for a partition column not in the data, or when no partition
    can be prepared.
    """
    from .series import prepare_forecast
    by = tuple(config.partition_by)
    absent = [c for c in by if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"The partition column(s) {', '.join(map(repr, absent))} are not in the data",
                               "name columns of the table (a store or a region, say) in partition_by "
                               "(--partition-by)")
    clash = [c for c in by if c == target or c in time_parts(config.time_column or "")]
    if clash:
        raise AutoMLInputError(f"The partition column(s) {', '.join(map(repr, clash))} are the target or the time",
                               "partition by a column that groups whole series (a store or a region, say)")
    series = tuple(config.series_id) + tuple(c for c in by if c not in config.series_id)
    base = config.with_changes(partition_by=(), series_id=series)
    keys = series_ids(df, by)
    order = sorted(keys.unique(), key=_natural)
    test_keys = None if test is None else _keys(test, by, "test")
    valid_keys = None if validation is None else _keys(validation, by, "validation")
    parts: dict[str, ForecastData] = {}
    values: dict[str, dict[str, str]] = {}
    notes: list[str] = [f"one model per partition of {', '.join(by)}: {len(order)} partition(s)"]
    errors: dict[str, str] = {}
    for key in order:
        rows = df[keys.to_numpy() == key]
        part_test = None if test is None else test[test_keys.to_numpy() == key]
        part_valid = None if validation is None else validation[valid_keys.to_numpy() == key]
        try:
            parts[key] = prepare_forecast(rows, target, base, test=part_test, validation=part_valid)
        except AutoMLInputError as exc:
            errors[key] = str(exc)
            continue
        values[key] = {c: str(v) for c, v in zip(by, rows[list(by)].iloc[0])}
    why = [f"{k}: {e}" for k, e in errors.items()]
    if not parts:
        raise AutoMLInputError(f"No partition of {', '.join(by)} could be prepared ({'; '.join(why[:3])})",
                               "check the data of each partition, or partition by other columns")
    if errors:
        notes.append(f"{len(errors)} partition(s) left out: {'; '.join(why[:5])}")
    if test is not None:
        unknown = sorted(set(test_keys) - set(parts))
        if unknown:
            notes.append(f"test rows of {len(unknown)} partition(s) without a model are not scored: "
                         f"{', '.join(unknown[:5])}")
    first = next(iter(parts.values()))
    return PartitionedData(target, by, parts, values, base, notes, errors, metric=first.metric)


def _keys(df: pd.DataFrame, by: tuple[str, ...], which: str) -> pd.Series:
    absent = [c for c in by if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"The {which} data lacks the partition column(s) {', '.join(map(repr, absent))}",
                               f"add them to the {which} data: each row is scored by its partition's model")
    return series_ids(df, by)


def _natural(key: str) -> tuple:
    """Sort "2" before "10": numbers by value, the rest as text."""
    return tuple((0, float(p), "") if _is_number(p) else (1, 0.0, p) for p in key.split(" / "))


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


# --- training ----------------------------------------------------------------------------------------

def fit_partition(key: str, config: AutoMLConfig, data: ForecastData) -> dict[str, Any]:
    """One partition's whole forecasting run, in a worker (local process or Dask). Never raises for
    bad data: the error comes back in the result, and the other partitions go on."""
    token = INLINE_TRIALS.set(True)
    start = time.perf_counter()
    try:
        from ..automl import AutoML
        automl = AutoML(config=config).fit(None, data.target, prepared=data)
    except AutoMLInputError as exc:
        return {"key": key, "error": str(exc), "seconds": time.perf_counter() - start}
    finally:
        INLINE_TRIALS.reset(token)
    return {"key": key, "bundle": automl.model_, "card": automl.card_, "trials": automl.trials_,
            "best": automl.best_trial_, "cv": automl.cv_forecasts_, "test": automl.test_predictions_,
            "chart": automl.forecast_chart_, "stopped_by": automl.search_.stopped_by,
            "validation": automl.validation_.description, "seconds": time.perf_counter() - start}


def partition_budget(remaining: float, partitions_left: int, side_by_side: int) -> float:
    """Seconds for the next partition to start: its share of the time left (see the module's docstring).

    ``partitions_left`` counts the partitions not yet finished: running ones, this one and the rest."""
    rounds = math.ceil(partitions_left / max(1, side_by_side))
    return max(MIN_SECONDS, BUDGET_SHARE * remaining / rounds)


def fit_partitioned(automl: Any, data: PartitionedData, *, callbacks: Iterable[Any] = (), stop_event: Any = None,
                    first_trial_id: int = 1, warm_start: Any = ()) -> Any:
    """Train one forecasting model per partition, side by side; fills ``automl``'s attributes as a
    single forecasting run does, with ``model_`` the routing bundle and ``partitions_`` the summary."""
    import threading
    from .partition_bundle import assemble
    cfg = automl.config
    clock = Clock(cfg.time_budget)
    stop_event = stop_event or threading.Event()
    emit = Emitter(list(callbacks), clock)
    keys = list(data.parts)
    pool = DaskPool(cfg.dask_scheduler) if cfg.dask_scheduler else None
    side = min(len(keys), pool.n_workers if pool else (cfg.max_concurrent_trials or cfg.cores))
    if pool is None:
        pool = LocalPool(side)
        _warm(pool, side, stop_event)  # imports count against the budget, not against a partition's share
    automl.prepared_, automl.task_, automl.metric_ = data, Task.FORECASTING, data.metric
    where = f"on the Dask cluster at {cfg.dask_scheduler}" if cfg.dask_scheduler else "in local worker processes"
    description = f"one model per partition ({len(keys)} partitions, {side} side by side {where}), each validated " \
                  "on its own rolling-origin windows"
    automl.validation_ = _Plan(description)
    emit("experiment_started", task="forecasting", task_reason=data.task_reason, metric=data.metric.name,
         validation=description, n_rows=sum(len(p.panel) for p in data.parts.values()), columns=[],
         notes=list(data.notes), time_budget=cfg.time_budget, concurrent_trials=side, threads_per_trial=1)
    results: dict[str, dict[str, Any]] = {}
    trials: list[TrialResult] = []
    next_id = first_trial_id
    pending, running = list(keys), {}
    stopped_by = "every partition trained"
    try:
        while pending or running:
            if stop_event.is_set():
                stopped_by = "stopped by the user"
                break
            while pending and len(running) < side:
                key = pending.pop(0)
                budget = None if cfg.time_budget is None else partition_budget(clock.remaining(),
                                                                               len(pending) + 1 + len(running), side)
                part_cfg = cfg.with_changes(partition_by=(), series_id=data.config.series_id, time_budget=budget,
                                            n_jobs=1, max_concurrent_trials=1, dask_scheduler=None)
                running[pool.submit(fit_partition, key, part_cfg, data.parts[key])] = key
                emit("message", text=f"partition {key}: training started"
                     + (f" ({budget:.0f} s)" if budget is not None else ""))
            done, _ = wait(list(running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 -- a crashed worker costs only its partition
                    result = {"key": key, "error": f"{type(exc).__name__}: {exc}", "seconds": 0.0}
                results[key] = result
                next_id = _report(result, next_id, trials, emit, clock)
    finally:
        pool.shutdown()
    results = {k: results[k] for k in keys if k in results}  # partition order, whichever finished first
    if not any("bundle" in r for r in results.values()):
        reasons = "; ".join(f"{k}: {r['error']}" for k, r in results.items())[:500]
        raise AutoMLInputError(f"No partition finished training ({stopped_by}){': ' + reasons if reasons else ''}",
                               "give the run more time, or check the data of each partition")
    assemble(automl, data, results, trials, next_id, emit, clock)
    automl.search_ = SearchResult(automl.trials_, {}, automl.best_trial_, stopped_by)
    emit("experiment_finished", stopped_by=stopped_by, best_trial_id=automl.best_trial_.trial_id,
         best_score=automl.best_trial_.score, test_score=automl.test_score_, wall_seconds=round(clock.elapsed(), 3))
    return automl


def warm_worker() -> int:
    """Import what a partition's run needs, so its share of the budget is spent on its search."""
    import os
    from . import runner  # noqa: F401 -- first: it turns on statsforecast's compile cache
    from ..automl import AutoML  # noqa: F401
    import statsforecast, mlforecast, lightgbm  # noqa: F401,E401
    time.sleep(0.5)  # hold this worker, so the other warm-ups go to the other workers
    return os.getpid()


def _warm(pool: LocalPool, n: int, stop_event: Any) -> None:
    """Until every worker has imported the engine (a worker may take two warm-ups while another starts)."""
    seen: set[int] = set()
    deadline = time.perf_counter() + 120
    while len(seen) < n and not stop_event.is_set() and time.perf_counter() < deadline:
        pending = {pool.submit(warm_worker) for _ in range(n - len(seen))}
        while pending and not stop_event.is_set() and time.perf_counter() < deadline:
            done, pending = wait(pending, timeout=POLL_SECONDS)
            seen.update(f.result() for f in done if f.exception() is None)


def _report(result: dict[str, Any], next_id: int, trials: list[TrialResult], emit: Emitter, clock: Clock) -> int:
    """Renumber a finished partition's trials into the run's numbering and emit them; returns the next id."""
    key = result["key"]
    if "error" in result:
        emit("message", text=f"partition {key}: no model ({result['error']})")
        return next_id
    best = result["best"]
    renumbered = {}
    for t in result["trials"]:
        renumbered[t.trial_id] = next_id
        note = f"partition {key}" + (f"; {t.note}" if t.note else "")
        params = t.params
        if t.family == "ensemble":  # its members' ids, in the run's numbering
            params = {**params, "members": [renumbered.get(i, i) for i in params.get("members", [])]}
        row = TrialResult(next_id, t.family, params, t.status, t.score, t.metrics, t.fit_seconds,
                          t.predict_seconds, round(clock.elapsed(), 3), round(clock.elapsed(), 3), t.error, note)
        trials.append(row)
        emit("trial_finished", row)
        next_id += 1
    result["best_id"] = renumbered.get(best.trial_id)
    emit("message", text=f"partition {key}: best model {best.family} ({result['card']['metric']} "
                         f"{best.score:.4g}, {len(result['trials'])} trials, {result['seconds']:.0f} s)")
    return next_id


class _Plan:
    """The part of a ValidationPlan that callers read."""

    def __init__(self, description: str) -> None:
        self.description, self.n_splits, self.kind = description, 0, "rolling-origin"


def summary_table(results: dict[str, dict[str, Any]], values: dict[str, dict[str, str]]) -> pd.DataFrame:
    """One row per partition: its columns' values, best model, validation and test scores, trials, seconds."""
    rows = []
    for key, r in results.items():
        row: dict[str, Any] = {"partition": key, **values.get(key, {})}
        if "error" in r:
            rows.append({**row, "best_model": None, "error": r["error"], "seconds": round(r["seconds"], 1)})
            continue
        card = r["card"]
        rows.append({**row, "series": card["forecast"]["n_series"], "best_model": r["best"].family,
                     "validation_score": r["best"].score, "test_score": card["test"]["score"],
                     "n_trials": len(r["trials"]), "seconds": round(r["seconds"], 1), "stopped_by": r["stopped_by"],
                     "best_trial_id": r.get("best_id"), "error": ""})
    return pd.DataFrame(rows)
