"""Forecasting model families: baselines and statistical models (statsforecast, one fit per series)
and LightGBM / linear models on lag features (mlforecast, one global model across series).

A family is a name plus plain-dict parameters; ``fit`` returns the library's own fitted object
(``StatsForecast`` or ``MLForecast``), which is what the saved model holds, so it forecasts in any
Python that has those public packages.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .features import FeaturePlan, model_frame
from .series import DS, ID, Y

STATS = ("naive", "seasonal_naive", "drift", "auto_ets", "auto_theta", "auto_arima", "mstl")
LAG_MODELS = ("lgbm_lags", "linear_lags")
#: families of their own modules (prophet_family.py, neural.py): fitted objects are plain dicts
OTHER = ("prophet", "mlp_window")
#: every forecasting family a config may allow or block
FAMILY_NAMES = (*STATS, *LAG_MODELS, *OTHER)
LABELS = {"naive": "Naive (last value)", "seasonal_naive": "Seasonal naive", "drift": "Random walk with drift", "auto_ets": "AutoETS",
          "auto_theta": "AutoTheta", "auto_arima": "AutoARIMA", "mstl": "MSTL (multiple seasonalities)",
          "lgbm_lags": "LightGBM on lags (global)", "linear_lags": "Linear on lags (global)",
          "prophet": "Prophet (one per series)", "mlp_window": "Neural MLP on windows (global, torch)",
          "ensemble": "Ensemble of forecasts"}
#: AutoARIMA's order search grows fast with the series length; it sees only the latest rows.
ARIMA_MAX_ROWS = 1000
#: ... and at most this many seasons of them (at least 300 rows). A weekly series with a yearly
#: season (m=52) took 275 s per fit on 8 seasons (416 rows) and 40 s on 300 rows (co2_mauna_loa_weekly,
#: last 3 windows: MASE 0.229 on 300 rows, 0.225 on 260, 0.227 on 416 with seasonal orders <= 1).
ARIMA_SEASONS = 5
STATS_MAX_ROWS = 4_000
#: AutoETS from a season of 52 (weekly data) and AutoTheta from 24 (hourly) see only the latest
#: ``STATS_SEASONS`` seasons, at least ``STATS_CAPPED_ROWS`` rows (bench/results/stats-rows-*.md, 3 outer windows,
#: one trial on 520 rows vs on all, load 8-12): co2_mauna_loa_weekly (2,284 rows) ETS MASE 0.716 -> 0.724 and
#: Theta 0.555 -> 0.271, at 0.18 and 0.14 of the seconds; on three unseen hourly series (5,000 rows, m=24)
#: Theta 5.99 -> 1.32, 14.96 -> 1.92, 0.509 -> 0.511 at 0.04-0.05 of the seconds (its decomposition follows
#: the recent level), but ETS was mixed there (0.742 -> 0.549, 0.781 -> 1.467, 0.510 -> 0.485), so hourly
#: ETS keeps ``STATS_MAX_ROWS``.
STATS_LONG_SEASON = {"auto_ets": 52, "auto_theta": 24}
STATS_SEASONS = 10
STATS_CAPPED_ROWS = 520
#: Lag models train on at most this many of the latest rows (over all series): years of hourly
#: history add little over the last two, and cost minutes on a busy 2-core machine.
ML_MAX_ROWS = 20_000


#: The first LightGBM-on-lags trials: mlforecast's default LightGBM (100 trees at rate 0.1, the peers.md
#: baseline), not 300 at 0.05. A trial costs 0.53 of the former (fit + predict of one nyc_energy window,
#: alternating in one process, median of 3, under load 13), and on a long hourly series under load the
#: former timed out: a 60 s nyc_energy search at load 14 kept no lag model at all (both LightGBM trials
#: killed, seasonal naive + naive kept; bench/results/forecast-60s-20261207-182702.json). Replayed on
#: 4 unseen long series and the 9 shared sets (bench/replay_order.py), at the cost of the former first
#: four trials the choice is better on 10 of 13 sets (all 4 unseen), worse on 2 (nyc_energy +6 %, stocks +20 %);
#: at an equal trial count (a long budget) it is a wash (5 better, 4 worse, 4 tied within 0.5 %).
FIRST_LGBM = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31}


@dataclass(frozen=True)
class Problem:
    """What every family needs to know about the data (plain data, shipped to the workers)."""

    freq: str
    season: int
    horizon: int
    plan: FeaturePlan
    static: tuple[str, ...]
    future: tuple[str, ...]
    past: tuple[str, ...]
    nonnegative: bool = False        # the history never goes below 0: neither do the forecasts


def portfolio(problem: Problem, n_rows: int) -> list[tuple[str, dict[str, Any]]]:
    """The first trials, fast and diverse first: baselines, lag models, then statistical models."""
    m = problem.season
    trials: list[tuple[str, dict[str, Any]]] = [("seasonal_naive", {}) if m > 1 else ("naive", {})]
    if m > 1:
        trials.append(("naive", {}))
    # Order from the bench's per-family runs (bench/bench_forecast.py): each of these was the best
    # single family on at least one shared set; AutoARIMA (capped at ARIMA_MAX_ROWS) before the rest.
    # The first two LightGBM trials use mlforecast's defaults (FIRST_LGBM, see there): a time budget
    # cuts the queue's tail, and these are the trials it must not lose.
    trials += [
        ("lgbm_lags", {"transform": "none", **FIRST_LGBM}),
        ("lgbm_lags", {"transform": "diff", **FIRST_LGBM}),
        ("linear_lags", {"transform": "diff", "alpha": 1.0}),
        ("linear_lags", {"transform": "none", "alpha": 1.0}),
        ("auto_theta", {}), ("auto_ets", {}), ("auto_arima", {}), ("drift", {}),
        ("lgbm_lags", {"transform": "scale", "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31}),
    ]
    if m >= 24:  # hourly data has a daily and a weekly cycle
        trials.append(("mstl", {}))
    if m > 1:  # Prophet last: it earned its place on seasonal data only (bench/replay_families.py, see OPT_IN)
        trials.append(("prophet", dict(OPT_IN["prophet"])))
    return trials


#: Prophet and the neural MLP, tried when a config names them in allowed_models and the default
#: portfolio does not hold them. bench/replay_families.py (the choice rule with and without each
#: family's trial, on the windows of replay_choice.py): Prophet improved the average rank against the
#: portfolio alone on the shared sets (1.43 vs 1.50, geometric-mean MASE -2.7 %: oj_sales -16 %,
#: daily_min_temperatures -5 %, bike_share_daily +3 %) and lost on the yearly panels, where it has no
#: season to model (grunfeld +3 %, longley +24 %), so the portfolio holds it for seasonal data only. The
#: MLP won on the shared sets (1.43; fred_retail -3.5 %, daily temperatures -4 %) and lost on the
#: independent ones (1.62; danish_quarterly +4 %): a tie over all sets, so it stays opt-in.
OPT_IN: dict[str, dict[str, Any]] = {"prophet": {"seasonality_mode": "additive", "changepoint_prior_scale": 0.05},
                                     "mlp_window": {}}


def opt_in(allowed: tuple[str, ...] | None, portfolio: list[tuple[str, dict[str, Any]]] = ()
           ) -> list[tuple[str, dict[str, Any]]]:
    """The first trials of the opt-in families a config allows by name (those the portfolio lacks)."""
    have = {f for f, _ in portfolio}
    return [(f, dict(p)) for f, p in OPT_IN.items() if allowed and f in allowed and f not in have]


def expected_seconds(family: str, n_series: int, n_folds: int) -> float | None:
    """A trial's seconds before one of its family has finished (the search's cost model, so that a
    slow family is not started when it cannot finish): Prophet fits every series in every window,
    the neural model one global fit per window. None: cheap families, learned from their trials."""
    if family == "prophet":
        from . import prophet_family
        return prophet_family.SECONDS_PER_FIT * n_series * n_folds
    if family == "mlp_window":
        from . import neural
        return neural.SECONDS_PER_FIT * n_folds
    return None


def sample_params(rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    """A random LightGBM-on-lags configuration, for the trials after the portfolio."""
    return "lgbm_lags", {
        "transform": str(rng.choice(["none", "diff", "scale"])),
        "n_estimators": int(rng.choice([150, 300, 600])),
        "learning_rate": float(rng.choice([0.02, 0.05, 0.1])),
        "num_leaves": int(rng.choice([7, 15, 31, 63])),
        "min_child_samples": int(rng.choice([5, 10, 20, 40])),
        "colsample_bytree": float(rng.choice([0.6, 0.8, 1.0])),
    }


# --- statistical models ----------------------------------------------------------------------------

#: Families whose fit is a search over model forms: the final refit (and a forecast from newer history)
#: fits the form the trial found once instead of searching again (issue #20): the same coefficients and
#: forecasts as the search's own fit of that form.
SEARCHED = ("auto_arima", "auto_ets", "auto_theta")
#: A refit with the found form, as a share of the trial's search, priced above what bench/refit_form_cost.py
#: measured (one process, alternating, under load 7-8): AutoARIMA 0.11 on co2 (m=52, 300 rows: 59 s search,
#: 6.8 s one fit) and 0.05 on fred_retail, AutoETS 0.03 on both, AutoTheta 0.29 and 0.40 (4 variants, and
#: its one fit still tests the season).
FOUND_SHARE = {"auto_arima": 0.35, "auto_ets": 0.35, "auto_theta": 0.6}


def found_form(family: str, model: Any) -> dict[str, Any]:
    """The model form a fitted statsforecast Auto* model chose (its ``model_``), as plain JSON data."""
    m = model.model_
    if family == "auto_arima":
        p, q, P, Q, season, d, D = (int(v) for v in m["arma"])
        return {"order": [p, d, q], "seasonal_order": [P, D, Q], "season": season,
                "mean": "intercept" in m["coef"], "drift": "drift" in m["coef"]}
    if family == "auto_ets":
        parts = [str(c) for c in m["components"]]
        return {"model": "".join(parts[:3]), "damped": parts[3] not in ("N", "False")}
    return {"model": str(m["modeltype"])}


def shared_form(family: str, models: Iterable[Any]) -> dict[str, Any] | None:
    """The form every series' model chose, or None when they differ (a saved StatsForecast holds one model
    per family for all its series, so a panel whose series chose different forms keeps the search)."""
    forms = {json.dumps(found_form(family, m), sort_keys=True) for m in models}
    return json.loads(forms.pop()) if len(forms) == 1 else None


def _stats_model(family: str, problem: Problem, form: dict[str, Any] | None = None) -> Any:
    from statsforecast.models import (ARIMA, MSTL, AutoARIMA, AutoETS, AutoTheta, Naive, RandomWalkWithDrift,
                                      SeasonalNaive)
    m = problem.season
    if form and family == "auto_arima":
        return ARIMA(order=tuple(form["order"]), season_length=int(form["season"]),
                     seasonal_order=tuple(form["seasonal_order"]), include_mean=bool(form["mean"]),
                     include_drift=bool(form["drift"]), alias=family)
    if form and family == "auto_ets":
        return AutoETS(season_length=m, model=form["model"], damped=bool(form["damped"]), alias=family)
    if form and family == "auto_theta":
        return AutoTheta(season_length=m, model=form["model"], alias=family)
    if family == "naive":
        return Naive(alias=family)
    if family == "drift":
        return RandomWalkWithDrift(alias=family)
    if family == "seasonal_naive":
        return SeasonalNaive(season_length=m, alias=family)
    if family == "auto_ets":
        return AutoETS(season_length=m, alias=family)
    if family == "auto_theta":
        return AutoTheta(season_length=m, alias=family)
    if family == "auto_arima":
        return AutoARIMA(season_length=m, alias=family)
    if family == "mstl":
        return MSTL(season_length=[m, 7 * m], trend_forecaster=AutoETS(model="ZZN"), alias=family)
    raise ValueError(f"unknown statistical family {family}")


def _forecaster(family: str, problem: Problem, form: dict[str, Any] | None = None) -> Any:
    """An unfitted StatsForecast of the family's one model (of the ``form`` found, for a SEARCHED family)."""
    from statsforecast import StatsForecast
    return StatsForecast(models=[_stats_model(family, problem, form)], freq=problem.freq, n_jobs=1)


