"""The search loop, one for every task: ask the scheduler -> run the trial in a worker -> tell -> callbacks.

A task plugs in with a scheduler (which configuration next: ``next``, ``tell``, ``trial_seconds``,
``in_warm_round``, ``exhausted``; see ``scheduler.Scheduler`` and ``forecast.portfolio.ForecastScheduler``) and an
:class:`Evaluator` (the worker-side functions that validate one configuration and load the task's
training data). Tables and forecasting share the exit criteria, Stop, concurrency, Dask, per-trial
timeouts and events defined here; the bookkeeping lives in ``book.TrialBook``.

Trials run in loky worker processes so that a trial past its timeout can be killed and a crashing
trial costs only itself. Stopping is a flag (``stop_event``) checked every 0.2 s; it kills running
trials at once and keeps every finished one.
"""
from __future__ import annotations

import math
import statistics
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..config import AutoMLConfig
from ..models.metrics import Metric
from .book import TrialBook
from ..io.limits import memory_cap_message
from .executors import DaskPool, LocalPool, make_pool
from .results import Event, TrialOutcome, TrialResult, TrialSpec
from .trial import load_data, run_trial

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


GRACE_SHARE = 0.5
GRACE_MIN_SECONDS = 20.0


@dataclass
class SearchResult:
    trials: list[TrialResult]
    oof: dict[int, Any]                 # validation predictions of the best trials, by trial id
    best: TrialResult | None
    stopped_by: str                     # why the search ended, in words
    pool: LocalPool | DaskPool | None = None  # the workers, still alive unless running trials were killed
    fold_models: dict[int, tuple] = field(default_factory=dict)  # trial id -> (fold models, bytes), best few

    def require_best(self) -> TrialResult:
        """The best trial, or the error a person sees when no trial finished (with the trials' errors)."""
        if self.best is None:
            from ..errors import AutoMLInputError
            reasons = "; ".join(sorted({t.error for t in self.trials if t.error}))[:500]
            raise AutoMLInputError(f"No trial finished ({self.stopped_by}){': ' + reasons if reasons else ''}",
                                   "give the search more time, or check the data")
        return self.best


@dataclass(frozen=True)
class Evaluator:
    """How a task's trials run in a worker: ``run(spec, *data) -> TrialOutcome`` never raises;
    ``load(path)`` reads (and caches) the training data so workers start warm. Both are module-level
    functions, so they pickle to loky and Dask workers. ``preload``: modules a local worker imports as it
    starts (libraries the trials would otherwise import on their own clock, see ``executors._start_worker``)."""

    run: Callable[..., TrialOutcome]
    load: Callable[[str], Any]
    preload: tuple[str, ...] = ()


TABULAR = Evaluator(run_trial, load_data)


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


