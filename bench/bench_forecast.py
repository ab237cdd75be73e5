"""Forecasting benchmark: our AutoML against the baselines of ../shared/peers.md on every shared
forecasting set (MANIFEST.tsv task=forecasting).

Protocol (as peers.md): rolling origin, 3 windows of horizon h at the end of each series; sMAPE (%)
and MASE (seasonal period m), the mean over windows and series; missing targets forward-filled for
the models' input and never scored; hourly sets cut to their last 5,000 points. For each window our
engine runs a whole search (with its own inner rolling-origin validation) on the history before the
window only, then forecasts the window: no window is seen before it is scored. Exogenous columns are
treated as known in the future, as the peers did; bike_share_daily's casual and registered (which
add up to the target) are left out.

    python bench/bench_forecast.py --budget 60 [--only oj_sales,fred_retail] [--max-trials N]

Results go to bench/results/forecast-<budget>-<stamp>.{md,json}.

Opt-in families (issue #20, Prophet and the neural MLP): ``--families prophet,mlp_window`` runs, on each
set, a search allowed only that family (one trial with ``--max-trials 1``: its inner validation, refit and
forecast), so its MASE and seconds per window stand beside the peers'. Whether a family earns its place
in the default portfolio is judged with the choice rule on the same windows, with and without its trial
(``bench/replay_families.py``). Results go to bench/results/forecast-families-<budget>-<stamp>.{md,json}.

Many models (issue #20): ``--partitioned`` runs each chosen set (of several series) twice, as one global
model and with ``partition_by`` its first series-id column (oj_sales: the store), one model per
partition; ``--max-trials`` then applies to each partition, as in the engine. Results go to
bench/results/forecast-partitioned-<budget>-<stamp>.{md,json}.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
WINDOWS = 3
HOURLY_POINTS = 5000
EXCLUDE = {"bike_share_daily": ("casual", "registered")}
# peers.md, "Forecasting baselines on the shared sets": (freq, h, m, {model: (sMAPE, MASE)})
PEERS = {
    "nyc_energy": ("hourly", 48, 24, {"Naive": (17.99, 2.942), "SeasonalNaive": (7.73, 1.325), "AutoETS": (17.99, 2.942),
                                      "AutoARIMA": (7.93, 1.386), "AutoTheta": (7.64, 1.308), "LightGBM": (5.73, 0.999)}),
    "bike_share_daily": ("daily", 14, 7, {"Naive": (40.30, 1.666), "SeasonalNaive": (38.92, 1.593), "AutoETS": (39.61, 1.635),
                                          "AutoARIMA": (38.56, 1.555), "AutoTheta": (38.28, 1.543), "LightGBM": (28.23, 1.041)}),
    "oj_sales": ("weekly", 8, 52, {"Naive": (68.05, 0.865), "SeasonalNaive": (77.35, 1.097), "AutoETS": (77.51, 0.912),
                                   "AutoARIMA": (75.80, 0.871), "AutoTheta": (78.54, 0.911), "LightGBM": (71.12, 0.804)}),
    "fred_retail": ("monthly", 12, 12, {"Naive": (5.25, 1.994), "SeasonalNaive": (6.32, 2.391), "AutoETS": (4.12, 1.588),
                                        "AutoARIMA": (4.22, 1.625), "AutoTheta": (4.09, 1.576), "LightGBM": (6.88, 2.595)}),
    "co2_mauna_loa_weekly": ("weekly", 8, 52, {"Naive": (0.37, 1.022), "SeasonalNaive": (0.38, 1.066), "AutoETS": (0.26, 0.716),
                                               "AutoARIMA": (0.09, 0.244), "AutoTheta": (0.20, 0.555), "LightGBM": (0.21, 0.578)}),
    "daily_min_temperatures": ("daily", 14, 7, {"Naive": (18.55, 0.837), "SeasonalNaive": (19.23, 0.853), "AutoETS": (15.97, 0.724),
                                                "AutoARIMA": (13.66, 0.635), "AutoTheta": (15.91, 0.721), "LightGBM": (14.67, 0.697)}),
    "monthly_sunspots": ("monthly", 12, 12, {"Naive": (39.00, 1.905), "SeasonalNaive": (33.96, 1.595), "AutoETS": (33.91, 1.571),
                                             "AutoARIMA": (29.69, 1.332), "AutoTheta": (33.89, 1.570), "LightGBM": (26.68, 1.152)}),
    "healthexp": ("yearly", 3, 1, {"Naive": (0.35, 1.146), "SeasonalNaive": (0.35, 1.146), "AutoETS": (0.50, 1.707),
                                   "AutoARIMA": (0.50, 1.709), "AutoTheta": (0.47, 1.616), "LightGBM": (0.93, 2.941)}),
    "stocks": ("monthly", 12, 12, {"Naive": (28.51, 1.656), "SeasonalNaive": (34.63, 2.016), "AutoETS": (28.79, 1.672),
                                   "AutoARIMA": (27.18, 1.563), "AutoTheta": (27.87, 1.636), "LightGBM": (34.05, 2.005)}),
}


def datasets() -> list[dict[str, str]]:
    with open(SHARED / "MANIFEST.tsv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["task"] == "forecasting"]
    # the nyc_energy validation and test files are parts of the same series: the train file stands for it
    return [r for r in rows if not r["file"].startswith(("nyc_energy_validation", "nyc_energy_test"))]


def short_name(file: str) -> str:
    stem = Path(file).stem
    return next((k for k in PEERS if stem.startswith(k)), stem)


def panel_of(row: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """The set as a regular panel (unique_id, ds, y, exogenous), y NaN where it was not observed."""
    from automl_core.config import AutoMLConfig
    from automl_core.forecast.series import prepare_forecast
    name = short_name(row["file"])
    h = PEERS[name][1]
    df = pd.read_csv(SHARED / row["file"])
    series = tuple(c for c in row["group_columns"].split(",") if c)
    config = AutoMLConfig(task="forecasting", time_column=row["time_column"], horizon=h, series_id=series,
                          exclude_columns=EXCLUDE.get(name, ()), time_budget=1)
    data = prepare_forecast(df, row["target"], config)
    panel = data.panel.copy()
    panel.loc[~data.observed.to_numpy(), "y"] = np.nan
    if PEERS[name][0] == "hourly":
        panel = panel.groupby("unique_id").tail(HOURLY_POINTS).reset_index(drop=True)
    return panel, [c for c in panel.columns if c not in ("unique_id", "ds", "y")]


def windows(panel: pd.DataFrame, h: int) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    pos = panel.groupby("unique_id").cumcount()
    length = panel.groupby("unique_id")["unique_id"].transform("size")
    out = []
    for k in range(WINDOWS):
        end = length - (WINDOWS - 1 - k) * h
        out.append((panel[pos < end - h], panel[(pos >= end - h) & (pos < end)]))
    return out


def smape(y: np.ndarray, f: np.ndarray) -> float:
    denom = np.abs(y) + np.abs(f)
    return float(100 * np.mean(np.where(denom == 0, 0.0, 2 * np.abs(y - f) / np.where(denom == 0, 1, denom))))


def mase(y: np.ndarray, f: np.ndarray, history: np.ndarray, m: int) -> float:
    history = pd.Series(history).ffill().bfill().to_numpy()
    m = m if len(history) > m else 1
    scale = float(np.mean(np.abs(history[m:] - history[:-m]))) or 1.0
    return float(np.mean(np.abs(y - f)) / scale)


def run_set(row: dict[str, str], budget: float | None, max_trials: int | None, cv: int | None = None,
            partitioned: bool = False, allowed: tuple[str, ...] | None = None,
            only_windows: tuple[int, ...] | None = None) -> dict:
    """Our engine on the set's rolling windows (``only_windows``: these of them, 0 = the earliest);
    ``partitioned``: one model per value of the set's first series-id column (the panel's ids start with it)."""
    from automl_core import AutoML
    name = short_name(row["file"])
    freq, h, m, _ = PEERS[name]
    panel, _ = panel_of(row)
    if partitioned:
        panel = panel.assign(partition=panel["unique_id"].str.split(" / ").str[0])
    smapes, mases, seconds, best, searches = [], [], [], [], []
    load_before = round(os.getloadavg()[0], 1)
    for k, (train, window) in enumerate(windows(panel, h)):
        if only_windows is not None and k not in only_windows:
            continue
        automl = AutoML(task="forecasting", time_column="ds", horizon=h, series_id=["unique_id"], metric="mase",
                        time_budget=budget, max_trials=max_trials, cv_folds=cv, seed=0,
                        partition_by=["partition"] if partitioned else (), allowed_models=allowed)
        start = time.perf_counter()
        events: dict[str, float] = {}  # when the refit started and the run ended: the refit's seconds (and the tail's)
        automl.fit(train, target="y", callbacks=[lambda e: events.setdefault(e.kind, e.elapsed)])
        forecast = automl.predict(window.drop(columns="y"))
        seconds.append(time.perf_counter() - start)
        best.append(automl.best_trial_.family if not partitioned
                    else "+".join(automl.partitions_["best_model"].fillna("none")))
        if not partitioned:  # what the search did: a time budget and a trial count differ here first
            searches.append(search_summary(automl))
            searches[-1]["refit_seconds"] = round(events.get("experiment_finished", math.nan)
                                                  - events.get("refit_started", math.nan), 1)
        scored = window.assign(f=forecast)
        for uid, g in scored.groupby("unique_id"):
            g = g[g["y"].notna()]
            if g.empty:
                continue
            smapes.append(smape(g["y"].to_numpy(float), g["f"].to_numpy(float)))
            mases.append(mase(g["y"].to_numpy(float), g["f"].to_numpy(float),
                              train.loc[train["unique_id"] == uid, "y"].to_numpy(float), m))
    return {"dataset": name, "freq": freq, "h": h, "m": m, "smape": float(np.mean(smapes)), "mase": float(np.mean(mases)),
            "seconds_per_window": [round(s, 1) for s in seconds], "best_models": best,
            "partitioned": partitioned, "partitions": int(panel["partition"].nunique()) if partitioned else 1,
            "load_average_before": load_before, "searches": searches}


def search_summary(automl) -> dict:
    """One window's search: trials by status, each finished trial's family and seconds, the kept members,
    whether the final refit fell back, the inner windows."""
    trials = [t for t in automl.trials_ if t.family != "ensemble"]
    best = automl.best_trial_
    members = best.params.get("members", [best.trial_id]) if best.family == "ensemble" else [best.trial_id]
    by_id = {t.trial_id: t for t in trials}
    return {"statuses": {s: sum(t.status == s for t in trials) for s in sorted({t.status for t in trials})},
            "trials": [f"{t.family}{':' + t.params['transform'] if 'transform' in t.params else ''}"
                       f"{' (form found)' if t.params.get('found') else ''} "
                       f"{t.status} {t.fit_seconds + t.predict_seconds:.1f}s" for t in trials],
            "kept": [f"{by_id[i].family}:{by_id[i].params.get('transform', '')}".rstrip(":") for i in members if i in by_id],
            "refit_fallback": automl.prepared_.facts.get("refit_fallback"), "inner_windows": automl.validation_.n_splits}


def partition_table(results: list[dict]) -> str:
    """Global against partitioned, per set: MASE, sMAPE, seconds per window, the models chosen."""
    lines = ["| dataset | model | partitions | MASE | sMAPE | s per window | best models per window |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        kind = "one per partition" if r["partitioned"] else "one global"
        lines.append(f"| {r['dataset']} | {kind} | {r['partitions']} | {r['mase']:.3f} | {r['smape']:.2f} | "
                     f"{', '.join(map(str, r['seconds_per_window']))} | {'; '.join(r['best_models'])} |")
    return "\n".join(lines)


def verdict(result: dict) -> dict:
    peers = PEERS[result["dataset"]][3]
    best_smape = min(v[0] for v in peers.values())
    best_mase = min(v[1] for v in peers.values())
    sn_smape, sn_mase = peers["SeasonalNaive"]
    return {"beats_seasonal_naive": result["smape"] < sn_smape and result["mase"] < sn_mase,
            "matches_best_mase": result["mase"] <= best_mase * 1.02,
            "matches_best_smape": result["smape"] <= best_smape * 1.02,
            "best_baseline_mase": best_mase, "best_baseline_smape": best_smape,
            "rank_mase": rank_among_baselines(result["mase"], peers)}


def rank_among_baselines(ours: float, peers: dict[str, tuple[float, float]]) -> float:
    """Our MASE's rank among ours + the recorded baselines (1 = best; a tie shares the mean rank)."""
    scores = [v[1] for v in peers.values()]
    return 1 + sum(s < ours for s in scores) + 0.5 * sum(s == ours for s in scores)


