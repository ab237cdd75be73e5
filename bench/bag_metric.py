"""Bag or refit, judged in the run's metric (issue #25): the fold models' spread measured as squared error (the
rule before) or as log loss (KL of the average from each fold model, search/bag.py), on log-loss sets.

    python bench/bag_metric.py wine,digits,iris,penguins --trials 8 [--seed 0] [--out]
    python bench/bag_metric.py SETS --trials 8 --collect a.log,b.log --stem NAME   # runs split across processes

Per set: one search at a fixed trial count and seed on bench_engine.py's 75/25 split, every fold model kept;
for the row the engine would save (``choose``), its test log loss as the arithmetic bag of fold models (what
is saved today), as their geometric mean (renormalised; a candidate, not shipped), and refit on all rows;
both spread shares; what each rule saves (time rule aside: fixed trial counts); one default LGBMClassifier
on the same split. Scores do not depend on the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
EPS = 1e-15


def geometric(probas: list[np.ndarray]) -> np.ndarray:
    """The normalised geometric mean of the fold models' probabilities (the log-opinion pool)."""
    logp = np.mean([np.log(np.clip(p, EPS, 1.0)) for p in probas], axis=0)
    out = np.exp(logp - logp.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def log_share(bagger, ids: list[int], weights, oof: np.ndarray, codes: np.ndarray) -> float:
    """The fold models' spread in log loss on the rows ``Bagger.ambiguity`` samples: mean KL(average || fold
    model), the expected log loss averaging takes off (if the average were calibrated), as a share of the
    out-of-fold log loss."""
    from automl_core.search.bag import AMBIGUITY_ROWS
    rng = np.random.default_rng(bagger.seed)
    rows = np.sort(rng.choice(len(bagger.X), min(AMBIGUITY_ROWS, len(bagger.X)), replace=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = np.clip(np.stack([f.predict_proba(bagger.X.iloc[rows]) for f in bagger.folds(ids, weights)]), EPS, 1.0)
    mean = p.mean(axis=0)
    spread = float(np.mean(np.sum(mean * (np.log(mean) - np.log(p)), axis=2)))
    error = float(-np.mean(np.log(np.clip(oof[np.arange(len(codes)), np.asarray(codes, dtype=int)], EPS, 1.0))))
    return spread / error if error > 0 else 0.0


def one_set(row: dict, trials: int, seed: int) -> dict:
    from automl_core import AutoML
    from automl_core.search.bag import MIN_AMBIGUITY
    from automl_core.search.finalize import fit_final, label_order
    from bench_engine import classes_of, plain_lightgbm, score, split
    with tempfile.TemporaryDirectory() as tmp:
        _, _, train, test = split(row, Path(tmp))
    target, task = row["target"], row["task"]
    classes = classes_of(train, target, task)
    lgbm, _ = plain_lightgbm(task, train, test, target)
    a = AutoML(max_trials=trials, time_budget=None, seed=seed, final_model="bag", task=task, metric="log_loss")
    a._keep_fold_models = True
    a.fit(train, target=target)
    X_test, y_test = test.drop(columns=target), test[target]
    bagger, p, chosen = a._bagger, a.prepared_, a.final_
    rec = {"set": Path(row["file"]).stem, "rows": len(train), "classes": len(classes), "seed": seed,
           "saved": chosen.row.family, "final": chosen.final, "validation": chosen.row.score, "plain_lightgbm": lgbm}
    ids = [m.trial_id for m in chosen.members] or [chosen.row.trial_id]
    weights = chosen.weights or None
    order = [list(bagger.classes).index(c) for c in classes] if bagger is not None else None
    if chosen.final != "bag":  # no fold models (e.g. hold-out validation): both rules refit
        proba = a.predict_proba(X_test)
        rec.update(refit=score(task, y_test, np.asarray(proba)[:, [list(a.classes_).index(c) for c in classes]],
                               classes))
        rec.update(bag=np.nan, geo_bag=np.nan, share_sq=np.nan, share_log=np.nan)
    else:
        y_oof = a._y_codes[np.concatenate([v for _, v in a.validation_.splits])]
        oof = a.predictions_["validation"].models.get(chosen.row.trial_id)
        shares = {"": bagger.ambiguity(ids, weights, oof, y_oof), "log_loss": log_share(bagger, ids, weights, oof, y_oof)}
        folds = bagger.folds(ids, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probas = [f.predict_proba(X_test) for f in folds]
        bag = np.mean(probas, axis=0)
        model, _ = fit_final(a._refit_data, chosen, a.search_.oof, y_oof, label_order(p.classes, p.y), 2, seed,
                             best=a.search_.best, cost=a._cost, mode="refit")
        refit_proba = model.predict_proba(X_test)[:, [list(model.classes_).index(c) for c in classes]]
        rec.update(refit=score(task, y_test, refit_proba, classes), bag=score(task, y_test, bag[:, order], classes),
                   geo_bag=score(task, y_test, geometric(probas)[:, order], classes),
                   share_sq=shares[""], share_log=shares["log_loss"])
    bag_before = rec["share_sq"] >= MIN_AMBIGUITY if rec["share_sq"] == rec["share_sq"] else False
    bag_after = rec["share_log"] >= MIN_AMBIGUITY if rec["share_log"] == rec["share_log"] else False
    rec["before"] = rec["bag"] if bag_before else rec["refit"]
    rec["after"] = rec["bag"] if bag_after else rec["refit"]
    rec["rule_before"], rec["rule_after"] = ("bag" if bag_before else "refit"), ("bag" if bag_after else "refit")
    print(json.dumps(rec, default=float), flush=True)
    return rec


def main() -> None:
    from bench_engine import datasets, save_per_trial
    from same_search import collection_rows
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", help="comma-separated dataset stems")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stem", default="bag-metric")
    parser.add_argument("--out", action="store_true", help="write bench/results/<stem>-*.md/.json")
    parser.add_argument("--collect", help="comma-separated logs of earlier runs: record their rows as one result")
    args = parser.parse_args()
    wanted = args.sets.split(",")
    if args.collect:
        collect(args.collect.split(","), args.stem, wanted, args.trials)
        return
    warnings.filterwarnings("ignore")
    rows = [r for r in datasets(bundled=True) if Path(r["file"]).stem in wanted]
    rows += collection_rows([w for w in wanted if w not in {Path(r["file"]).stem for r in rows}])
    table = pd.DataFrame([one_set(row, args.trials, args.seed) for row in rows])
    lines = [*summary(table), f"{args.trials} trials a set, seed {args.seed}; load average at the end "
             f"{os.getloadavg()[0]:.1f} (scores do not depend on it)"]
    print(table.round(5).to_string(index=False))
    print("\n".join(lines))
    if args.out:
        save_per_trial(args.stem, "Bag or refit by the spread in the run's metric", wanted, args.trials, lines, table)


def summary(table: pd.DataFrame, tie: float = 0.001) -> list[str]:
    """Per candidate final model, wins / losses / ties against the rule before (test log loss; a tie within
    ``tie`` relative), and the geometric mean of their loss ratios."""
    bagged = table["bag"].notna()
    candidates = {
        "spread in log loss (KL) instead of squared error, same 3 % threshold": table["after"],
        "refit always (log loss)": table["refit"],
        "geometric bag where the rule bags": table["geo_bag"].where(table["rule_before"] == "bag", table["refit"]),
        "geometric bag wherever fold models exist": table["geo_bag"].where(bagged, table["refit"]),
        "arithmetic bag wherever fold models exist": table["bag"].where(bagged, table["refit"]),
    }
    lines = []
    for name, col in candidates.items():
        rel = (col - table["before"]) / table["before"].abs().clip(lower=1e-12)
        better, worse = int((rel < -tie).sum()), int((rel > tie).sum())
        ratio = float(np.exp(np.mean(np.log(col / table["before"]))))
        lines.append(f"{name}: better on {better}, worse on {worse}, tied on {len(table) - better - worse} of "
                     f"{len(table)} sets; geo-mean loss ratio {ratio:.4f}")
    worse_lgbm = table.loc[table["before"] > table["plain_lightgbm"], "set"].tolist()
    lines.append(f"the rule before, against one default LGBMClassifier: worse on {len(worse_lgbm)} of {len(table)} "
                 f"({', '.join(worse_lgbm) or 'none'})")
    return lines


def collect(logs: list[str], stem: str, sets: list[str], trials: int) -> None:
    """Record the JSON lines of several runs of this script (split across processes) as one result."""
    from bench_engine import save_per_trial
    recs = [json.loads(line) for log in logs for line in open(log) if line.startswith("{")]
    table = pd.DataFrame(recs).drop_duplicates("set")
    table = table[table["set"].isin(sets)] if sets else table
    lines = summary(table) + [f"{trials} trials a set, seed {int(table['seed'].iloc[0])}; load average at the end "
                              f"{os.getloadavg()[0]:.1f} (scores do not depend on it)"]
    print("\n".join(lines))
    save_per_trial(stem, "Bag or refit in the run's metric (log loss)", list(table["set"]), trials, lines, table)


if __name__ == "__main__":
    main()
