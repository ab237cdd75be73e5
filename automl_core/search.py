"""The search loop: ask the scheduler -> run the trial in a worker -> tell -> callbacks.

Trials run in loky worker processes so that a trial past its timeout can be killed and a crashing
trial costs only itself. Stopping is a flag (``stop_event``) checked every 0.2 s; it kills running
trials at once and keeps every finished one.
"""
from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .config import AutoMLConfig
from .metrics import Metric
from .executors import DaskPool, LocalPool, make_pool
from .limits import memory_cap_message
from .results import Event, TrialResult
from .scheduler import Scheduler
from .trial import TrialOutcome, TrialSpec, load_data, run_trial

Callback = Callable[[Event], None]
POLL_SECONDS = 0.2


@dataclass
class Clock:
    """Seconds since the experiment started, and what is left of its budget."""

    budget: float | None
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return math.inf if self.budget is None else self.budget - self.elapsed()


@dataclass
class SearchResult:
    trials: list[TrialResult]
    oof: dict[int, np.ndarray]          # out-of-fold predictions of the best trials, by trial id
    best: TrialResult | None
    stopped_by: str                     # why the search ended, in words


class Emitter:
    """Calls every callback with every event; a failing callback is reported once, not fatal."""

    def __init__(self, callbacks: list[Callback], clock: Clock) -> None:
        self.callbacks, self.clock, self.failed = list(callbacks), clock, set()

    def __call__(self, kind: str, trial: TrialResult | None = None, **payload: Any) -> None:
        event = Event(kind, round(self.clock.elapsed(), 3), payload, trial)  # type: ignore[arg-type]
        for cb in self.callbacks:
            try:
                cb(event)
            except Exception as exc:  # the search must not die because a listener did
                if id(cb) not in self.failed:
                    self.failed.add(id(cb))
                    print(f"warning: progress callback failed: {exc}")


@dataclass(frozen=True)
class SearchSettings:
    """How trials are run: side by side or one at a time, with how many threads, on which rows."""

    n_concurrent: int
    threads_per_trial: int
    synchronous: bool = False          # a fixed trial count: batches finish in trial order (reproducible)
    low_fidelity_fraction: float = 1.0  # < 1: warm-start trials fit on this share of each training fold


