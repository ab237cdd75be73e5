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
from dataclasses import replace
from typing import Any, Callable, Iterable

import joblib
import numpy as np
import pandas as pd

from ..errors import AutoMLInputError
from ..understand.predictions import Predictions
from ..search.results import TrialResult
from ..search.finalize import RESERVE_MARGIN
from ..models.families import unnest
from ..search.loop import Clock, Emitter, Evaluator, SearchSettings, run_search, start_pool
from . import choice, families
from .bundle import chart_frame, make_bundle, make_card, score_test
from .features import plan_features
from ..understand.guardrails import to_json
from .guardrails import check_data, check_forecast
from .accuracy import conformal_quantiles
from .series import ForecastData
from .portfolio import ForecastScheduler
from .windows import Folds, TrialData, default_folds, load, min_history, refit, run_trial

# statsforecast compiles its models with numba in every new worker; cached, that is paid once.
os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
# loky's memory guard restarts a worker that statsforecast / numba grew, and says so on stderr each time.
warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given", category=UserWarning)
ENSEMBLE_TOP = 6
#: A run ends within its budget plus 10 % (issue #20): the refit's deadline is taken from it.
TOLERANCE = 1.1
#: Seconds the steps after the refit take (intervals, bundle, test score, card, chart).
TAIL_SECONDS = 2.0
#: A refit expected to take at most 1/this of its time left runs in this process (no worker to start).
IN_PROCESS_FACTOR = 4.0
#: What the default forecasting families import (statistical models, lag models): each worker imports
#: them once as it starts, not once per trial (see ``executors._start_worker``).
PRELOAD = ("statsforecast", "statsforecast.models", "mlforecast", "lightgbm")
EVALUATOR = Evaluator(run_trial, load, PRELOAD)