def stats_rows(family: str, season: int) -> int:
    """The latest rows per series a statistical family is fit on."""
    if family == "auto_arima":
        return min(ARIMA_MAX_ROWS, max(ARIMA_SEASONS * season, 300))
    if season >= STATS_LONG_SEASON.get(family, math.inf):
        return min(STATS_MAX_ROWS, max(STATS_SEASONS * season, STATS_CAPPED_ROWS))
    return max(STATS_MAX_ROWS, 3 * season + 10) if family != "mstl" else max(STATS_MAX_ROWS, 3 * 7 * season)


def _stats_input(family: str, train: pd.DataFrame, season: int) -> pd.DataFrame:
    return train.groupby(ID, sort=False).tail(stats_rows(family, season))[[ID, DS, Y]]


# --- lag models ------------------------------------------------------------------------------------

def _lag_model(family: str, params: dict[str, Any], threads: int, seed: int) -> Any:
    if family == "lgbm_lags":
        import lightgbm as lgb
        keys = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "colsample_bytree")
        return lgb.LGBMRegressor(**{k: params[k] for k in keys if k in params}, n_jobs=threads,
                                 random_state=seed, verbose=-1)
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), Ridge(alpha=float(params.get("alpha", 1.0))))


def _mlforecast(family: str, params: dict[str, Any], problem: Problem, threads: int, seed: int) -> Any:
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd
    from mlforecast.target_transforms import Differences, LocalStandardScaler
    plan = problem.plan
    transform = params.get("transform", "none")
    targets = {"diff": [Differences([1])], "scale": [LocalStandardScaler()]}.get(transform, [])
    windows = {1: [t(window_size=w) for w in plan.windows for t in (RollingMean, RollingStd)]} if plan.windows else {}
    return MLForecast(models={family: _lag_model(family, params, threads, seed)}, freq=problem.freq,
                      lags=list(plan.lags), lag_transforms=windows, date_features=list(plan.date_features),
                      target_transforms=targets, num_threads=1)


