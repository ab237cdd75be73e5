"""The forecasting run behind ``AutoML(task="forecasting").fit``: trials -> ensemble -> final refit.

Trials run in loky worker processes, as tabular trials do, so Stop and the time budget cut a slow
fit (AutoARIMA on a long series) at once. Every trial goes through the same ``Event`` /
``TrialResult`` callbacks, so the store, the CLI's progress lines and the live page need nothing
new. The fitted ``AutoML`` gets the attributes the tabular run sets (``model_``, ``best_trial_``,
``search_``, ``card_``, ``test_score_``, ...), with ``model_`` the saved bundle (see bundle.py).
"""
from __future__ import annotations

import math
import os
import tempfile
import threading
import warnings
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any, Iterable

import joblib
import numpy as np
import pandas as pd

from ..errors import AutoMLInputError
from ..metrics import resolve_metric
from ..predictions import Predictions
from ..results import TrialResult
from ..search import Clock, Emitter, SearchResult, report_memory_cap, start_pool
from . import models
from .bundle import chart_frame, make_bundle, make_card, score_test
from .features import plan_features
from .scoring import conformal_quantiles
from .setup import ForecastData
from .validation import (Folds, ForecastOutcome, TrialData, default_folds, ensemble_weights, min_history, refit,
                         run_trial)

# statsforecast compiles its models with numba in every new worker; cached, that is paid once.
os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
# loky's memory guard restarts a worker that statsforecast / numba grew, and says so on stderr each time.
warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given", category=UserWarning)
POLL = 0.2
ENSEMBLE_TOP = 6


def fit_forecasting(automl: Any, data: ForecastData, *, callbacks: Iterable[Any] = (),
                    stop_event: threading.Event | None = None, first_trial_id: int = 1) -> Any:
    """Search forecasting models for ``data`` within the config's limits; fills ``automl``'s attributes."""
    cfg = automl.config
    clock = Clock(cfg.time_budget)
    stop_event = stop_event or threading.Event()
    metric = resolve_metric(cfg.metric, data.task)
    emit = Emitter(list(callbacks), clock)
    step = cfg.cv_step or data.horizon
    lengths = data.panel.groupby("unique_id").size()
    plan = plan_features(data.panel, data.freq, data.season, data.horizon, cfg.country)
    folds = Folds(cfg.cv_folds or default_folds(data.horizon, step, lengths), step, data.horizon,
                  min_history(data.season, plan.lags, plan.windows, lengths, data.horizon))
    problem = models.Problem(data.freq, data.season, data.horizon, plan, data.static_columns,
                             data.future_columns, data.past_columns, bool((data.panel["y"] >= 0).all()))
    automl.prepared_, automl.task_, automl.metric_ = data, data.task, metric
    automl.validation_ = _Plan(folds.describe(lengths), folds.n)
    n_workers = 1 if cfg.max_trials is not None else min(cfg.cores, 2)
    pool = start_pool(n_workers)
    pools = [pool]  # the search replaces a pool whose worker died
    try:
        with tempfile.TemporaryDirectory(prefix="automl-forecast-") as tmp:
            path = os.path.join(tmp, "forecast.joblib")
            joblib.dump(TrialData(data.panel, data.observed.to_numpy(), problem, folds), path)
            emit("experiment_started", task=data.task.value, task_reason=data.task_reason, metric=metric.name,
                 validation=automl.validation_.description, n_rows=len(data.panel),
                 columns=[{"name": c, "role": "numeric"} for c in data.panel.columns[3:]],
                 notes=[f"frequency {data.freq} (seasonal period {data.season}), {data.n_series} series, "
                        f"horizon {data.horizon}", *data.notes], time_budget=cfg.time_budget)
            report_memory_cap(pool, emit)
            trials, scored, reason, abandoned = _search(path, problem, len(data.panel), cfg, metric, clock, emit,
                                                        stop_event, pools, n_workers, first_trial_id)
            pool = pools[0]
            if not scored:
                reasons = "; ".join(sorted({t.error for t in trials if t.error}))[:500]
                raise AutoMLInputError(f"No forecasting trial finished{': ' + reasons if reasons else ''}",
                                       "give the search more time, or check the data")
            best, members, weights = _choose(trials, scored, metric, cfg.ensembles, emit, clock)
            emit("refit_started", trial_id=best.trial_id, family=best.family)
            if abandoned:  # a cut-off trial still occupies a worker: only killing the pool frees it
                pool.shutdown()
                fitted = refit(path, members, 1, cfg.seed)
            else:
                fitted = _wait(pool.submit(refit, path, members, 1, cfg.seed), clock, cfg.time_budget)
            if fitted is None:  # the refit would overrun the budget (or crashed): the fastest good model instead
                pool.shutdown()
                best, members, weights = _fallback(trials, metric)
                data.notes.append(f"the final refit of the best model did not fit in the time budget, so the "
                                  f"fastest of the best models was refit instead ({best.family}, trial {best.trial_id})")
                fitted = refit(path, members, 1, cfg.seed)
    finally:
        pools[0].shutdown()
    best_scored = _blend(scored, best, weights)
    quantiles = conformal_quantiles(best_scored, data.horizon)
    automl.model_ = make_bundle(data, cfg, plan, fitted, members, weights, quantiles)
    automl.best_trial_ = best
    automl.search_ = SearchResult(trials, {}, best, "stopped by the user" if stop_event.is_set()
                                  else reason or "time budget reached")
    automl.trials_ = trials
    automl.predictions_ = {"validation": _validation_predictions(trials, scored, weights, best), "test": None}
    automl.cv_forecasts_ = best_scored
    automl.test_score_, automl.test_metrics_, automl.test_predictions_ = score_test(automl.model_, data, metric)
    automl.wall_seconds_ = clock.elapsed()
    automl.card_ = make_card(automl, data, plan, best_scored)
    keep = int(min(2000, max(5 * data.horizon, 3 * data.season, 100)))
    automl.forecast_chart_ = chart_frame(automl.model_, best_scored, automl.test_predictions_, keep)
    emit("experiment_finished", stopped_by=automl.search_.stopped_by, best_trial_id=best.trial_id,
         best_score=best.score, test_score=automl.test_score_, wall_seconds=round(automl.wall_seconds_, 3))
    return automl


