"""The first trials when a time budget cuts the forecasting search short (issue #20, nyc_energy at 60 s).

A time budget runs the portfolio's first k trials and cuts the rest; which k depends on the load. This
scores, per set, each configuration below once through the engine's rolling-origin code
(``replay_choice.build`` / ``_one``: N inner + 3 outer windows), then for every prefix length k runs the
engine's choice rule (``choice.DEFAULT`` over the N windows before each outer window) on the first k trials
of each variant and reports the kept forecast's MASE on the outer windows (mean of 3, as peers.md):

- "portfolio": the portfolio before ``families.FIRST_LGBM`` (LightGBM 300 trees at 0.05, then its diff variant);
- "linear first": both linear lag models before LightGBM-diff (rejected: 5 better, 6 worse at k = 4);
- "cheap LightGBM": both first LightGBM trials at mlforecast's defaults (100 at 0.1): the engine's now;
- "cheap first LightGBM only": only the first one.

"Equal cost" compares a variant's longest prefix costing (``COST``) no more than the portfolio's first k.

Sets: unseen long series from installed packages (vega_datasets' seattle_temps and sf_temps hourly,
seattle_weather daily with its weather columns as exogenous, UCI bike sharing hourly from
../shared/datasets, a regression set there that never shaped a forecasting choice) and the shared
forecasting sets (``replay_choice.shared_sets``).

    python bench/replay_order.py [--only a,b] [--jobs 2]

Results: bench/results/forecast-order-<stamp>.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from replay_choice import CACHE, OUTER, _one, build, shared_sets  # noqa: E402

from automl_core.forecast import choice  # noqa: E402

HOURLY_POINTS = 5000   # as bench_forecast.py: hourly sets cut to their last 5,000 points
LGBM = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31}
#: mlforecast's default LightGBM (peers.md's baseline): a third of the trees at twice the rate
CHEAP = {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31}
CONFIGS = {"sn": ("seasonal_naive", {}), "naive": ("naive", {}),
           "lgbm": ("lgbm_lags", {"transform": "none", **LGBM}), "lgbm_diff": ("lgbm_lags", {"transform": "diff", **LGBM}),
           "lin_diff": ("linear_lags", {"transform": "diff", "alpha": 1.0}),
           "lin": ("linear_lags", {"transform": "none", "alpha": 1.0}),
           "lgbm100": ("lgbm_lags", {"transform": "none", **CHEAP}),
           "lgbm100_diff": ("lgbm_lags", {"transform": "diff", **CHEAP})}
#: A trial's cost relative to the portfolio's LightGBM (fit + predict of one nyc_energy window, the models one
#: after another in one process, alternating, median of 3, under load 13): wall seconds of the collection
#: runs above are not comparable across rows or columns on a loaded machine, so "equal seconds" uses these.
COST = {"sn": 0.0, "naive": 0.0, "lgbm": 1.0, "lgbm_diff": 1.0, "lin_diff": 0.43, "lin": 0.43,
        "lgbm100": 0.53, "lgbm100_diff": 0.53}
#: each variant's first six trials, in order (seasonal naive only where there is a season)
VARIANTS = {"portfolio": ("sn", "naive", "lgbm", "lgbm_diff", "lin_diff", "lin"),
            "linear first": ("sn", "naive", "lgbm", "lin_diff", "lin", "lgbm_diff"),
            "cheap LightGBM": ("sn", "naive", "lgbm100", "lgbm100_diff", "lin_diff", "lin"),
            "cheap first LightGBM only": ("sn", "naive", "lgbm100", "lgbm_diff", "lin_diff", "lin")}


def unseen_sets() -> dict[str, tuple[pd.DataFrame, int]]:
    """Long hourly / daily series that shaped no forecasting choice: {name: (frame id/ds/y[/exogenous], h)}."""
    from vega_datasets import local_data
    out = {}
    for name in ("seattle_temps", "sf_temps"):
        d = local_data(name)
        out[name] = (pd.DataFrame({"id": name, "ds": d["date"], "y": d["temp"]}).tail(HOURLY_POINTS), 48)
    w = local_data("seattle_weather")
    out["seattle_weather"] = (pd.DataFrame({"id": "seattle", "ds": w["date"], "y": w["temp_max"],
                                            "precipitation": w["precipitation"], "wind": w["wind"]}), 14)
    shared = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
    b = pd.read_csv(shared / "bike_sharing_hourly.csv")
    ds = pd.to_datetime(b["dteday"]) + pd.to_timedelta(b["hr"], unit="h")
    exo = ["temp", "atemp", "hum", "windspeed", "weathersit", "holiday", "workingday"]
    out["bike_sharing_hourly"] = (pd.DataFrame({"id": "bikes", "ds": ds, "y": b["cnt"], **{c: b[c] for c in exo}})
                                  .tail(HOURLY_POINTS), 48)
    return out


def collect(name: str, frame: pd.DataFrame, h: int, jobs: int) -> dict:
    """{"info", "frames": {config key: scored frame or None}, "seconds": {key: s}}; cached per set, grown
    by the configurations an earlier run lacked."""
    target = CACHE / f"order-{name}.joblib"
    cached = joblib.load(target) if target.exists() else {}
    if "trials" in cached:  # the first run's layout: a list in portfolio order
        keys = {json.dumps(v, sort_keys=True): k for k, v in CONFIGS.items()}
        by = {keys[json.dumps([f, p], sort_keys=True)]: i for i, (f, p) in enumerate(cached["trials"])
              if json.dumps([f, p], sort_keys=True) in keys}   # a set without a season had AutoTheta sixth
        cached = {"info": cached["info"], "frames": {k: cached["frames"][i] for k, i in by.items()},
                  "seconds": {k: cached["seconds"][i] for k, i in by.items()}}
    data, _, info = build(frame, h)
    missing = [k for k in CONFIGS if k not in cached.get("frames", {}) and (k != "sn" or info["season"] > 1)]
    if missing:
        from joblib import Parallel, delayed
        got = Parallel(n_jobs=jobs)(delayed(_one)(data, *CONFIGS[k]) for k in missing)
        cached = {"info": info, "frames": {**cached.get("frames", {}), **{k: g[0] for k, g in zip(missing, got)}},
                  "seconds": {**cached.get("seconds", {}), **{k: round(g[1], 1) for k, g in zip(missing, got)}}}
        CACHE.mkdir(parents=True, exist_ok=True)
        joblib.dump(cached, target)
    return cached


def replay(cached: dict) -> dict:
    """MASE on the outer windows of the choice over each variant's first k trials, k = 3..6."""
    info = cached["info"]
    code = {k: i for i, k in enumerate(CONFIGS)}   # the choice rule takes trial ids (integers)
    frames = {code[k]: f.reset_index(drop=True) for k, f in cached["frames"].items() if f is not None}
    fams = {code[k]: CONFIGS[k][0] for k in cached["frames"]}
    name = dict(enumerate(CONFIGS))
    n, more = info["n_inner"], info["n_more"]
    out = {}
    for label, order in VARIANTS.items():
        order = [k for k in order if k != "sn" or info["season"] > 1]
        for size in range(3, len(order) + 1):
            ids = [code[k] for k in order[:size] if code[k] in frames]
            values, picks = [], []
            for j in range(OUTER):
                fold = more + j
                inner = {i: frames[i][(frames[i]["fold"] >= fold - n) & (frames[i]["fold"] < fold)]
                         .reset_index(drop=True) for i in ids}
                weights = choice.choose(inner, fams, "mase", False, choice.DEFAULT)
                outer = choice.blend({i: frames[i][frames[i]["fold"] == fold].reset_index(drop=True)
                                      for i in weights}, weights)
                values.append(choice._value(outer, "mase"))
                picks.append("+".join(name[i] for i in weights))
            out[f"{label}|{size}"] = {"mase": float(np.mean(values)), "picks": picks,
                                      "cost": float(sum(COST[name[i]] for i in ids))}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    sets = unseen_sets() | shared_sets()
    if args.only:
        sets = {k: sets[k] for k in args.only.split(",") if k in sets}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    results = []
    for name, (frame, h) in sets.items():
        load = round(os.getloadavg()[0], 1)
        cached = collect(name, frame, h, args.jobs)
        row = {"dataset": name, "h": h, "n_inner": cached["info"]["n_inner"], "load_before": load,
               "trial_seconds": cached["seconds"], **replay(cached)}
        results.append(row)
        print(name, {k: round(v["mase"], 3) for k, v in row.items() if isinstance(v, dict) and "mase" in v},
              flush=True)
        save(stamp, results)
    return 0