def fit_forecasting(automl: Any, data: ForecastData, *, callbacks: Iterable[Any] = (),
                    stop_event: threading.Event | None = None, first_trial_id: int = 1,
                    warm_start: list[tuple[str, dict[str, Any]]] = (), clock: Clock | None = None) -> Any:
    """Search forecasting models for ``data`` within the config's limits; fills ``automl``'s attributes.

    ``first_trial_id`` and ``warm_start`` continue a resumed experiment, as for tables; ``clock``: the run's
    clock when it started before this call (reading and preparing the data count against the budget)."""
    cfg = automl.config
    clock = clock or Clock(cfg.time_budget)
    stop_event = stop_event or threading.Event()
    data.facts.pop("refit_fallback", None)  # a prepared problem fitted again starts without the last run's
    metric = data.metric
    emit = Emitter(list(callbacks), clock)
    step = cfg.cv_step or data.horizon
    lengths = data.panel.groupby("unique_id").size()
    plan = plan_features(data.panel, data.freq, data.season, data.horizon, cfg.country)
    folds = Folds(cfg.cv_folds or default_folds(data.horizon, step, lengths), step, data.horizon,
                  min_history(data.season, plan.lags, plan.windows, lengths, data.horizon))
    problem = families.Problem(data.freq, data.season, data.horizon, plan, data.static_columns,
                               data.future_columns, data.past_columns, bool((data.panel["y"] >= 0).all()))
    automl.prepared_, automl.task_, automl.metric_ = data, data.task, metric
    automl.validation_ = _Plan(folds.describe(lengths), folds.n)
    settings = SearchSettings(n_concurrent=cfg.max_concurrent_trials or min(cfg.cores, 2), threads_per_trial=1,
                              synchronous=cfg.max_trials is not None)
    pool = start_pool(settings.n_concurrent, cfg.dask_scheduler, EVALUATOR.preload)
    try:
        with tempfile.TemporaryDirectory(prefix="automl-forecast-") as tmp:
            path = os.path.join(tmp, "forecast.joblib")
            joblib.dump(TrialData(data.panel, data.observed.to_numpy(), problem, folds), path)
            emit("experiment_started", task=data.task.value, task_reason=data.task_reason, metric=metric.name,
                 validation=automl.validation_.description, n_rows=len(data.panel),
                 columns=[{"name": c, "role": "numeric"} for c in data.panel.columns[3:]],
                 notes=[f"frequency {data.freq} (seasonal period {data.season}), {data.n_series} series, "
                        f"horizon {data.horizon}", *data.notes], time_budget=cfg.time_budget,
                 concurrent_trials=settings.n_concurrent, threads_per_trial=1,
                 # the data guardrails, for the live page (the card gets them all once the model is chosen)
                 guardrails=to_json(check_data(data, folds), []))
            scheduler = ForecastScheduler(problem, len(data.panel), seed=cfg.seed,
                                          deterministic=cfg.max_trials is not None, allowed=cfg.allowed_models,
                                          blocked=cfg.blocked_models, warm_start=warm_start,
                                          n_series=data.n_series, n_folds=folds.n)
            started = {"search": clock.elapsed()}  # when the first trial started: what starting workers costs here
            emit.callbacks.append(lambda e: started.setdefault(e.kind, e.elapsed))
            result = run_search(data_path=path, scheduler=scheduler, metric=metric, config=cfg, clock=clock, emit=emit,
                                stop_event=stop_event, reserve=lambda trials: _reserve(trials, metric, folds.n),
                                settings=settings, pool=pool, first_trial_id=first_trial_id, evaluator=EVALUATOR)
            trials, scored, pool = result.trials, result.oof, result.pool
            if not scored:
                reasons = "; ".join(sorted({t.error for t in trials if t.error}))[:500]
                raise AutoMLInputError(f"No forecasting trial finished ({result.stopped_by})"
                                       f"{': ' + reasons if reasons else ''}",
                                       "give the search more time, or check the data")
            costs = {t.trial_id: refit_seconds(t, folds.n) for t in trials if t.status == "ok"}
            fits = _refit_fits(costs, clock, cfg.time_budget)
            best, members, weights = _choose(trials, scored, metric, cfg.ensembles, emit, clock, data, fits)
            emit("refit_started", trial_id=best.trial_id, family=best.family)
            worker_start = started.get("trial_started", started["search"]) - started["search"]
            fitted, pool = _final_refit(path, members, weights, costs, trials, metric, clock, cfg, pool, worker_start)
            if fitted is None:  # the refit would overrun the budget (or crashed): the fastest good model instead
                data.facts.setdefault("refit_fallback", best.family)  # what should have forecast (guardrails.py)
                best, members, weights = _fallback(trials, metric, costs, _time_left(clock, cfg.time_budget), weights)
                data.notes.append(f"the final refit of the best model did not fit in the time budget, so a quick "
                                  f"one of the best models was refit instead ({best.family}, trial {best.trial_id})")
                fitted = refit(path, members, 1, cfg.seed)
    finally:
        if pool is not None:
            pool.shutdown()
    best_scored = _blend(scored, best, weights)
    quantiles = conformal_quantiles(best_scored, data.horizon)
    automl.model_ = make_bundle(data, cfg, plan, fitted, members, weights, quantiles)
    automl.best_trial_ = best
    automl.search_ = result
    result.pool = None  # shut down above; a fitted AutoML holds no workers
    automl.trials_ = trials
    automl.predictions_ = {"validation": _validation_predictions(trials, scored, weights, best), "test": None}
    automl.cv_forecasts_ = best_scored
    automl.test_score_, automl.test_metrics_, automl.test_predictions_ = score_test(automl.model_, data, metric)
    automl.wall_seconds_ = clock.elapsed()
    automl.card_ = make_card(automl, data, plan, best_scored)
    automl.card_["guardrails"] = check_forecast(data, folds, trials, best)
    keep = int(min(2000, max(5 * data.horizon, 3 * data.season, 100)))
    automl.forecast_chart_ = chart_frame(automl.model_, best_scored, automl.test_predictions_, keep)
    emit("experiment_finished", stopped_by=automl.search_.stopped_by, best_trial_id=best.trial_id,
         best_score=best.score, test_score=automl.test_score_, wall_seconds=round(automl.wall_seconds_, 3))
    return automl


class _Plan:
    """The part of a tabular ValidationPlan that callers read (description, number of splits)."""

    def __init__(self, description: str, n_splits: int) -> None:
        self.description, self.n_splits, self.kind = description, n_splits, "rolling-origin"


