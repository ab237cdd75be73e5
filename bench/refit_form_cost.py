"""Issue #20: what the final refit of a searching statistical family costs with and without the form its
trial found (families.SEARCHED, FOUND_SHARE): the Auto* search against one fit of the found form, on the
latest rows of a shared series, alternating in one process, median of ``--repeats``.

    python bench/refit_form_cost.py [--set co2_mauna_loa_weekly] [--repeats 3]

Results go to bench/results/refit-form-cost-<stamp>.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
SETS = {"co2_mauna_loa_weekly": ("co2_mauna_loa_weekly.csv", "date", "co2", 52),
        "fred_retail": ("fred_retail_S4248SM144SCEN.csv", "observation_date", "S4248SM144SCEN", 12),
        "monthly_sunspots": ("monthly_sunspots.csv", "Month", "Sunspots", 12)}


def main() -> int:
    from automl_core.forecast import families
    from automl_core.forecast.features import FeaturePlan
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="co2_mauna_loa_weekly", choices=sorted(SETS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    file, time_col, target, m = SETS[args.set]
    raw = pd.read_csv(SHARED / file)
    y = pd.to_numeric(raw[target], errors="coerce").ffill().to_numpy(float)
    panel = pd.DataFrame({"unique_id": "s", "ds": pd.RangeIndex(len(y)), "y": y})
    problem = families.Problem("W" if m == 52 else "MS", m, 8, FeaturePlan((), (), (), None, 8), (), (), ())
    panel["ds"] = pd.date_range("2000-01-02", periods=len(y), freq=problem.freq)
    rows, load = [], os.getloadavg()[0]
    warnings.simplefilter("ignore")
    for family in families.SEARCHED:
        searched, once, form = [], [], None
        for _ in range(args.repeats):  # alternating: the search, then one fit of the form it found
            start = time.perf_counter()
            fitted = families.fit(family, {}, panel, problem)
            searched.append(time.perf_counter() - start)
            form = families.found_form(family, fitted.fitted_[0, 0])
            start = time.perf_counter()
            families.fit(family, {"found": form}, panel, problem)
            once.append(time.perf_counter() - start)
        rows.append({"family": family, "rows": int(len(families._stats_input(family, panel, m))), "form": form,
                     "search_s": round(float(np.median(searched)), 3), "found_form_s": round(float(np.median(once)), 3),
                     "share": round(float(np.median(once) / np.median(searched)), 3)})
        print(rows[-1], flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"refit-form-cost-{args.set}-{stamp}"
    lines = [f"# Refit with the found form vs the search, {args.set} (m={m}), {stamp}", "",
             f"Command: `python bench/refit_form_cost.py --set {args.set} --repeats {args.repeats}`; one process, "
             f"alternating, median of {args.repeats}; under load {load:.1f} (1-min average at the start, 2 cores, "
             f"other jobs running: ratios, not quiet seconds). families.FOUND_SHARE = {families.FOUND_SHARE}.", "",
             "| family | rows fit | form found | search s | found form s | share |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['family']} | {r['rows']} | {r['form']} | {r['search_s']} | {r['found_form_s']} | {r['share']} |"
              for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"set": args.set, "load": load, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
