"""The search loop's bookkeeping: trials running and finished, the best so far, and why to stop.

Kept apart from the loop (``loop.py``) so the loop reads on one screen, and the same for every task:
a trial's outcome becomes a :class:`TrialResult` here, the scheduler is told here, events are
emitted here — whether the trial fitted a table's model or a forecaster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..models.metrics import Metric

#: Fold models are kept for this many of the best trials at most: a bag is made of the best one's, or
#: of the members of the Caruana ensemble (a few of the best trials, see ``finalize.likely_members``).
KEEP_FOLD_MODELS = 6
#: ... and while their pickled sizes add up to at most this (forests of deep trees run to tens of MB).
BAG_MEMORY_BYTES = 192 * 2 ** 20
from .results import TrialOutcome, TrialResult, TrialSpec


@dataclass
class Running:
    spec: TrialSpec
    started: float               # seconds since the experiment started
    deadline: float              # the trial is ended (timed out) past this


class TrialBook:
    """Everything the loop knows about its trials. ``record`` is the one way a trial finishes."""

    def __init__(self, metric: Metric, scheduler: Any, emit: Callable[..., None], elapsed: Callable[[], float],
                 oof: dict[int, Any], keep_oof: int = 40) -> None:
        self.metric, self.scheduler, self.emit, self.elapsed = metric, scheduler, emit, elapsed
        self.keep_oof = keep_oof
        self.trials: list[TrialResult] = []
        self.oof = oof                    # validation predictions of the best trials, by trial id (filled in place)
        self.fold_models: dict[int, tuple] = {}   # trial id -> (fold models, pickled bytes), best few only
        self.best: TrialResult | None = None
        self.since_best = 0
        self.running: dict[Any, Running] = {}                      # future -> its trial
        self.held: list[tuple[Running, TrialOutcome]] = []         # finished, not yet recorded (synchronous mode)

    @property
    def n_started(self) -> int:
        return len(self.trials) + len(self.running) + len(self.held)

    @property
    def idle(self) -> bool:
        return not self.running and not self.held

    def start(self, future: Any, spec: TrialSpec, started: float, timeout: float) -> None:
        self.running[future] = Running(spec, started, started + timeout)

    def collect(self, done: Any, synchronous: bool) -> bool:
        """Take the finished futures; record them (in trial order when ``synchronous``, once none is
        running, so a fixed trial count gives the same run). Returns whether a worker died."""
        broken = False
        for future in done:
            run = self.running.pop(future)
            outcome, died = _outcome(future, run.spec)
            broken |= died
            self.held.append((run, outcome))
        if not synchronous or not self.running:
            self.flush()
        return broken

    def flush(self) -> None:
        for run, outcome in sorted(self.held, key=lambda h: h[0].spec.trial_id):
            self.record(run, outcome)
        self.held.clear()

    def overdue(self) -> list[Any]:
        now = self.elapsed()
        return [future for future, run in self.running.items() if now > run.deadline]

    def time_out(self, futures: list[Any]) -> None:
        for future in futures:
            run = self.running.pop(future)
            self.record(run, TrialOutcome(run.spec.trial_id, "failed", params=run.spec.params,
                                          error=f"timed out after {run.deadline - run.started:.0f} s "
                                                "(the per-trial time limit)"), status="timeout")
            future.cancel()

    def abandon_running(self) -> None:
        """Trials whose worker was killed with the pool: the scheduler learns nothing from them."""
        for run in self.running.values():
            self.scheduler.tell(run.spec.family, run.spec.trial_id, None, 0.0)
        self.running.clear()

    def record(self, run: Running, outcome: TrialOutcome, status: str = "") -> TrialResult:
        spec, metric = run.spec, self.metric
        score = outcome.metrics.get(metric.name) if outcome.status == "ok" else None
        status, error = status or outcome.status, outcome.error
        if status == "ok" and score is None:
            status, error = "failed", f"the metric {metric.name} could not be computed on the validation rows"
        sample = f"fit on a {spec.row_fraction:.0%} row sample" if spec.row_fraction < 1 else ""
        note = "; ".join(n for n in (sample, outcome.note) if n)
        result = TrialResult(spec.trial_id, spec.family, outcome.params or spec.params, status,  # type: ignore[arg-type]
                             score, outcome.metrics, round(outcome.fit_seconds, 3), round(outcome.predict_seconds, 3),
                             round(run.started, 3), round(self.elapsed(), 3), error, note)
        self.trials.append(result)
        self.scheduler.tell(spec.family, spec.trial_id, metric.loss(score) if score is not None else None,
                            self.elapsed() - run.started, low_fidelity=spec.row_fraction < 1)
        self.emit("trial_finished", result, best_score=self.best.score if self.best else None)
        if status != "ok":
            self.since_best += 1
            return result
        self.oof[spec.trial_id] = outcome.oof
        if outcome.fold_models is not None:
            self.fold_models[spec.trial_id] = (outcome.fold_models, outcome.fold_bytes)
        self._trim()
        if self.best is None or metric.better(score, self.best.score):
            self.best, self.since_best = result, 0
            self.emit("new_best", result, score=score, family=spec.family)
        else:
            self.since_best += 1
        return result

    def exit_reason(self, config: Any) -> str:
        """Why no further trial should start (running ones still finish), or "" to go on."""
        if config.max_trials is not None and self.n_started >= config.max_trials:
            return f"{config.max_trials} trials done"
        best = self.best
        if config.score_threshold is not None and best is not None and best.score is not None:
            if not self.metric.better(config.score_threshold, best.score):
                return f"score threshold {config.score_threshold} reached"
        if config.early_stop_trials is not None and self.since_best >= config.early_stop_trials:
            return f"no improvement in {config.early_stop_trials} trials"
        return ""

    def _trim(self) -> None:
        """Keep out-of-fold predictions of the best ``keep_oof`` trials only (ensembles use no more)."""
        by_id = {t.trial_id: t for t in self.trials}
        total = 0  # their memory is bounded: the best few trials, and their bytes together
        for rank, trial_id in enumerate(sorted(self.fold_models, key=lambda i: self.metric.loss(by_id[i].score))):
            size = self.fold_models[trial_id][1]
            if rank >= KEEP_FOLD_MODELS or total + size > BAG_MEMORY_BYTES:
                del self.fold_models[trial_id]
            else:
                total += size
        if len(self.oof) <= self.keep_oof:
            return
        ranked = sorted(self.oof, key=lambda i: self.metric.loss(by_id[i].score))
        for trial_id in ranked[self.keep_oof:]:
            del self.oof[trial_id]


def _outcome(future: Any, spec: TrialSpec) -> tuple[TrialOutcome, bool]:
    """The trial's outcome, and whether its worker died (which breaks the whole pool)."""
    try:
        return future.result(), False
    except Exception as exc:  # the worker process died: segfault, os._exit, out of memory
        reason = type(exc).__name__
        return TrialOutcome(spec.trial_id, "failed", params=spec.params,
                            error=f"the trial's worker process died ({reason}): a crash or running out of memory"), True