def table(results: list[dict]) -> str:
    lines = ["| dataset | h | m | ours sMAPE / MASE | SeasonalNaive | best baseline sMAPE / MASE | beats SN | "
             "matches best (MASE) | rank (MASE) | s per window | best models |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        v, sn = r["verdict"], PEERS[r["dataset"]][3]["SeasonalNaive"]
        lines.append(f"| {r['dataset']} | {r['h']} | {r['m']} | {r['smape']:.2f} / {r['mase']:.3f} | {sn[0]:.2f} / {sn[1]:.3f} | "
                     f"{v['best_baseline_smape']:.2f} / {v['best_baseline_mase']:.3f} | {'yes' if v['beats_seasonal_naive'] else 'NO'} | "
                     f"{'yes' if v['matches_best_mase'] else 'no'} | {v['rank_mase']:g} | {', '.join(map(str, r['seconds_per_window']))} | "
                     f"{', '.join(r['best_models'])} |")
    n = len(results)
    sn = sum(r["verdict"]["beats_seasonal_naive"] for r in results)
    best = sum(r["verdict"]["matches_best_mase"] for r in results)
    lines.append("")
    lines.append(f"Beats seasonal naive (sMAPE and MASE) on {sn}/{n} sets; matches or beats the best baseline's MASE "
                 f"(within 2 %) on {best}/{n} (goal: all, and at least two thirds); mean rank by MASE among ours + the "
                 f"{len(PEERS[results[0]['dataset']][3]) if results else 0} baselines of peers.md "
                 f"{np.mean([r['verdict']['rank_mase'] for r in results]) if results else float('nan'):.2f} (goal: 2.0 or less).")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    names = ("statsforecast", "mlforecast", "lightgbm", "scikit-learn", "pandas", "numpy", "holidays")
    return {n: metadata.version(n) for n in names} | {"python": platform.python_version()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per search (one per window)")
    parser.add_argument("--max-trials", type=int, help="trials per search instead of / besides the budget")
    parser.add_argument("--cv", type=int, help="inner rolling-origin windows (default: the engine's)")
    parser.add_argument("--only", help="comma-separated dataset names (e.g. oj_sales,fred_retail)")
    parser.add_argument("--windows", help="comma-separated outer windows to run (0 = the earliest; default all)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--partitioned", action="store_true",
                        help="each set twice: one global model, and one model per value of its first series-id column")
    parser.add_argument("--families", help="comma-separated opt-in families, each run alone on every set")
    args = parser.parse_args()
    if args.partitioned:
        return main_partitioned(args)
    if args.families:
        return main_families(args)
    only = set(args.only.split(",")) if args.only else None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    results = []
    for row in datasets():
        name = short_name(row["file"])
        if only and name not in only:
            continue
        result = run_set(row, args.budget or None, args.max_trials, args.cv,
                         only_windows=tuple(int(w) for w in args.windows.split(",")) if args.windows else None)
        result["verdict"] = verdict(result)
        results.append(result)
        print(f"{name}: sMAPE {result['smape']:.2f}  MASE {result['mase']:.3f}  "
              f"({', '.join(result['best_models'])}; {result['seconds_per_window']} s)", flush=True)
        if not args.no_save:  # after every set: a long run interrupted keeps what it measured
            _save_main(args, stamp, results)
    print(table(results))
    return 0


def _save_main(args: argparse.Namespace, stamp: str, results: list[dict]) -> None:
    label = (f"{args.budget:g}s" + (f"-{args.max_trials}trials" if args.max_trials else "")
             + (f"-cv{args.cv}" if args.cv else ""))
    out = REPO / "bench" / "results" / f"forecast-{label}-{stamp}"
    loads = ", ".join(f"{r['dataset']} {r['load_average_before']}" for r in results)
    header = (f"# Forecasting bench, {label} per window, {stamp}\n\n"
              f"Command: `python bench/bench_forecast.py --budget {args.budget:g}"
              + (f" --max-trials {args.max_trials}" if args.max_trials else "") + (f" --cv {args.cv}" if args.cv else "")
              + (f" --only {args.only}" if args.only else "") + (f" --windows {args.windows}" if args.windows else "")
              + f"`; machine: {os.cpu_count()} cores; versions: {versions()}\n\n"
              f"Load average (1 min) of the cores as each set started: {loads}.\n\n")
    out.with_suffix(".md").write_text(header + table(results) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "max_trials": args.max_trials,
                                                     "versions": versions(), "results": results}, indent=2))