def run_search(*, data_path: str, scheduler: Any, metric: Metric, config: AutoMLConfig, clock: Clock,
               emit: Emitter, stop_event: threading.Event, reserve: Callable[[list[TrialResult]], float],
               settings: SearchSettings, pool: LocalPool | DaskPool | None = None, first_trial_id: int = 1,
               evaluator: Evaluator = TABULAR, oof: dict[int, Any] | None = None) -> SearchResult:
    """Run trials until an exit criterion is met. Returns every trial, finished or failed.

    ``reserve(trials)`` is the time the steps after the search need (ensembles, the final refit):
    no trial starts that would not finish before it, by the family's measured trial time, and a
    running trial is timed out when it reaches it. The workers come back in the result (``pool``)
    unless running trials had to be killed; the caller shuts them down. ``oof`` (filled in place,
    trial id -> validation predictions) lets ``reserve`` see the predictions so far.
    """
    book = TrialBook(metric, scheduler, emit, clock.elapsed, oof={} if oof is None else oof)
    executor = pool or make_pool(settings.n_concurrent, config.dask_scheduler, evaluator.preload)
    _warm(executor, settings.n_concurrent, data_path, stop_event, evaluator, emit)
    report_memory_cap(executor, emit)
    next_id, no_more, stopped_by = first_trial_id, "", ""
    try:
        graced, search_start = False, clock.elapsed()
        while not (stopped_by := _hard_stop(stop_event, clock, book, search_start)):
            if not graced and book.best is None and clock.remaining() <= 0:
                graced = True
                emit("message", text=f"The time budget ran out before any model finished; the search goes on "
                                     f"for at most {_grace_left(clock, search_start):.0f} s more so that the run ends with a model.")
            no_more = no_more or book.exit_reason(config)
            may_start = not (settings.synchronous and not book.idle)
            while may_start and not no_more and len(book.running) < settings.n_concurrent:
                spec = _next_spec(scheduler, book, settings, config, clock, reserve, data_path, next_id,
                                  next_id - first_trial_id, search_start)
                if spec is None:
                    no_more = ("every model family tried" if scheduler.exhausted
                               else "time budget reached (no further trial fits in the time left)")
                    break
                if executor is None:  # restarted only when a trial needs it, not after the last one
                    executor = make_pool(settings.n_concurrent, config.dask_scheduler, evaluator.preload)
                    _warm(executor, settings.n_concurrent, data_path, stop_event, evaluator, emit)
                started = clock.elapsed()
                plan, timeout = trial_limits(clock, reserve(book.trials), book.best is not None, search_start,
                                             config.trial_timeout)
                if math.isfinite(plan):  # a family that bounds its own fit (epochs) reads it
                    spec = replace(spec, seconds=plan)
                emit("trial_started", None, trial_id=spec.trial_id, family=spec.family, params=spec.params)
                book.start(executor.submit(evaluator.run, spec, *executor.data_arg(data_path)), spec, started, timeout)
                next_id += 1
                no_more = book.exit_reason(config)
            if book.idle:
                stopped_by = no_more or "nothing left to try"
                break
            done, _ = wait(list(book.running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            broken = book.collect(done, settings.synchronous)
            overdue = book.overdue()
            book.time_out(overdue)
            if broken or (overdue and executor.kills_hung_trials):  # killing the pool ends all its trials
                book.abandon_running()
                executor.shutdown()
                executor = None
    finally:
        if book.running and executor is not None:  # Stop or the budget's end: running trials are killed
            executor.shutdown()
            executor = None
        book.abandon_running()
        book.flush()
    return SearchResult(book.trials, book.oof, book.best, stopped_by, executor, book.fold_models)


def _next_spec(scheduler: Any, book: TrialBook, settings: SearchSettings, config: AutoMLConfig, clock: Clock,
               reserve: Callable[[list[TrialResult]], float], data_path: str, trial_id: int,
               n_asked: int, search_start: float) -> TrialSpec | None:
    """The next trial, among configurations expected to finish before the reserve is needed."""
    # the first round of warm starts (about one per family) on a row sample, the rest on all rows
    fraction = settings.low_fidelity_fraction if scheduler.in_warm_round(n_asked) else 1.0

    def fits(family: str) -> bool:
        measured = scheduler.trial_seconds(family)
        # a fixed trial count (synchronous) must not hinge on timings: same seed, same trials
        expected = (measured or 0.0) if settings.synchronous else \
            expected_seconds(measured, family, book.trials, _relative_cost(scheduler))
        expected *= fraction
        if book.best is None:  # no model yet: the first trials may use the grace period
            return _grace_left(clock, search_start) > max(0.5, expected * 0.5)
        return clock.remaining() - reserve(book.trials) > max(0.5, expected)

    family, params = scheduler.next(trial_id, fits=fits)
    if family is None:
        return None
    return TrialSpec(data_path, trial_id, family, params, settings.threads_per_trial, config.seed,
                     row_fraction=fraction)


def expected_seconds(measured: float | None, family: str, finished: list[TrialResult],
                     relative_cost: Callable[[str], float]) -> float:
    """Seconds a family's next trial is expected to take: its own measure, else what the trials that
    finished on this data took, scaled by the families' relative costs (the median of their seconds per
    unit of cost). A family never measured counted as 0 s once: with the reserve near, XGBoost started
    with 1-2 s left on a 20 s budget and was killed, wasting them."""
    if measured is not None:
        return measured
    per_cost = [t.fit_seconds / max(relative_cost(t.family), 1e-3) for t in finished
                if t.status == "ok" and t.fit_seconds > 0]
    return statistics.median(per_cost) * relative_cost(family) if per_cost else 0.0


def _relative_cost(scheduler: Any) -> Callable[[str], float]:
    states = getattr(scheduler, "states", {})
    return lambda family: float(getattr(getattr(states.get(family), "family", None), "relative_cost", 1.0) or 1.0)


def start_pool(n_workers: int, dask_scheduler: str | None = None,
               preload: tuple[str, ...] = ()) -> LocalPool | DaskPool:
    """A worker pool whose processes start now (in the background, importing ``preload``), while the
    caller prepares data."""
    return make_pool(n_workers, dask_scheduler, preload)


def report_memory_cap(executor: LocalPool | DaskPool, emit: Emitter) -> None:
    """Say once per run (a message event) when the trial workers could not get their memory cap."""
    problem = executor.memory_cap_problem()
    if problem:
        emit("message", text=memory_cap_message(problem))


#: Past this wait for the trial workers, the run says it is starting them (a ``workers_starting`` event).
WARM_NOTICE_SECONDS = 1.0


def _warm(executor: LocalPool | DaskPool, n_workers: int, data_path: str, stop_event: threading.Event,
          evaluator: Evaluator, emit: Emitter | None = None) -> None:
    """Wait until local workers have started and loaded the data, so that a trial's time limit is
    spent on the trial, not on interpreter start-up. A wait past ``WARM_NOTICE_SECONDS`` is announced:
    on a busy machine it took 10 s, in which the live page had nothing to say."""
    if not isinstance(executor, LocalPool):
        return
    pending = {executor.submit(evaluator.load, data_path) for _ in range(n_workers)}
    start = time.perf_counter()
    deadline, said = start + 120, False
    while pending and not stop_event.is_set() and time.perf_counter() < deadline:
        _, pending = wait(pending, timeout=POLL_SECONDS)
        if pending and not said and emit is not None and time.perf_counter() - start > WARM_NOTICE_SECONDS:
            said = True
            emit("workers_starting", workers=n_workers)


def trial_limits(clock: Clock, reserve_s: float, have_model: bool, search_start: float,
                 trial_timeout: float | None) -> tuple[float, float]:
    """(seconds a trial plans to use, seconds after which it is killed). Both are the time left before
    the reserve; without a model yet, the kill waits for the grace's end but the plan stays the budget's,
    so a family that sizes its own fit (epochs) does not take the grace as its target."""
    cap = trial_timeout or math.inf
    plan = min(cap, max(clock.remaining() - reserve_s, 1.0))
    return plan, plan if have_model else min(cap, max(_grace_left(clock, search_start), 1.0))


def _grace_left(clock: Clock, search_start: float) -> float:
    """Seconds a run without any finished model may still go on: the budget, and when it ran out before
    one trial finished (a busy machine, slow reading and checks, a slow first family), GRACE_SHARE of it
    more, and at least GRACE_MIN_SECONDS of searching. A person who asked for 30 s would rather have a
    model at 45 s than an error."""
    if clock.budget is None:
        return math.inf
    end = max(clock.budget * (1 + GRACE_SHARE), search_start + max(GRACE_MIN_SECONDS, GRACE_SHARE * clock.budget))
    return end - clock.elapsed()


def _hard_stop(stop_event: threading.Event, clock: Clock, book: TrialBook, search_start: float) -> str:
    if stop_event.is_set():
        return "stopped by the user"
    if clock.remaining() <= 0 and (book.best is not None or _grace_left(clock, search_start) <= 0):
        return "time budget reached"
    return ""
