"""Every final model one search could save: per trial (and Caruana ensemble row), the test score of its
refit on all training rows and of its bag of fold models (search/bag.py), marked by whether it early-stopped
on each fold's validation rows (bench/results/tiny-sets-20261207.md).

    python bench/finals_per_trial.py wine,digits --trials 12
    python bench/finals_per_trial.py iris,r_car_Greene --trials 6 --out    # also write bench/results/

Sets by stem: the shared tables, peers.md's package-bundled sets, the wide collection (bench/collection.py).
Same 75/25 split and test metrics as bench/bench_engine.py; a fixed trial count and seed, so the scores do
not depend on the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def per_trial(row: dict, trials: int) -> list[dict]:
    from automl_core.models.families import FAMILIES
    from automl_core.search.finalize import FinalChoice, fit_final, label_order
    from same_search import METRIC_OF, _test_score, search_keeping_folds
    task = row["task"]
    a, X_test, y_test, classes = search_keeping_folds(row, trials)  # every trial's refit and bag come from it
    bagger, p = a._bagger, a.prepared_
    y_oof = a._y_codes[np.concatenate([v for _, v in a.validation_.splits])]
    by_id = {t.trial_id: t for t in a.trials_}
    out = []
    for t in (t for t in a.trials_ if t.status == "ok" and t.family != "stacking"):
        members = [by_id[m] for m in t.params.get("members", [])]
        ids = [m.trial_id for m in members] or [t.trial_id]
        if bagger is None or not bagger.available(*ids):
            continue
        choice = FinalChoice(t, members, [float(w) for w in t.params.get("weights", [])])
        model, _ = fit_final(a._refit_data, choice, a.search_.oof, y_oof, label_order(p.classes, p.y), 2, 0,
                             best=a.search_.best, cost=a._cost, mode="refit")
        stopped = any(FAMILIES[m.family].early_stopping is not None for m in (members or [t]) if m.family in FAMILIES)
        refit = _test_score(model, X_test, y_test, task, classes)
        bag = _test_score(bagger.pipeline(ids, choice.weights or None), X_test, y_test, task, classes)
        better = (bag - refit) if METRIC_OF[task] != "roc_auc" else (refit - bag)  # > 0: the refit is better
        out.append({"set": Path(row["file"]).stem, "metric": METRIC_OF[task], "folds": bagger.k,
                    "fold_rows": len(bagger.y) // bagger.k, "trial": t.trial_id, "family": t.family, "early_stopped": stopped,
                    "rounds": t.params.get("n_estimators"), "validation": t.score, "refit": refit, "bag": bag,
                    "refit_better_by": better})
        print(json.dumps(out[-1], default=float), flush=True)
    return out


def main() -> None:
    from bench_engine import datasets, save_per_trial
    from same_search import collection_rows
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", help="comma-separated dataset stems")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--out", action="store_true", help="write bench/results/finals-per-trial-*.md/.json")
    args = parser.parse_args()
    wanted = args.sets.split(",")
    warnings.filterwarnings("ignore")
    rows = [r for r in datasets(bundled=True) if Path(r["file"]).stem in wanted]
    rows += collection_rows([w for w in wanted if w not in {Path(r["file"]).stem for r in rows}])
    table = pd.DataFrame([rec for row in rows for rec in per_trial(row, args.trials)])
    lines = []
    for stopped in (True, False):
        for small in (True, False):
            part = table[(table["early_stopped"] == stopped) & ((table["fold_rows"] < 50) == small)]
            if len(part):
                lines.append(f"{'early-stopped' if stopped else 'not early-stopped'}, folds of "
                             f"{'< 50' if small else '>= 50'} rows: refit better on {int((part['refit_better_by'] > 0).sum())}"
                             f", bag better on {int((part['refit_better_by'] < 0).sum())}, tied on "
                             f"{int((part['refit_better_by'] == 0).sum())} of {len(part)} trials "
                             f"({part['set'].nunique()} sets)")
    lines.append(f"{args.trials} trials a set, seed 0; load average at the end {os.getloadavg()[0]:.1f} "
                 "(scores do not depend on it)")
    print(table.round(5).to_string(index=False))
    print("\n".join(lines))
    if args.out:
        save_per_trial("finals-per-trial", "Refit vs bag per trial", wanted, args.trials, lines, table)


if __name__ == "__main__":
    main()