def main_partitioned(args: argparse.Namespace) -> int:
    only = set(args.only.split(",")) if args.only else None
    results = []
    for row in datasets():
        name = short_name(row["file"])
        if (only and name not in only) or not row["group_columns"]:  # one series: nothing to partition
            continue
        for partitioned in (False, True):
            result = run_set(row, args.budget or None, args.max_trials, args.cv, partitioned)
            results.append(result)
            print(f"{name} {'partitioned' if partitioned else 'global'}: MASE {result['mase']:.3f}  sMAPE "
                  f"{result['smape']:.2f}  ({result['seconds_per_window']} s)", flush=True)
    text = partition_table(results)
    print(text)
    if not args.no_save:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        label = f"{args.budget:g}s" + (f"-{args.max_trials}trials" if args.max_trials else "")
        out = REPO / "bench" / "results" / f"forecast-partitioned-{label}-{stamp}"
        header = (f"# Many models against one global model, {label} per window, {stamp}\n\n"
                  f"Command: `python bench/bench_forecast.py --partitioned --budget {args.budget:g}"
                  + (f" --max-trials {args.max_trials}" if args.max_trials else "")
                  + (f" --only {args.only}" if args.only else "")
                  + f"`; machine: {os.cpu_count()} cores; versions: {versions()}\n\n"
                  "A trial limit applies to each partition. Timings were taken under load (other engineers' "
                  "test runs shared the two cores): compare the seconds within this table only.\n\n")
        out.with_suffix(".md").write_text(header + text + "\n")
        out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "max_trials": args.max_trials,
                                                         "versions": versions(), "results": results}, indent=2))
        print(f"recorded in {out.relative_to(REPO)}.md/.json")
    return 0