def refit_seconds(trial: TrialResult, n_folds: int) -> float:
    """Expected seconds of this trial's refit on the whole history, from its own measured fit seconds: one
    fold's fit (AutoARIMA fits once per series, not once per fold: all of it), times the table refit's margin
    (the whole history is longer than a fold's, and AutoARIMA's order search grows with it). A searching family
    whose trial found one form for all series refits that form once: its ``families.FOUND_SHARE`` of the search."""
    one = trial.fit_seconds if trial.family in families.FIT_ONCE else trial.fit_seconds / max(1, n_folds)
    if trial.family in families.SEARCHED and trial.params.get("found"):
        one *= families.FOUND_SHARE[trial.family]
    return RESERVE_MARGIN * one


def _reserve(trials: list[TrialResult], metric: Any, n_folds: int) -> float:
    """Seconds to keep for the final refit: the members the choice picks from (the best ``ENSEMBLE_TOP``)
    are refit one after another, so their refits add up; then intervals, card and chart."""
    ok = sorted((t for t in trials if t.status == "ok"), key=lambda t: metric.loss(t.score))
    if not ok:
        return 0.0
    return sum(refit_seconds(t, n_folds) for t in ok[:ENSEMBLE_TOP]) + TAIL_SECONDS


def _refit_fits(costs: dict[int, float], clock: Clock, budget: float | None) -> Callable[[Iterable[int]], bool]:
    """Whether refitting these trials (one after another) is expected to end within the budget's tolerance."""
    def fits(ids: Iterable[int]) -> bool:
        return sum(costs.get(i, 0.0) for i in ids) <= _time_left(clock, budget)
    return fits


def _time_left(clock: Clock, budget: float | None) -> float:
    """Seconds a refit may still take: to the budget's tolerance, less the steps after it."""
    return math.inf if budget is None else budget * TOLERANCE - TAIL_SECONDS - clock.elapsed()


def _choose(trials: list[TrialResult], scored: dict[int, pd.DataFrame], metric: Any, ensembles: bool,
            emit: Emitter, clock: Clock, data: ForecastData | None = None,
            fits: Callable[[Iterable[int]], bool] | None = None
            ) -> tuple[TrialResult, list[tuple[str, dict]], dict[int, float]]:
    """The trial, or blend of trials, that ``choice.choose`` keeps (an ensemble trial for a blend). Only trials
    whose validation forecasts were kept take part: the search keeps the best 40 (``TrialBook.keep_oof``), and a
    fast search (cheap naive trials) finishes more than that. ``fits(trial ids)``: whether their refit ends within
    the budget; when the choice's would not, the rule chooses again among the trials whose refit does (recorded
    as the final model's fallback, as a refit cut at its deadline is)."""
    ok = sorted((t for t in trials if t.status == "ok" and t.trial_id in scored), key=lambda t: metric.loss(t.score))
    by_id = {t.trial_id: t for t in ok}
    short = data is not None and choice.short_low_frequency(data.freq, data.panel.groupby("unique_id").size())
    rule = choice.DEFAULT if ensembles else replace(choice.DEFAULT, top=1, comb=False)

    def pick(among: list[TrialResult]) -> dict[int, float]:
        return choice.choose({t.trial_id: scored[t.trial_id] for t in among}, {t.trial_id: t.family for t in among},
                             metric.name, metric.greater_is_better, rule, short=short)

    weights = pick(ok)
    affordable = [t for t in ok if fits is None or fits([t.trial_id])]
    if fits is not None and not fits(weights) and affordable:
        wanted = by_id[next(iter(weights))].family if len(weights) == 1 else "ensemble"
        weights = pick(affordable)
        if data is not None:
            data.facts["refit_fallback"] = wanted  # what should have forecast (guardrails.py)
            data.notes.append(f"the refit of the chosen model ({unnest(families.LABELS.get(wanted, wanted))}) would not end "
                              f"within the time budget by its trials' fit times, so the choice was made again among "
                              f"the models whose refit does")
        ok = affordable
    if len(weights) == 1:
        best = by_id[next(iter(weights))]
        if best is not ok[0] and data is not None:
            data.notes.append(choice.simple_note(best.family, ok[0].family, short, rule))
        return best, [(best.family, best.params)], {best.trial_id: 1.0}
    from .accuracy import score
    metrics = score(_blend(scored, None, weights))
    value = metrics.get(metric.name)
    trial_id = max(t.trial_id for t in trials) + 1
    ids = list(weights)
    note = " + ".join(f"{weights[i]:.2f} x #{i} {families.LABELS.get(by_id[i].family, by_id[i].family)}" for i in ids)
    result = TrialResult(trial_id, "ensemble", {"members": ids, "weights": [weights[i] for i in ids]},
                         "ok", value, metrics, sum(by_id[i].fit_seconds for i in ids), 0.0,
                         round(clock.elapsed(), 3), round(clock.elapsed(), 3), "", note)
    trials.append(result)
    emit("trial_finished", result, best_score=ok[0].score)
    emit("new_best", result, score=value, family="ensemble")
    return result, [(by_id[i].family, by_id[i].params) for i in ids], weights


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


