"""The choice rules of ``replay_choice.py``, judged on the outer windows of each cached set.

Each rule sees, for outer window j, the N windows before it (N = the engine's default count; "more
windows" sees up to twice as many) and returns weights over trials; its score is the MASE of that
blend on outer window j, averaged over the three outer windows as peers.md does. Rules are ranked per
set (1 = lowest MASE, ties share the mean rank) and kept by average rank over sets.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from automl_core.forecast import choice  # noqa: E402
from automl_core.forecast.accuracy import score  # noqa: E402

SHARED = ("nyc_energy", "bike_share_daily", "oj_sales", "fred_retail", "co2_mauna_loa_weekly",
          "daily_min_temperatures", "monthly_sunspots", "healthexp", "stocks")
OUTER = 3
R = choice.Rule
BASE = "current, weights shrunk fully to equal"   # the engine's rule before issue #20's margin
RULES = {
    "current (best single vs Caruana top 6)": (R(), "default"),
    "best single": (R(top=1), "default"),
    "comb mean of ETS/Theta/ARIMA (always)": (None, "comb_mean"),
    "comb median of ETS/Theta/ARIMA (always)": (None, "comb_median"),
    "current + comb as a candidate": (R(comb=True), "default"),
    "current, weights shrunk 50 % to equal": (R(shrink=0.5), "default"),
    "current, latest half of the windows": (R(recent=0.5), "default"),
    "current, more windows (up to 2x)": (R(), "more"),
    "current + SN guard 5 % (later windows)": (R(guard=0.05), "default"),
    "current + SN guard 10 %": (R(guard=0.10), "default"),
    "current + SN guard 20 %": (R(guard=0.20), "default"),
    "current + short low-freq prior 10 %": (R(prior=0.10), "default"),
    "current + short low-freq prior 20 %": (R(prior=0.20), "default"),
    "current + short low-freq prior 30 %": (R(prior=0.30), "default"),
    "comb candidate + short low-freq prior 20 %": (R(comb=True, prior=0.20), "default"),
    "comb candidate + shrink 50 % + prior 20 %": (R(comb=True, shrink=0.5, prior=0.20), "default"),
    "current, shrink 50 % + more windows": (R(shrink=0.5), "more"),
    "current, weights shrunk 25 % to equal": (R(shrink=0.25), "default"),
    "current, weights shrunk fully to equal": (R(shrink=1.0), "default"),
    "current, short low-freq: half simple model": (R(), "half_simple"),
    "simple model alone (naive / seasonal naive)": (None, "simple"),
    # issue #20, the statistical anchor (choice.Rule.anchor): on top of the engine's DEFAULT (equal weights)
    "default + comb anchor 0 %": (R(shrink=1.0, anchor=0.0), "default"),
    "default + comb anchor 5 %": (R(shrink=1.0, anchor=0.05), "default"),
    "default + comb anchor 10 %": (R(shrink=1.0, anchor=0.10), "default"),
    "default + comb anchor 20 %": (R(shrink=1.0, anchor=0.20), "default"),
    "default + comb anchor 5 %, blended": (R(shrink=1.0, anchor=0.05, anchor_blend=True), "default"),
    "default + comb anchor 10 %, blended": (R(shrink=1.0, anchor=0.10, anchor_blend=True), "default"),
    "default + comb anchor 20 %, blended": (R(shrink=1.0, anchor=0.20, anchor_blend=True), "default"),
    "default + comb anchor by test (sqrt(2 ln n) SE)": (R(shrink=1.0, anchor_test=True), "default"),
    "default + comb anchor by test, blended": (R(shrink=1.0, anchor_test=True, anchor_blend=True), "default"),
    "default, pool best per family": (R(shrink=1.0, per_family=True), "default"),
    "default, per family + comb anchor 10 %": (R(shrink=1.0, per_family=True, anchor=0.10), "default"),
    "default, per family + anchor 10 %, blended": (R(shrink=1.0, per_family=True, anchor=0.10, anchor_blend=True),
                                                  "default"),
    # issue #20, a margin that grows with the trials compared (choice.Rule.margin / family_shrink); also tried
    # at 12 trials and dropped (worse on both groups): margin 2 blended, margin 1 simplest, family shrink 25 %
    "default + margin 0.25 sqrt(2 ln n) SE, blend tied families": (R(shrink=1.0, margin=0.25), "default"),
    "default + margin 0.5 sqrt(2 ln n) SE, blend tied families": (R(shrink=1.0, margin=0.5), "default"),
    "default + margin 1 sqrt(2 ln n) SE, blend tied families": (R(shrink=1.0, margin=1.0), "default"),
    "default + margin 0.5, simplest tied": (R(shrink=1.0, margin=0.5, margin_mode="simple"), "default"),
    "default + family shrink 50 %": (R(shrink=1.0, family_shrink=0.5), "default"),
}


def _outer(frame: pd.DataFrame, fold: int) -> float:
    value = choice._value(frame[frame["fold"] == fold], "mase")
    return np.nan if value is None else value


def replay(cached: dict) -> dict[str, float]:
    info, trials = cached["info"], cached["trials"]
    ok = {i: f.reset_index(drop=True) for i, f in enumerate(cached["frames"]) if f is not None}
    codes = {uid: k for k, uid in enumerate(pd.unique(next(iter(ok.values()))["unique_id"]))}
    ok = {i: f.assign(unique_id=f["unique_id"].map(codes).to_numpy(int)) for i, f in ok.items()}  # fast groupby
    fams = {i: trials[i][0] for i in ok}
    n, more = info["n_inner"], info["n_more"]
    lengths = pd.Series([info["median_length"]])
    short = choice.short_low_frequency(info["freq"], lengths)
    out: dict[str, list[float]] = {name: [] for name in RULES}
    out["oracle (best single trial on the outer window)"] = []
    for j in range(OUTER):
        fold = more + j
        windows = {}
        for kind in ("default", "more"):
            first = fold - (more if kind == "more" else n)
            got = {i: f[(f["fold"] >= first) & (f["fold"] < fold)].reset_index(drop=True) for i, f in ok.items()}
            windows[kind] = {i: f for i, f in got.items() if len(f)}
        for name, (rule, kind) in RULES.items():
            inner = windows["more" if kind == "more" else "default"]
            if kind in ("default", "more", "half_simple"):
                w = choice.choose(inner, fams, "mase", False, rule, short=short)
                simple = [i for i in inner if fams[i] in choice.SIMPLE]
                if kind == "half_simple" and short and simple:
                    best = min(simple, key=lambda i: choice._value(inner[i], "mase"))
                    w = {i: v / 2 for i, v in w.items()}
                    w[best] = w.get(best, 0) + 0.5
            elif kind == "comb_mean" or kind == "comb_median":
                ids = [i for i in inner if fams[i] in choice.COMB]
                if kind == "comb_mean":
                    w = {i: 1 / len(ids) for i in ids}
                else:
                    w = None
                    med = ok[ids[0]].copy()
                    med["yhat"] = np.median(np.stack([ok[i]["yhat"].to_numpy(float) for i in ids]), axis=0)
                    out[name].append(_outer(med, fold))
                    continue
            else:  # simple: the better simple model on the inner windows
                simple = [i for i in inner if fams[i] in choice.SIMPLE]
                best = min(simple, key=lambda i: choice._value(inner[i], "mase"))
                w = {best: 1.0}
            out[name].append(_outer(choice.blend(ok, w), fold))
        out["oracle (best single trial on the outer window)"].append(min(_outer(f, fold) for f in ok.values()))
    return {name: float(np.mean(v)) for name, v in out.items()} | {"_short": short}


def _trials(cache: Path, min_trials: int = 0) -> str:
    counts = sorted({n for p in cache.glob("*.joblib") if (n := len(joblib.load(p)["trials"])) >= min_trials})
    return "/".join(map(str, counts))


def report(cache: Path, match: list[str] | None = None, min_trials: int = 0) -> None:
    """``match``: only the rules whose name holds one of these strings (a quicker replay); ``min_trials``: only
    the sets cached with at least this many trials (a cache still growing)."""
    global RULES
    if match:
        RULES = {n: r for n, r in RULES.items() if n == BASE or any(m in n for m in match)}
    results, infos = {}, {}
    for path in sorted(cache.glob("*.joblib")):
        cached = joblib.load(path)
        if len(cached["trials"]) < min_trials:
            continue
        results[path.stem] = replay(cached)
        infos[path.stem] = cached["info"] | {"errors": [e for e in cached["errors"] if e]}
    names = list(next(iter(results.values())))
    names.remove("_short")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    lines = [f"# Forecast choice rules, replayed offline ({stamp})", "",
             f"`python bench/replay_choice.py collect` then `rules` (cache {cache.name}): {_trials(cache, min_trials)} trials per set (the portfolio, then seeded "
             "LightGBM samples), each scored once on N inner + 3 outer windows of h; MASE on the outer windows "
             "(peers.md protocol), engine's scale. Counted in trials, not seconds: the machine was shared by "
             "several helpers (timings taken under load, not compared). Average rank: rank of each rule among "
             "the rules (not the oracle) on each set, 1 = best, averaged.", ""]
    groups = {"shared nine": [s for s in SHARED if s in results],
              "independent (statsmodels, short_sets.py)": [s for s in results if s not in SHARED]}
    summary = {}
    for title, sets in groups.items():
        if not sets:
            continue
        table = pd.DataFrame({s: {n: results[s][n] for n in names} for s in sets})
        ranks = table.drop(index="oracle (best single trial on the outer window)").rank(axis=0, method="average")
        gm = np.exp(np.log(table).mean(axis=1))
        summary[title] = {"avg_rank": ranks.mean(axis=1).round(2).to_dict(), "geo_mean": gm.round(4).to_dict()}
        base = table.loc[BASE] if BASE in table.index else None
        lines += [f"## {title}", "", "| rule | " + " | ".join(
            f"{s}{' (short low-freq)' if results[s]['_short'] else ''}" for s in sets)
            + " | geo mean | avg rank | won/lost/tied vs equal-weight Caruana |", "|---" * (len(sets) + 4) + "|"]
        for n in names:
            rank = ranks.mean(axis=1).get(n, np.nan)
            d = table.loc[n] - base if base is not None else pd.Series(dtype=float)
            wlt = f"{(d < -1e-9).sum()}/{(d > 1e-9).sum()}/{(d.abs() <= 1e-9).sum()}"
            lines.append(f"| {n} | " + " | ".join(f"{table.loc[n, s]:.3f}" for s in sets)
                         + f" | {gm[n]:.4f} | {rank:.2f} | {wlt} |")
        lines.append("")
    lines += ["## Sets", "", "| set | info |", "|---|---|"]
    lines += [f"| {s} | {json.dumps(i)} |" for s, i in infos.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "bench" / "results" / f"choice-{stamp}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"results": results, "sets": infos, "summary": summary},
                                                    indent=2, default=str))
    print(f"recorded in {out.relative_to(REPO)}.md/.json")
