"""AutoETS / AutoTheta on capped histories: MASE and seconds before vs after a row cap, on the 3 outer
windows of h of ``replay_choice.build`` (peers.md's), for long-season series (the inner windows are left
out: a fit costs minutes on a shared 2-core machine, and a search fits once per window).

    python bench/stats_rows.py [--sets co2_mauna_loa_weekly,seattle_temps] [--caps 0,1000,520] [--repeats 2]

Cap 0 is the current rule (``families.STATS_MAX_ROWS``). Configurations alternate within one process and
the median of the repeats is kept; seconds are compared as ratios to cap 0 (the machine is shared).
Writes bench/results/stats-rows-<stamp>.md/.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from automl_core.forecast import choice, families  # noqa: E402
from automl_core.forecast.windows import evaluate  # noqa: E402
from replay_choice import OUTER, build, shared_sets  # noqa: E402


def sets(names: list[str]) -> dict:
    from replay_order import unseen_sets
    out = {}
    shared = [n for n in names if n in ("co2_mauna_loa_weekly",)]
    if shared:
        out |= {k: v for k, v in shared_sets().items() if k in shared}
    rest = [n for n in names if n not in out]
    if rest:
        out |= {k: v for k, v in unseen_sets().items() if k in rest}
    return {n: out[n] for n in names if n in out}


def run(data, family: str, cap: int) -> tuple[float, float]:
    """(MASE on the outer windows, seconds) with ETS / Theta rows capped at ``cap``."""
    saved = families.stats_rows
    if cap:
        families.stats_rows = lambda fam, season: cap if fam in ("auto_ets", "auto_theta") else saved(fam, season)
    try:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored, _, _ = evaluate(data, family, {})
        seconds = time.perf_counter() - start
    finally:
        families.stats_rows = saved
    return choice._value(scored, "mase"), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="co2_mauna_loa_weekly,seattle_temps,sf_temps,bike_sharing_hourly")
    parser.add_argument("--caps", default="0,1000,520")
    parser.add_argument("--families", default="auto_ets,auto_theta")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    rows, load = [], []
    for name, (frame, h) in sets(args.sets.split(",")).items():
        data, _, info = build(frame, h)
        data = dataclasses.replace(data, folds=dataclasses.replace(data.folds, n=OUTER))   # the last 3 windows
        for family in args.families.split(","):
            got: dict[int, list] = {c: [] for c in caps}
            for r in range(args.repeats):
                for c in (caps if r % 2 == 0 else caps[::-1]):   # alternate the order between repeats
                    got[c].append(run(data, family, c))
                    load.append(os.getloadavg()[0])
            base = np.median([g[1] for g in got[0]])
            for c in caps:
                outer = got[c][0][0]
                sec = float(np.median([g[1] for g in got[c]]))
                rows.append({"set": name, "season": info["season"], "rows": info["median_length"], "family": family,
                             "cap": c or "current", "outer_mase": round(outer, 4),
                             "seconds": round(sec, 1), "ratio": round(sec / base, 2)})
                print(rows[-1], flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    lines = [f"# AutoETS / AutoTheta row cap ({stamp})", "",
             f"`python bench/stats_rows.py --sets {args.sets} --caps {args.caps} --repeats {args.repeats}`: one trial "
             f"(the {OUTER} outer windows) per configuration, alternating, median seconds; ratio to the "
             f"current rule in the same process; load {min(load):.1f}-{max(load):.1f} (shared machine, not quiet).",
             "", "| set | m | rows | family | cap | outer MASE | s | ratio |", "|---" * 8 + "|"]
    lines += [f"| {r['set']} | {r['season']} | {r['rows']:.0f} | {r['family']} | {r['cap']} | {r['outer_mase']} | "
              f"{r['seconds']} | {r['ratio']} |" for r in rows]
    out = REPO / "bench" / "results" / f"stats-rows-{stamp}"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "load": load}, indent=2))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