def _final_refit(path: str, members: list[tuple[str, dict]], weights: dict[int, float], costs: dict[int, float],
                 trials: list[TrialResult], metric: Any, clock: Clock, cfg: Any, pool: Any,
                 worker_start: float = 0.0) -> tuple[Any, Any]:
    """(the refit models, or None when the refit was cut at its deadline or crashed; the pool still alive).

    Under a budget the refit runs in a worker process, so that a refit past its deadline (AutoARIMA on co2's
    2,200 weekly points: minutes under load) is killed, also when the search's workers were killed (a trial past
    its timeout): such a refit used to run here without a deadline. The deadline leaves the budget's
    tolerance room for the quick fallback's refit and the steps after. A refit expected to take a fraction of
    the time left runs here (a new worker would cost more in imports than it could save), and so does one that
    fits the time left when starting a worker (``worker_start``: what the search's took) would use half of it
    (co2 at load 6: 20 s to start, 9 s left); so do refits without a budget, and those of a Dask run or of a
    partition's search (``kills_hung_trials`` false)."""
    fallback = _fallback(trials, metric, costs, cut=weights)[0]
    limit = _time_left(clock, cfg.time_budget) - costs.get(fallback.trial_id, 0.0)
    expected = sum(costs.get(i, 0.0) for i in weights)
    if pool is not None and not pool.kills_hung_trials:  # a Dask cluster (the file is on this machine), inline
        pool.shutdown()
        pool = None
    slow_start = pool is None and worker_start * 2 >= limit
    if (math.isinf(limit) or not _local_workers(cfg) or (pool is None and expected * IN_PROCESS_FACTOR <= limit)
            or (slow_start and expected <= limit)):
        return refit(path, members, 1, cfg.seed), pool
    if slow_start:  # neither a worker nor this process would end it in time: the caller's fallback
        return None, pool
    if pool is None:  # its workers were killed (a trial past its timeout, the budget's end): a fresh one
        pool = start_pool(1, None, EVALUATOR.preload)
    try:
        return pool.submit(refit, path, members, 1, cfg.seed).result(timeout=max(limit, 1.0)), pool
    except Exception:  # past the deadline, or its worker died: the caller refits a quicker model here
        pool.shutdown()
        return None, None


def _local_workers(cfg: Any) -> bool:
    from ..search.executors import INLINE_TRIALS
    return not cfg.dask_scheduler and not INLINE_TRIALS.get()


def _fallback(trials: list[TrialResult], metric: Any, costs: dict[int, float], seconds_left: float = math.inf,
              cut: Iterable[int] = ()) -> tuple[TrialResult, list[tuple[str, dict]], dict[int, float]]:
    """The quickest refit among the better half of the trials (not an ensemble, not the ``cut`` refit's members),
    or the quickest of all when that one's would not end in ``seconds_left``. Refit here, without a deadline, so
    it must be cheap: on co2 the better half of a starved search held only AutoARIMA, and its fallback refit
    took minutes."""
    ok = sorted((t for t in trials if t.status == "ok" and t.family != "ensemble"), key=lambda t: metric.loss(t.score))
    ok = [t for t in ok if t.trial_id not in set(cut)] or ok
    pick = min(ok[:max(1, len(ok) // 2)], key=lambda t: costs.get(t.trial_id, t.fit_seconds))
    if costs.get(pick.trial_id, 0.0) > seconds_left:
        pick = min(ok, key=lambda t: costs.get(t.trial_id, t.fit_seconds))
    return pick, [(pick.family, pick.params)], {pick.trial_id: 1.0}