def _at(row: dict, variant: str, size: int) -> dict:
    """The variant's result on its first ``size`` trials (its last prefix when it has fewer)."""
    sizes = [int(k.split("|")[1]) for k in row if k.startswith(variant + "|")]
    return row[f"{variant}|{min(size, max(sizes))}"]


def _equal_seconds(row: dict, variant: str, size: int) -> dict:
    """The variant's longest prefix that costs (``COST``) no more than the portfolio's first ``size`` trials."""
    limit = _at(row, "portfolio", size)["cost"]
    fits = [v for k, v in row.items() if k.startswith(variant + "|") and v["cost"] <= limit + 1e-9]
    return max(fits, key=lambda v: v["cost"]) if fits else _at(row, variant, 3)


def save(stamp: str, results: list[dict]) -> None:
    out = REPO / "bench" / "results" / f"forecast-order-{stamp}"
    lines = ["| dataset | h | inner windows | portfolio k=4 / 5 / 6 | linear first k=4 / 5 | cheap LightGBM k=4 / 5 / 6 | "
             "cheap LightGBM at the portfolio's cost of k=4 | cheap first LightGBM only k=4 / 5 / 6 | seconds: lgbm, lgbm_diff, lin_diff, lin, lgbm100, "
             "lgbm100_diff (load) |", "|---|---|---|---|---|---|---|---|---|"]
    tally = {label: [0, 0, 0] for label in ("linear first k=4", "linear first k=5", "cheap k=4", "cheap k=5",
                                             "cheap k=6", "cheap at equal cost (k=4)", "cheap first only k=4",
                                             "cheap first only k=6")}

    def count(label: str, base: float, new: float) -> None:
        tally[label][0 if new < base * 0.995 else 1 if new > base * 1.005 else 2] += 1

    for r in results:
        p = [_at(r, "portfolio", k)["mase"] for k in (4, 5, 6)]
        lf = [_at(r, "linear first", k)["mase"] for k in (4, 5)]
        ch = [_at(r, "cheap LightGBM", k)["mase"] for k in (4, 5, 6)]
        eq = _equal_seconds(r, "cheap LightGBM", 4)["mase"]
        for k, a, b in zip((4, 5), p, lf):
            count(f"linear first k={k}", a, b)
        for k, a, b in zip((4, 5, 6), p, ch):
            count(f"cheap k={k}", a, b)
        count("cheap at equal cost (k=4)", p[0], eq)
        cf = [_at(r, "cheap first LightGBM only", k)["mase"] for k in (4, 5, 6)]
        count("cheap first only k=4", p[0], cf[0])
        count("cheap first only k=6", p[2], cf[2])
        secs = ", ".join(f"{r['trial_seconds'].get(k, float('nan')):g}"
                         for k in ("lgbm", "lgbm_diff", "lin_diff", "lin", "lgbm100", "lgbm100_diff"))
        lines.append(f"| {r['dataset']} | {r['h']} | {r['n_inner']} | {' / '.join(f'{v:.3f}' for v in p)} | "
                     f"{' / '.join(f'{v:.3f}' for v in lf)} | {' / '.join(f'{v:.3f}' for v in ch)} | {eq:.3f} | {' / '.join(f'{v:.3f}' for v in cf)} | "
                     f"{secs} ({r['load_before']}) |")
    lines.append("")
    for label, (win, loss, tie) in tally.items():
        lines.append(f"- {label} against the portfolio (MASE, a tie within 0.5 %): {win} wins, {loss} losses, {tie} ties.")
    header = ("# Portfolio order and LightGBM cost under a short budget: the choice over the first k trials\n\n"
              "Command: `python bench/replay_order.py`; MASE on the 3 outer windows (engine's scale), choice.DEFAULT "
              "over the engine's inner windows before each. k counts trials (seasonal naive only where there is a "
              "season: a set without one has 5). Seconds are one trial on all N + 3 windows, under the load shown "
              "(2 cores, other jobs running), not comparable across columns; equal cost uses ``COST`` (measured in one "
              "process).\n\n")
    out.with_suffix(".md").write_text(header + "\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
