"""Which round count the refit of an early-stopped boosting trial should use (issue 25, after
bench/results/tiny-sets-20261207.md): per trial, the test score of its refit on all training rows with the
folds' mean round count (the engine's rule), their median, and the mean scaled by the rows the refit sees
more (rounds * k / (k - 1)); every rule refits the same trial of the same search.

    python bench/refit_rounds.py wine,r_MASS_Boston --trials 6
    python bench/refit_rounds.py --summary bench/results/refit-rounds-*.json   # one table, leave-one-set-out

Sets by stem: the shared tables, peers.md's package-bundled sets, the wide collection (bench/collection.py).
Same 75/25 split and test metrics as bench/bench_engine.py; a fixed trial count and seed, so the scores do
not depend on the machine's load. Rounds are read from the kept fold models (each one's best iteration).
"""
from __future__ import annotations

import argparse
import glob
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

NEAR_PERFECT = 0.01  # a loss (1 - ROC AUC, log loss) under this is left out of the robust reading
RULES = {
    "mean": lambda r, k: float(np.mean(r)),
    "median": lambda r, k: float(np.median(r)),
    "mean_scaled": lambda r, k: float(np.mean(r)) * k / (k - 1),
}


def fold_rounds(estimator) -> int:
    """The best round count of one early-stopped fold model, as the family's fit returned it."""
    if hasattr(estimator, "get_best_iteration"):  # CatBoost
        return int(estimator.get_best_iteration()) + 1
    if hasattr(estimator, "best_iteration_"):  # LightGBM
        return int(estimator.best_iteration_ or estimator.n_estimators_)
    return int(estimator.best_iteration) + 1  # XGBoost


def per_trial(row: dict, trials: int) -> list[dict]:
    from automl_core.models.families import FAMILIES
    from automl_core.search.trial import refit
    from same_search import METRIC_OF, _test_score, search_keeping_folds
    task = row["task"]
    a, X_test, y_test, classes = search_keeping_folds(row, trials)  # the fold models carry each fold's best round
    bagger = a._bagger
    out = []
    for t in a.trials_:
        if t.status != "ok" or t.family not in FAMILIES or FAMILIES[t.family].early_stopping is None:
            continue
        if bagger is None or t.trial_id not in bagger.fold_models:
            continue
        rounds = [fold_rounds(steps[-1][1]) for steps in bagger.fold_models[t.trial_id][0]]
        k = len(rounds)
        rec = {"set": Path(row["file"]).stem, "metric": METRIC_OF[task], "folds": k,
               "fold_rows": len(bagger.y) // k, "trial": t.trial_id, "family": t.family,
               "rounds": rounds, "recorded": t.params.get("n_estimators")}
        for name, rule in RULES.items():
            n = max(1, int(round(rule(rounds, k))))
            model = refit(a._refit_data, t.family, {**t.params, "n_estimators": n}, 2, 0)
            rec[f"{name}_rounds"], rec[name] = n, _test_score(model, X_test, y_test, task, classes)
        out.append(rec)
        print(json.dumps(rec, default=float), flush=True)
    return out


def _ratio(table: pd.DataFrame, rule: str) -> pd.Series:
    """Per trial, the rule's test loss over the mean's (< 1: the rule is better); ROC AUC as 1 - AUC."""
    auc = table["metric"] == "roc_auc"
    loss = np.where(auc, 1 - table[rule], table[rule])
    base = np.where(auc, 1 - table["mean"], table["mean"])
    return pd.Series(np.maximum(loss, 1e-9) / np.maximum(base, 1e-9), index=table.index)


