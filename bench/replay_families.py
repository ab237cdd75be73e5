"""Does an opt-in family earn its place in the default forecasting portfolio? Replayed offline.

``replay_choice.py collect`` scores every trial of a 12-trial search (the default portfolio, then the
seeded LightGBM samples) once on N inner + 3 outer windows of each set and caches the forecasts. This
script scores each opt-in family (Prophet, the neural MLP) on the same windows with the engine's code
(``forecast.windows.evaluate``), then, for every outer window, runs the engine's choice rule
(``choice.DEFAULT`` over the N windows before it) with and without the family's trial, and reports the
MASE of the kept forecast on the outer window (the peers.md protocol), the family's own MASE and
seconds. A family goes into the default portfolio only if adding it improves the average rank over sets.

    python bench/replay_choice.py collect --sets all          # once (cache in CHOICE_CACHE)
    python bench/replay_families.py [--families prophet,mlp_window] [--only a,b]

Results: bench/results/forecast-families-replay-<stamp>.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from replay_choice import CACHE, OUTER, build, independent_sets, shared_sets  # noqa: E402
from replay_rules import SHARED  # noqa: E402

from automl_core.forecast import choice, families  # noqa: E402
from automl_core.forecast.windows import evaluate  # noqa: E402

OWN = Path(os.environ.get("FAMILY_CACHE", Path(tempfile.gettempdir()) / "family-cache"))
KEYS = ["unique_id", "fold", "step"]


def family_frames(name: str, frame: pd.DataFrame, h: int, names: list[str], base: pd.DataFrame) -> dict:
    """{family: (scored frame aligned to the cached trials' rows or None, seconds, error)} (cached)."""
    OWN.mkdir(parents=True, exist_ok=True)
    target = OWN / f"{name}.joblib"
    got = joblib.load(target) if target.exists() else {}
    missing = [f for f in names if f not in got]
    if missing:
        data, _, _ = build(frame, h)
        for family in missing:
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scored, _, _ = evaluate(data, family, dict(families.OPT_IN[family]))
                aligned = base[KEYS].merge(scored[[*KEYS, "yhat"]], on=KEYS, how="left")
                if aligned["yhat"].isna().any():
                    raise ValueError(f"{int(aligned['yhat'].isna().sum())} rows not aligned with the cached trials")
                got[family] = (base.assign(yhat=aligned["yhat"].to_numpy()), time.perf_counter() - start, "")
            except Exception as exc:  # noqa: BLE001 -- a failing family is reported, as a failed trial would be
                got[family] = (None, time.perf_counter() - start, str(exc)[:200])
            print(f"  {name} {family}: {got[family][1]:.1f} s {got[family][2]}", flush=True)
        joblib.dump(got, target)
    return got


def _outer(frame: pd.DataFrame, fold: int) -> float:
    value = choice._value(frame[frame["fold"] == fold], "mase")
    return np.nan if value is None else value


def replay(cached: dict, extra: dict, names: list[str]) -> dict:
    info, trials = cached["info"], cached["trials"]
    ok = {i: f.reset_index(drop=True) for i, f in enumerate(cached["frames"]) if f is not None}
    fams = {i: trials[i][0] for i in ok}
    for k, family in enumerate(names):
        if extra[family][0] is not None:
            ok[100 + k], fams[100 + k] = extra[family][0].reset_index(drop=True), family
    codes = {uid: c for c, uid in enumerate(pd.unique(next(iter(ok.values()))["unique_id"]))}
    ok = {i: f.assign(unique_id=f["unique_id"].map(codes).to_numpy(int)) for i, f in ok.items()}
    short = choice.short_low_frequency(info["freq"], pd.Series([info["median_length"]]))
    n, more = info["n_inner"], info["n_more"]
    base = [i for i in ok if i < 100]
    # a family whose trial failed adds nothing (the engine drops a failed trial)
    configs = {"default portfolio": base, **{f"+ {f}": [*base, *([100 + k] if 100 + k in ok else [])]
                                             for k, f in enumerate(names)}}
    if len(names) > 1:
        configs["+ all"] = list(ok)
    if "prophet" in names:  # Prophet models seasons and a trend; on yearly data (season 1) it is a trend alone
        k = names.index("prophet")
        configs["+ prophet where season > 1"] = [*base, *([100 + k] if 100 + k in ok and info["season"] > 1 else [])]
    out: dict[str, list[float]] = {c: [] for c in configs}
    alone: dict[str, list[float]] = {f: [] for f in names}
    picked: dict[str, list[str]] = {c: [] for c in configs}
    for j in range(OUTER):
        fold = more + j
        inner = {i: f[(f["fold"] >= fold - n) & (f["fold"] < fold)].reset_index(drop=True) for i, f in ok.items()}
        for c, ids in configs.items():
            frames = {i: inner[i] for i in ids if len(inner[i])}
            w = choice.choose(frames, fams, "mase", False, choice.DEFAULT, short=short)
            out[c].append(_outer(choice.blend(ok, w), fold))
            picked[c].append("+".join(sorted({fams[i] for i in w})))
        for k, family in enumerate(names):
            alone[family].append(_outer(ok[100 + k], fold) if 100 + k in ok else np.nan)
    return {"mase": {c: float(np.mean(v)) for c, v in out.items()},
            "alone": {f: float(np.mean(v)) for f, v in alone.items()},
            "seconds": {f: round(extra[f][1], 1) for f in names}, "errors": {f: extra[f][2] for f in names if extra[f][2]},
            "picked": picked}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(families.OPT_IN))
    parser.add_argument("--only")
    args = parser.parse_args()
    names = args.families.split(",")
    sets = independent_sets() | shared_sets()
    results, skipped = {}, {}
    for path in sorted(CACHE.glob("*.joblib")):
        name = path.stem
        if name not in sets or (args.only and name not in args.only.split(",")):
            continue
        cached = joblib.load(path)
        base = next(f for f in cached["frames"] if f is not None).reset_index(drop=True)
        frame, h = sets[name]
        extra = family_frames(name, frame, h, names, base)
        if any("not aligned" in extra[f][2] for f in names):  # the cache's windows are not today's: no comparison
            skipped[name] = "; ".join(extra[f][2] for f in names if extra[f][2])
            continue
        results[name] = replay(cached, extra, names)
        print(name, json.dumps(results[name]["mase"]), json.dumps(results[name]["alone"]), flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    lines = [f"# Opt-in forecasting families: the default portfolio with and without them ({stamp})", "",
             "`python bench/replay_families.py` on the cache of `python bench/replay_choice.py collect`: the 12 "
             "trials of the default portfolio and each opt-in family scored once on N inner + 3 outer windows "
             "of h; for each outer window the engine's choice rule (`choice.DEFAULT`) picks from the N windows "
             "before it, with and without the family. MASE on the outer windows (peers.md protocol, engine's "
             "scale). Counted in trials, not seconds; the seconds (one family's trial over all N + 3 windows) "
             "were taken under load (several engineers shared the two cores).", ""]
    for title, group in (("shared sets", [s for s in results if s in SHARED]),
                         ("independent (statsmodels)", [s for s in results if s not in SHARED])):
        if not group:
            continue
        table = pd.DataFrame({s: results[s]["mase"] for s in group})
        ranks = table.rank(axis=0, method="average")
        # each configuration against the default portfolio alone: rank of the two (1 = better), and MASE ratio
        pair = {c: pd.concat([table.loc["default portfolio"], table.loc[c]], axis=1).rank(axis=1).iloc[:, 1].mean()
                for c in table.index}
        ratio = {c: float(np.exp(np.log(table.loc[c] / table.loc["default portfolio"]).mean())) for c in table.index}
        lines += [f"## {title}", "", "| kept forecast | " + " | ".join(group)
                  + " | avg rank (all rows) | avg rank vs default alone | geo-mean MASE / default |",
                  "|---" * (len(group) + 4) + "|"]
        for c in table.index:
            lines.append(f"| {c} | " + " | ".join(f"{table.loc[c, s]:.3f}" for s in group)
                         + f" | {ranks.loc[c].mean():.2f} | {pair[c]:.2f} | {ratio[c]:.3f} |")
        for f in names:
            lines.append(f"| {f} alone | " + " | ".join(f"{results[s]['alone'][f]:.3f}" for s in group) + " | | | |")
            lines.append(f"| {f} trial seconds | " + " | ".join(f"{results[s]['seconds'][f]:.1f}" for s in group)
                         + " | | | |")
        lines.append("")
    if skipped:
        lines += ["Left out (the cached trials' windows differ from today's code): "
                  + "; ".join(f"{k} ({v})" for k, v in skipped.items()), ""]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "bench" / "results" / f"forecast-families-replay-{stamp}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    print(f"recorded in {out.relative_to(REPO)}.md/.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