class _Plan:
    """The part of a tabular ValidationPlan that callers read (description, number of splits)."""

    def __init__(self, description: str, n_splits: int) -> None:
        self.description, self.n_splits, self.kind = description, n_splits, "rolling-origin"


def _search(path: str, problem: models.Problem, n_rows: int, cfg: Any, metric: Any, clock: Clock, emit: Emitter,
            stop_event: threading.Event, pools: list[Any], n_workers: int,
            first_trial_id: int) -> tuple[list[TrialResult], dict[int, pd.DataFrame], str, bool]:
    allowed = set(cfg.allowed_models or ()) or None
    queue = [(f, p) for f, p in models.portfolio(problem, n_rows)
             if (allowed is None or f in allowed) and f not in cfg.blocked_models]
    rng = np.random.default_rng(cfg.seed)
    sampling = (allowed is None or "lgbm_lags" in allowed) and "lgbm_lags" not in cfg.blocked_models
    trials: list[TrialResult] = []
    scored: dict[int, pd.DataFrame] = {}
    running: dict[Any, tuple[int, str, dict, float]] = {}
    next_id, best = first_trial_id, None
    since_best, reason = 0, ""
    while True:
        # A trial still running already tells something of what the refit will cost.
        running_for = max((clock.elapsed() - s for _, _, _, s in running.values()), default=0.0)
        if stop_event.is_set() or clock.remaining() - max(_reserve(trials, best), 0.3 * running_for) <= 0:
            reason = reason or ("stopped by the user" if stop_event.is_set() else "time budget reached")
            break
        reserve = _reserve(trials, best)
        while not reason and len(running) < n_workers:
            if cfg.max_trials is not None and len(trials) + len(running) >= cfg.max_trials:
                reason = f"{cfg.max_trials} trials done"
                break
            if cfg.early_stop_trials is not None and since_best >= cfg.early_stop_trials:
                reason = f"no improvement in {cfg.early_stop_trials} trials"
                break
            if not queue and not sampling:
                reason = "every model family tried"
                break
            if trials and clock.remaining() - reserve <= 1.0:
                reason = "time budget reached"
                break
            family, params = queue.pop(0) if queue else models.sample_params(rng)
            emit("trial_started", None, trial_id=next_id, family=family, params=params)
            future = pools[0].submit(run_trial, path, next_id, family, params, 1, cfg.seed)
            running[future] = (next_id, family, params, clock.elapsed())
            next_id += 1
        if not running:
            break
        done, _ = wait(list(running), timeout=POLL, return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            trial_id, family, params, started = running.pop(future)
            try:
                outcome: ForecastOutcome = future.result()
            except Exception as exc:  # the worker died (crash, out of memory): the pool is broken
                broken = True
                outcome = ForecastOutcome(trial_id, "failed", error=f"the trial's worker process died ({type(exc).__name__})")
            result = _record(outcome, family, params, metric, started, clock)
            trials.append(result)
            emit("trial_finished", result, best_score=best.score if best else None)
            if result.status == "ok":
                scored[trial_id] = outcome.scored
                if best is None or metric.better(result.score, best.score):
                    best, since_best = result, 0
                    emit("new_best", result, score=result.score, family=family)
                    continue
            since_best += 1
        if broken:  # the other running trials died with the pool: ask them again on a new one
            queue[:0] = [(family, params) for _, family, params, _ in running.values()]
            running.clear()
            pools[0].shutdown()
            pools[0] = start_pool(n_workers)
        limit = cfg.trial_timeout or math.inf
        if any(clock.elapsed() - s > limit for _, _, _, s in running.values()):
            reason = reason or f"a trial ran past the per-trial time limit ({limit:g} s)"
            break  # the pool is killed by the caller; finished trials are kept
    for trial_id, family, params, started in running.values():
        trials.append(TrialResult(trial_id, family, params, "timeout", None, {}, 0.0, 0.0, round(started, 3),
                                  round(clock.elapsed(), 3), "cut off: the search ended (budget, stop or time limit)"))
        emit("trial_finished", trials[-1], best_score=best.score if best else None)
    return trials, scored, reason, bool(running)


def _record(outcome: ForecastOutcome, family: str, params: dict, metric: Any, started: float, clock: Clock) -> TrialResult:
    score = outcome.metrics.get(metric.name) if outcome.status == "ok" else None
    status, error = outcome.status, outcome.error
    if status == "ok" and score is None:
        status, error = "failed", f"the metric {metric.name} could not be computed on the validation windows"
    return TrialResult(outcome.trial_id, family, dict(params), status, score, outcome.metrics,  # type: ignore[arg-type]
                       round(outcome.fit_seconds, 3), round(outcome.predict_seconds, 3), round(started, 3),
                       round(clock.elapsed(), 3), error)


def _reserve(trials: list[TrialResult], best: TrialResult | None) -> float:
    """Seconds to keep for the final refit: about one fold's fit of the slowest likely member."""
    ok = sorted((t for t in trials if t.status == "ok"), key=lambda t: t.score if t.score is not None else 0)
    if not ok:
        return 0.0
    slowest = max(t.fit_seconds for t in ok[:ENSEMBLE_TOP])
    return 0.6 * slowest + 2.0


def _choose(trials: list[TrialResult], scored: dict[int, pd.DataFrame], metric: Any, ensembles: bool,
            emit: Emitter, clock: Clock) -> tuple[TrialResult, list[tuple[str, dict]], dict[int, float]]:
    """The best trial, or an ensemble trial when blending the best ones scores better."""
    ok = sorted((t for t in trials if t.status == "ok"), key=lambda t: metric.loss(t.score))
    best = ok[0]
    if ensembles and len(ok) >= 2:
        top = {t.trial_id: scored[t.trial_id] for t in ok[:ENSEMBLE_TOP]}
        weights = ensemble_weights(top, metric.name, metric.greater_is_better)
        if len(weights) >= 2:
            from .scoring import score
            blend = _blend(scored, None, weights)
            metrics = score(blend)
            value = metrics.get(metric.name)
            if value is not None and metric.better(value, best.score):
                by_id = {t.trial_id: t for t in ok}
                trial_id = max(t.trial_id for t in trials) + 1
                ids = list(weights)
                note = " + ".join(f"{weights[i]:.2f} x #{i} {models.LABELS.get(by_id[i].family, by_id[i].family)}"
                                  for i in ids)
                result = TrialResult(trial_id, "ensemble", {"members": ids, "weights": [weights[i] for i in ids]},
                                     "ok", value, metrics, sum(by_id[i].fit_seconds for i in ids), 0.0,
                                     round(clock.elapsed(), 3), round(clock.elapsed(), 3), "", note)
                trials.append(result)
                emit("trial_finished", result, best_score=best.score)
                emit("new_best", result, score=value, family="ensemble")
                return result, [(by_id[i].family, by_id[i].params) for i in ids], weights
    return best, [(best.family, best.params)], {best.trial_id: 1.0}


def _validation_predictions(trials: list[TrialResult], scored: dict[int, pd.DataFrame], weights: dict[int, float],
                            best: TrialResult) -> Predictions:
    """The rolling-origin forecasts of every finished trial (and the ensemble) on the same rows."""
    first = scored[next(iter(scored))]
    models_ = {i: frame["yhat"].to_numpy(float) for i, frame in scored.items()}
    if best.family == "ensemble":
        models_[best.trial_id] = _blend(scored, best, weights)["yhat"].to_numpy(float)
    return Predictions("forecasting", None, first["y"].to_numpy(float), np.arange(len(first)), models_)


def _blend(scored: dict[int, pd.DataFrame], best: TrialResult | None, weights: dict[int, float]) -> pd.DataFrame:
    ids = list(weights)
    base = scored[ids[0]].copy()
    base["yhat"] = sum(weights[i] * scored[i]["yhat"].to_numpy(float) for i in ids)
    return base


def _wait(future: Any, clock: Clock, budget: float | None) -> dict[str, Any] | None:
    """The refit's result, or None when it would end past the budget plus 10 %. It runs even after
    Stop: a stopped run still yields its best model."""
    limit = None if budget is None else max(3.0, budget * 1.1 - clock.elapsed())
    try:
        return future.result(timeout=limit)
    except Exception:  # past the limit, or its worker died: the caller refits a quicker model in-process
        return None


def _fallback(trials: list[TrialResult], metric: Any) -> tuple[TrialResult, list[tuple[str, dict]], dict[int, float]]:
    """The quickest trial among the better half (not an ensemble)."""
    ok = sorted((t for t in trials if t.status == "ok" and t.family != "ensemble"), key=lambda t: metric.loss(t.score))
    pick = min(ok[:max(1, len(ok) // 2)], key=lambda t: t.fit_seconds)
    return pick, [(pick.family, pick.params)], {pick.trial_id: 1.0}