def main_families(args: argparse.Namespace) -> int:
    only = set(args.only.split(",")) if args.only else None
    names = args.families.split(",")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    results = []
    for row in datasets():
        name = short_name(row["file"])
        if only and name not in only:
            continue
        for family in names:
            try:
                result = run_set(row, args.budget or None, args.max_trials, args.cv, allowed=(family,))
            except Exception as exc:  # noqa: BLE001 -- a family that cannot run on a set is reported, not fatal
                result = {"dataset": name, "mase": float("nan"), "smape": float("nan"), "seconds_per_window": [],
                          "best_models": [f"failed: {str(exc)[:120]}"]}
            result["family"] = family
            results.append(result)
            print(f"{name} {family}: MASE {result['mase']:.3f}  sMAPE {result['smape']:.2f}  "
                  f"({result['seconds_per_window']} s)", flush=True)
            if not args.no_save:  # after every set: a long run interrupted keeps what it measured
                _save_families(args, stamp, results)
    print(_families_table(results))
    return 0


def _families_table(results: list[dict]) -> str:
    lines = ["| dataset | family | MASE | sMAPE | seasonal naive MASE | best baseline MASE | s per window |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        peers = PEERS[r["dataset"]][3]
        lines.append(f"| {r['dataset']} | {r['family']} | {r['mase']:.3f} | {r['smape']:.2f} | "
                     f"{peers['SeasonalNaive'][1]:.3f} | {min(v[1] for v in peers.values()):.3f} | "
                     f"{', '.join(map(str, r['seconds_per_window']))} |")
    return "\n".join(lines)


def _save_families(args: argparse.Namespace, stamp: str, results: list[dict]) -> None:
    label = f"{args.budget:g}s" + (f"-{args.max_trials}trials" if args.max_trials else "")
    out = REPO / "bench" / "results" / f"forecast-families-{label}-{stamp}"
    header = (f"# Opt-in forecasting families alone, {label} per window, {stamp}\n\n"
              f"Command: `python bench/bench_forecast.py --families {args.families} --budget {args.budget:g}"
              + (f" --max-trials {args.max_trials}" if args.max_trials else "")
              + (f" --only {args.only}" if args.only else "")
              + f"`; machine: {os.cpu_count()} cores; versions: {versions() | family_versions()}\n\n"
              "Each search is allowed one family only. Timings were taken under load (other engineers' test "
              "runs shared the two cores): compare the seconds within this table only.\n\n")
    out.with_suffix(".md").write_text(header + _families_table(results) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "max_trials": args.max_trials,
                                                     "versions": versions() | family_versions(),
                                                     "results": results}, indent=2))


def family_versions() -> dict[str, str]:
    return {n: metadata.version(n) for n in ("prophet", "cmdstanpy", "torch")}


if __name__ == "__main__":
    raise SystemExit(main())