def summary(table: pd.DataFrame) -> list[str]:
    """Wins/losses/ties against the mean and the geometric mean of loss ratios, per rule; then a
    leave-one-set-out reading: choose the rule by the geometric mean on all sets but one, score it on that one."""
    lines = []
    for rule in RULES:
        if rule == "mean":
            continue
        r = _ratio(table, rule)
        same = table[f"{rule}_rounds"] == table["mean_rounds"]
        lines.append(f"{rule} vs mean: better on {int(((r < 1) & ~same).sum())}, worse on {int(((r > 1) & ~same).sum())}"
                     f", tied on {int(((r == 1) | same).sum())} of {len(r)} trials ({table['set'].nunique()} sets);"
                     f" geometric mean of loss ratios {np.exp(np.log(r).mean()):.4f}; per set (geo mean) better on "
                     f"{int((np.log(r).groupby(table['set']).mean() < 0).sum())}, worse on "
                     f"{int((np.log(r).groupby(table['set']).mean() > 0).sum())}")
    # a ratio of two near-zero losses (ROC AUC 0.9998 vs 0.9990) swings the geometric mean by itself
    auc = table["metric"] == "roc_auc"
    hard = np.where(auc, 1 - table["mean"], table["mean"]) >= NEAR_PERFECT
    for rule in (r for r in RULES if r != "mean"):
        r = _ratio(table[hard], rule)
        lines.append(f"{rule} vs mean without near-perfect trials (loss < {NEAR_PERFECT}: {int((~hard).sum())} left out):"
                     f" better on {int((r < 1).sum())}, worse on {int((r > 1).sum())}, geometric mean {np.exp(np.log(r).mean()):.4f}")
    logs = pd.DataFrame({rule: np.log(_ratio(table, rule)) for rule in RULES})
    logs["set"] = table["set"]
    per_set = logs.groupby("set").mean()
    picks, held = [], []
    for s in per_set.index if len(per_set) > 1 else []:
        rest = logs[logs["set"] != s].drop(columns="set").mean()
        pick = str(rest.idxmin())
        picks.append(pick)
        held.append(per_set.loc[s, pick])
    counts = pd.Series(picks).value_counts().to_dict()
    lines.append("leave-one-set-out: needs two sets or more" if not held else f"leave-one-set-out: rule chosen on the other sets {counts}; held-out geometric mean of loss "
                 f"ratio vs mean {np.exp(np.mean(held)):.4f} over {len(held)} sets (better on "
                 f"{int((np.array(held) < 0).sum())}, worse on {int((np.array(held) > 0).sum())})")
    for k in sorted(table["folds"].unique()):
        part = table[(table["folds"] == k) & hard]
        lines.append(f"{k}-fold sets without near-perfect trials ({len(part)} trials, {part['set'].nunique()} sets): "
                     + ", ".join(f"{rule} better on {int((_ratio(part, rule) < 1).sum())}, worse on "
                                 f"{int((_ratio(part, rule) > 1).sum())}, geo mean {np.exp(np.log(_ratio(part, rule)).mean()):.4f}"
                                 for rule in RULES if rule != "mean"))
    for lo, hi in ((0, 50), (50, 200), (200, 10 ** 9)):
        part = table[(table["fold_rows"] >= lo) & (table["fold_rows"] < hi)]
        if len(part):
            lines.append(f"folds of {lo}-{hi if hi < 10 ** 9 else 'more'} validation rows ({len(part)} trials, "
                         f"{part['set'].nunique()} sets): " + ", ".join(
                             f"{rule} geo mean {np.exp(np.log(_ratio(part, rule)).mean()):.4f}" for rule in RULES
                             if rule != "mean"))
    return lines


def _records(path: Path) -> list[dict]:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)["rows"]
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def main() -> None:
    from bench_engine import datasets, save_per_trial
    from same_search import collection_rows
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="?", default="", help="comma-separated dataset stems")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--out", action="store_true", help="write bench/results/refit-rounds-*.md/.json")
    parser.add_argument("--summary", nargs="*", help="summarise these result .json files or run logs together "
                        "(with --out: into one result file; --trials says what the runs used)")
    args = parser.parse_args()
    if args.summary:
        # result .json files, or logs of runs (one JSON record a line, as per_trial prints them)
        files = [f for pattern in args.summary for f in sorted(glob.glob(pattern))]
        table = pd.DataFrame([r for f in files for r in _records(Path(f))])
        wanted = sorted(table["set"].unique())
    else:
        wanted = args.sets.split(",")
        warnings.filterwarnings("ignore")
        rows = [r for r in datasets(bundled=True) if Path(r["file"]).stem in wanted]
        rows += collection_rows([w for w in wanted if w not in {Path(r["file"]).stem for r in rows}])
        table = pd.DataFrame([rec for row in rows for rec in per_trial(row, args.trials)])
    lines = summary(table) + [f"{args.trials} trials a set, seed 0; load average at the end "
                              f"{os.getloadavg()[0]:.1f} (scores do not depend on it)"]
    print("\n".join(lines))
    if args.out:
        save_per_trial("refit-rounds", "Refit round count per trial: folds' mean vs median vs rows-scaled mean",
                       wanted, args.trials, lines, table, shown=table.drop(columns="rounds").round(5))


if __name__ == "__main__":
    main()