def run_search(*, data_path: str, scheduler: Scheduler, metric: Metric, config: AutoMLConfig, clock: Clock,
               emit: Emitter, stop_event: threading.Event, reserve: Callable[[list[TrialResult]], float],
               settings: SearchSettings, pool: LocalPool | DaskPool | None = None,
               first_trial_id: int = 1) -> SearchResult:
    """Run trials until an exit criterion is met. Returns every trial, finished or failed.

    ``reserve(trials)`` is the time the steps after the search need (ensembles, the final refit):
    no trial starts that would not finish before it, by the family's measured trial time.
    """
    trials: list[TrialResult] = []
    oof: dict[int, np.ndarray] = {}
    best: TrialResult | None = None
    since_best = 0
    next_id = first_trial_id
    n_concurrent = settings.n_concurrent
    running: dict[Any, tuple[TrialSpec, float, float]] = {}  # future -> (spec, started_at, deadline)
    held: list[tuple[TrialSpec, float, TrialOutcome]] = []   # synchronous mode: finished, not yet told
    stopped_by = ""
    executor = pool or make_pool(n_concurrent, config.dask_scheduler)
    _warm(executor, n_concurrent, data_path, stop_event)
    report_memory_cap(executor, emit)

    def finish(spec: TrialSpec, started: float, outcome: TrialOutcome, status: str = "") -> None:
        nonlocal best, since_best
        score = outcome.metrics.get(metric.name) if outcome.status == "ok" else None
        status, error = status or outcome.status, outcome.error
        if status == "ok" and score is None:
            status, error = "failed", f"the metric {metric.name} could not be computed on the validation rows"
        note = f"fit on a {spec.row_fraction:.0%} row sample" if spec.row_fraction < 1 else ""
        result = TrialResult(spec.trial_id, spec.family, outcome.params or spec.params, status,  # type: ignore[arg-type]
                             score, outcome.metrics, outcome.fit_seconds, outcome.predict_seconds,
                             round(started, 3), round(clock.elapsed(), 3), error, note)
        trials.append(result)
        scheduler.tell(spec.family, spec.trial_id, metric.loss(score) if score is not None else None,
                       clock.elapsed() - started, low_fidelity=spec.row_fraction < 1)
        emit("trial_finished", result, best_score=best.score if best else None)
        if status == "ok":
            oof[spec.trial_id] = outcome.oof
            _trim(oof, trials, metric)
            if best is None or metric.better(score, best.score):
                best, since_best = result, 0
                emit("new_best", result, score=score, family=spec.family)
            else:
                since_best += 1
        else:
            since_best += 1

    def fits(family: str, fraction: float) -> bool:
        """Whether a trial of ``family`` is expected to finish before the reserve is needed."""
        expected = (scheduler.trial_seconds(family) or 0.0) * fraction
        return not trials or clock.remaining() - reserve(trials) > max(0.5, expected)

    no_more = ""  # a reason to start no new trial; the loop ends once running trials are in
    try:
        while True:
            stopped_by = _hard_stop(stop_event, clock)
            if stopped_by:
                break
            no_more = no_more or _exit_reason(config, metric, best, since_best, len(trials) + len(running) + len(held))
            may_start = not (settings.synchronous and (running or held))
            while may_start and not no_more and len(running) < n_concurrent:
                # the first round of warm starts (about one per family) on a row sample, the rest on all rows
                first_round = scheduler.warm and next_id - first_trial_id < len(scheduler.states)
                fraction = settings.low_fidelity_fraction if first_round else 1.0
                family, params = scheduler.next(next_id, fits=lambda f: fits(f, fraction))
                if family is None:
                    no_more = "time budget reached (no further trial fits in the time left)"
                    break
                spec = TrialSpec(data_path, next_id, family, params, settings.threads_per_trial, config.seed,
                                 row_fraction=fraction)
                if executor is None:  # restarted only when a trial needs it, not after the last one
                    executor = make_pool(n_concurrent, config.dask_scheduler)
                    _warm(executor, n_concurrent, data_path, stop_event)
                room = clock.remaining() - reserve(trials)
                timeout = min(config.trial_timeout or math.inf, max(room, 1.0))
                started = clock.elapsed()
                emit("trial_started", None, trial_id=next_id, family=family, params=params)
                future = executor.submit(run_trial, spec, *executor.data_arg(data_path))
                running[future] = (spec, started, started + timeout)
                next_id += 1
                no_more = _exit_reason(config, metric, best, since_best, len(trials) + len(running) + len(held))
            if not running and not held:
                stopped_by = no_more or "nothing left to try"
                break
            done, _ = wait(list(running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED) if running else ((), ())
            broken = False
            for future in done:
                spec, started, _ = running.pop(future)
                outcome, died = _outcome(future, spec)
                broken |= died
                held.append((spec, started, outcome))
            if not settings.synchronous or not running:
                for spec, started, outcome in sorted(held, key=lambda h: h[0].trial_id):
                    finish(spec, started, outcome)
                held.clear()
            overdue = [f for f, (_, _, deadline) in running.items() if clock.elapsed() > deadline]
            if overdue or broken:
                executor = _end_overdue(executor, running, overdue, broken, finish, scheduler)
    finally:
        for spec, _, _ in running.values():
            scheduler.tell(spec.family, spec.trial_id, None, 0.0)
        for spec, started, outcome in held:
            finish(spec, started, outcome)
        if executor is not None:
            executor.shutdown()
    return SearchResult(trials, oof, best, stopped_by)


def _end_overdue(executor: LocalPool | DaskPool, running: dict, overdue: list, broken: bool,
                 finish: Callable[..., None], scheduler: Scheduler) -> LocalPool | DaskPool | None:
    """Record overdue trials as timed out. Locally a worker cannot be interrupted, only killed, and
    killing the pool (or a dead worker) ends every running trial: those are handed back unused."""
    for future in overdue:
        spec, started, deadline = running.pop(future)
        finish(spec, started, TrialOutcome(spec.trial_id, "failed", params=spec.params,
               error=f"timed out after {deadline - started:.0f} s (the per-trial time limit)"), status="timeout")
        future.cancel()
    if executor.kills_hung_trials or broken:
        for spec, _, _ in running.values():
            scheduler.tell(spec.family, spec.trial_id, None, 0.0)
        running.clear()
        executor.shutdown()
        return None
    return executor


def start_pool(n_workers: int, dask_scheduler: str | None = None) -> LocalPool | DaskPool:
    """A worker pool whose processes start now (in the background), while the caller prepares data."""
    return make_pool(n_workers, dask_scheduler)


def report_memory_cap(executor: LocalPool | DaskPool, emit: Emitter) -> None:
    """Say once per run (a message event) when the trial workers could not get their memory cap."""
    problem = executor.memory_cap_problem()
    if problem:
        emit("message", text=memory_cap_message(problem))


def _warm(executor: LocalPool | DaskPool, n_workers: int, data_path: str, stop_event: threading.Event) -> None:
    """Wait until local workers have started and loaded the data, so that a trial's time limit is
    spent on the trial, not on interpreter start-up."""
    if not isinstance(executor, LocalPool):
        return
    pending = {executor.submit(load_data, data_path) for _ in range(n_workers)}
    deadline = time.perf_counter() + 120
    while pending and not stop_event.is_set() and time.perf_counter() < deadline:
        _, pending = wait(pending, timeout=POLL_SECONDS)


def _outcome(future: Any, spec: TrialSpec) -> tuple[TrialOutcome, bool]:
    """The trial's outcome, and whether its worker died (which breaks the whole pool)."""
    try:
        return future.result(), False
    except Exception as exc:  # the worker process died: segfault, os._exit, out of memory
        reason = type(exc).__name__
        return TrialOutcome(spec.trial_id, "failed", params=spec.params,
                            error=f"the trial's worker process died ({reason}): a crash or running out of memory"), True


def _hard_stop(stop_event: threading.Event, clock: Clock) -> str:
    if stop_event.is_set():
        return "stopped by the user"
    if clock.remaining() <= 0:
        return "time budget reached"
    return ""


def _exit_reason(config: AutoMLConfig, metric: Metric, best: TrialResult | None, since_best: int,
                 n_started: int) -> str:
    """Why no further trial should start (running ones still finish), or "" to go on."""
    if config.max_trials is not None and n_started >= config.max_trials:
        return f"{config.max_trials} trials done"
    if config.score_threshold is not None and best is not None and best.score is not None:
        if not metric.better(config.score_threshold, best.score):
            return f"score threshold {config.score_threshold} reached"
    if config.early_stop_trials is not None and since_best >= config.early_stop_trials:
        return f"no improvement in {config.early_stop_trials} trials"
    return ""


def _trim(oof: dict[int, np.ndarray], trials: list[TrialResult], metric: Metric, keep: int = 40) -> None:
    """Keep out-of-fold predictions of the best ``keep`` trials only (ensembles use no more)."""
    if len(oof) <= keep:
        return
    by_id = {t.trial_id: t for t in trials}
    ranked = sorted(oof, key=lambda i: metric.loss(by_id[i].score))
    for trial_id in ranked[keep:]:
        del oof[trial_id]
