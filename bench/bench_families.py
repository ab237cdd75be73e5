"""One family at a time: is each model family's best trial competitive? (issue 25 item 1)

For every chosen shared set (same 75/25 split and test metrics as bench_engine.py) and family, runs
our search restricted to that family (no ensembles, one core, the same short budget) and records the
best validation score, the test score of the refit model, trials and seconds. Families that are not
in the warm-start portfolio (CatBoost, XGBoost) start from their defaults, so this measures what the
search gets from them before any portfolio is mined for them.

    python bench/bench_families.py --max-trials 4 --families lightgbm,xgboost,catboost \
        --only german_credit,wine_quality_white,islp_default,california_housing
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_engine import METRIC, classes_of, datasets, score, split  # noqa: E402

from automl_core import AutoML  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=40)
    parser.add_argument("--families", default="lightgbm,xgboost,catboost")
    parser.add_argument("--only", default="german_credit,wine_quality_white,islp_default,california_housing")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--max-trials", type=int, help="a fixed trial count instead of the budget: on a shared, "
                        "busy machine seconds measure the neighbours, trials measure the family")
    args = parser.parse_args()
    wanted = args.only.split(",")
    rows = [r for r in datasets() if Path(r["file"]).stem in wanted]
    results = []
    tmp = Path("/tmp") / "bench_families"
    tmp.mkdir(exist_ok=True)
    for row in rows:
        _, _, train, test = split(row, tmp)
        classes = classes_of(train, row["target"], row["task"])
        for family in args.families.split(","):
            start = time.perf_counter()
            automl = AutoML(time_budget=None if args.max_trials else args.budget, max_trials=args.max_trials,
                            allowed_models=(family,), ensembles=False, n_jobs=args.n_jobs,
                            metric=METRIC[row["task"]], seed=0, task=row["task"])
            try:
                automl.fit(train, target=row["target"])
            except Exception as exc:  # noqa: BLE001 -- e.g. no trial finished in the budget: recorded as such
                results.append({"dataset": Path(row["file"]).stem, "family": family, "error": str(exc)[:200],
                                "seconds": round(time.perf_counter() - start, 1)})
                print(json.dumps(results[-1]), flush=True)
                continue
            X = test.drop(columns=row["target"])
            pred = automl.predict_proba(X) if row["task"] != "regression" else automl.predict(X)
            board = automl.leaderboard
            ok = board[board["status"] == "ok"]
            results.append({"dataset": Path(row["file"]).stem, "task": row["task"], "family": family,
                            "metric": METRIC[row["task"]], "validation": float(automl.best_trial_.score),
                            "test": score(row["task"], test[row["target"]].to_numpy(), np.asarray(pred), classes),
                            "trials": int(len(ok)), "failed": int(len(board) - len(ok)),
                            "seconds": round(time.perf_counter() - start, 1),
                            "mean_trial_fit_s": round(float(ok["fit_seconds"].mean()), 2) if len(ok) else None})
            print(json.dumps(results[-1]), flush=True)
    size = f"{args.max_trials}trials" if args.max_trials else f"{int(args.budget)}s"
    out = REPO / "bench" / "results" / f"families-{size}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"budget": None if args.max_trials else args.budget, "max_trials": args.max_trials,
                               "n_jobs": args.n_jobs, "results": results}, indent=1))
    print(out)


if __name__ == "__main__":
    main()
