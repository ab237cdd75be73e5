"""The start rule for a family never measured, old (expected 0 s) against new (the finished trials' seconds per
unit of relative cost), on short timed searches: trials killed by the per-trial limit, trials finished, the
best validation score and fit seconds. Runs alternate old/new in one process; sets that did not shape the rule
(bank_marketing did). Under load, say so: the numbers are counts and scores, not speeds.

    python bench/trial_cap_rule.py [BUDGET] [REPEATS]   # writes bench/results/trial-cap-<stamp>.md/.json
"""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from automl_core import AutoML  # noqa: E402
from automl_core.search import loop  # noqa: E402

DATA = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
SETS = [("islp_default.csv", "default"), ("wine_quality_white.csv", "quality"), ("german_credit.csv", "class")]
NEW = loop.expected_seconds


def _old(measured, family, finished, relative_cost):  # the rule before: an unmeasured family costs 0 s
    return measured or 0.0


def run(name: str, target: str, budget: float, rule) -> dict:
    loop.expected_seconds = rule
    df = pd.read_csv(DATA / name)
    start = time.perf_counter()
    automl = AutoML(time_budget=budget, seed=0).fit(df, target=target)
    wall = time.perf_counter() - start
    trials = [t for t in automl.trials_ if t.family not in ("ensemble", "stacking")]
    return {"set": name, "rule": "new" if rule is NEW else "old", "load": os.getloadavg()[0],
            "timeouts": sum(t.status == "timeout" for t in trials), "ok": sum(t.status == "ok" for t in trials),
            "best": automl.best_trial_.score, "wall_seconds": round(wall, 1)}


def main() -> None:
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rows = []
    for r in range(repeats):
        for name, target in SETS:
            for rule in ((_old, NEW) if r % 2 == 0 else (NEW, _old)):
                rows.append(run(name, target, budget, rule))
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["set", "rule"]).agg(runs=("ok", "size"), timeouts=("timeouts", "sum"), ok=("ok", "sum"),
                                                 best_median=("best", "median"), load=("load", "median")).reset_index()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"trial-cap-{stamp}"
    out.with_suffix(".json").write_text(json.dumps({"budget": budget, "runs": rows}, indent=1))
    out.with_suffix(".md").write_text(f"# Unmeasured-family start rule, {budget:g} s budget, {repeats} repeats\n\n"
                                      + summary.to_markdown(index=False) + "\n\nAll runs:\n\n"
                                      + frame.to_markdown(index=False) + "\n")
    print(summary.to_string())


if __name__ == "__main__":
    main()