def fit(family: str, params: dict[str, Any], train: pd.DataFrame, problem: Problem, threads: int = 1,
        seed: int = 0) -> Any:
    """Fit one family on the panel ``train`` (unique_id, ds, y, exogenous); returns the library object."""
    if family in STATS:
        form = params.get("found") if family in SEARCHED else None
        history = _stats_input(family, train, problem.season)
        try:
            return _forecaster(family, problem, form).fit(history)
        except Exception:
            if not form:
                raise
            # the found form does not fit the longer history (an ARIMA whose CSS start is non-stationary): search
            return _forecaster(family, problem).fit(history)
    if family == "prophet":
        from . import prophet_family
        return prophet_family.fit(train, problem.future, problem.freq, params)
    if family == "mlp_window":
        from . import neural
        return neural.fit(train, problem.freq, problem.season, problem.horizon, params, threads, seed)
    per_series = max(ML_MAX_ROWS // max(train[ID].nunique(), 1), 3 * _keep(problem))
    frame = model_frame(train.groupby(ID, sort=False).tail(per_series), problem.plan, problem.past)
    forecaster = _mlforecast(family, params, problem, threads, seed)
    forecaster.fit(frame, static_features=list(problem.static), dropna=True, keep_last_n=_keep(problem),
                   fitted=False)
    return forecaster


#: Families whose later validation windows reuse the per-series models fit on the earliest window,
#: run forward over each later window's longer history with the same orders and coefficients
#: (statsforecast's cross_validation(refit=False)): AutoARIMA's order search is nearly all of its
#: cost, and ten windows of it made a 12-trial search take 13 min on co2_mauna_loa_weekly.
FIT_ONCE = ("auto_arima",)


class FitOnce:
    """Forecasts of successive validation windows (earliest first) from models fit once per series."""

    def __init__(self, family: str, problem: Problem) -> None:
        self.family, self.problem = family, problem
        self.models: dict[Any, Any] = {}

    def forecast(self, train: pd.DataFrame, window: pd.DataFrame) -> tuple[pd.DataFrame, float]:
        """(unique_id, ds, yhat for the ``window`` rows right after ``train``; seconds spent fitting)."""
        history = _stats_input(self.family, train, self.problem.season)
        new = history[~history[ID].isin(list(self.models))]
        start = time.perf_counter()
        if not new.empty:  # the first window, or series too short for the earlier ones
            sf = _forecaster(self.family, self.problem).fit(new)
            self.models.update(zip(sf.uids, sf.fitted_[:, 0]))
        fit_s = time.perf_counter() - start
        means = {uid: self.models[uid].forward(y=g[Y].to_numpy(float), h=self.problem.horizon)["mean"]
                 for uid, g in history.groupby(ID, sort=False)}
        out = window.sort_values([ID, DS])[[ID, DS]].reset_index(drop=True)
        out["yhat"] = np.concatenate([means[uid][: len(g)] for uid, g in out.groupby(ID, sort=False)])
        return out, fit_s


def _keep(problem: Problem) -> int:
    """History rows kept per series for recursive updates (longest lag or window, with room)."""
    return int(max([*problem.plan.lags, *problem.plan.windows, 1]) + 2)


def predict(fitted: Any, family: str, h: int, X_df: pd.DataFrame | None, history: pd.DataFrame | None = None,
            problem: Problem | None = None) -> pd.DataFrame:
    """unique_id, ds, yhat for the ``h`` steps after each series' end.

    With ``history`` (newer data than the fit saw) the forecast starts from its end: statistical
    models are refit on it (cheap), lag models take it as their new lags.
    """
    X = X_df if X_df is not None and X_df.shape[1] > 2 else None
    if family == "prophet":
        from . import prophet_family
        return prophet_family.predict(fitted, h, X, history)
    if family == "mlp_window":
        from . import neural
        return neural.predict(fitted, h, history)
    if history is not None and problem is not None:
        if family in STATS:
            df = _stats_input(family, history, problem.season)
            try:  # a found form (SEARCHED) is fit once on the newer history
                out = fitted.forecast(df=df, h=h)
            except Exception:
                if family not in SEARCHED:
                    raise
                out = _forecaster(family, problem).forecast(df=df, h=h)  # the found form does not fit it: search
        else:
            frame = model_frame(history.groupby(ID, sort=False).tail(3 * _keep(problem)), problem.plan, problem.past)
            out = fitted.predict(h=h, new_df=frame, X_df=X)
    elif family in STATS:
        out = fitted.predict(h=h)
    else:
        out = fitted.predict(h=h, X_df=X)
    out = out.reset_index() if ID not in out.columns else out
    return out[[ID, DS, family]].rename(columns={family: "yhat"})


def clip(values: pd.Series | np.ndarray, nonnegative: bool) -> pd.Series | np.ndarray:
    """Forecasts of a quantity that is never negative (sales, demand) are cut at 0."""
    return values.clip(lower=0) if nonnegative and hasattr(values, "clip") else values
