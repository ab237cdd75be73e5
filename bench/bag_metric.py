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


def row_losses(y_true, proba: np.ndarray, classes: list) -> np.ndarray:
    """Each test row's log loss (binary sets too: this bench is about log loss whatever the task's default)."""
    codes = pd.Index(classes).get_indexer(np.asarray(y_true))
    return -np.log(np.clip(np.asarray(proba, dtype=float)[np.arange(len(codes)), codes], EPS, 1.0))


def paired_interval(a: np.ndarray, b: np.ndarray, seed: int = 0, n: int = 2000) -> tuple[float, float]:
    """The 95 % paired-bootstrap interval of mean(a) - mean(b) over the same test rows."""
    d = a - b
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n, len(d)))
    means = d[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


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
    from bench_engine import classes_of, plain_lightgbm, split
    with tempfile.TemporaryDirectory() as tmp:
        _, _, train, test = split(row, Path(tmp))
    target, task = row["target"], row["task"]
    classes = classes_of(train, target, task)
    _, lgbm_proba = plain_lightgbm(task, train, test, target)
    a = AutoML(max_trials=trials, time_budget=None, seed=seed, final_model="bag", task=task, metric="log_loss")
    a._keep_fold_models = True
    a.fit(train, target=target)
    X_test, y_test = test.drop(columns=target), test[target].to_numpy()
    bagger, p, chosen = a._bagger, a.prepared_, a.final_
    lgbm_rows = row_losses(y_test, lgbm_proba, classes)
    rec = {"set": Path(row["file"]).stem, "task": task, "rows": len(train), "classes": len(classes), "seed": seed,
           "trials": trials, "saved": chosen.row.family, "final": chosen.final, "validation": chosen.row.score,
           "plain_lightgbm": float(lgbm_rows.mean())}
    ids = [m.trial_id for m in chosen.members] or [chosen.row.trial_id]
    weights = chosen.weights or None
    order = [list(bagger.classes).index(c) for c in classes] if bagger is not None else None
    losses: dict[str, np.ndarray] = {}
    if chosen.final != "bag":  # no fold models (e.g. hold-out validation): both rules refit
        proba = np.asarray(a.predict_proba(X_test))[:, [list(a.classes_).index(c) for c in classes]]
        losses["refit"] = row_losses(y_test, proba, classes)
        rec.update(bag=np.nan, geo_bag=np.nan, share_sq=np.nan, share_log=np.nan)
    else:
        y_oof = a._y_codes[np.concatenate([v for _, v in a.validation_.splits])]
        oof = a.predictions_["validation"].models.get(chosen.row.trial_id)
        shares = {"": bagger.ambiguity(ids, weights, oof, y_oof), "log_loss": log_share(bagger, ids, weights, oof, y_oof)}
        folds = bagger.folds(ids, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probas = [f.predict_proba(X_test) for f in folds]
        model, _ = fit_final(a._refit_data, chosen, a.search_.oof, y_oof, label_order(p.classes, p.y), 2, seed,
                             best=a.search_.best, cost=a._cost, mode="refit")
        refit_proba = model.predict_proba(X_test)[:, [list(model.classes_).index(c) for c in classes]]
        losses.update(refit=row_losses(y_test, refit_proba, classes),
                      bag=row_losses(y_test, np.mean(probas, axis=0)[:, order], classes),
                      geo_bag=row_losses(y_test, geometric(probas)[:, order], classes))
        rec.update(bag=float(losses["bag"].mean()), geo_bag=float(losses["geo_bag"].mean()),
                   share_sq=shares[""], share_log=shares["log_loss"])
    rec["refit"] = float(losses["refit"].mean())
    bag_before = rec["share_sq"] >= MIN_AMBIGUITY if rec["share_sq"] == rec["share_sq"] else False
    bag_after = rec["share_log"] >= MIN_AMBIGUITY if rec["share_log"] == rec["share_log"] else False
    rec["before"] = rec["bag"] if bag_before else rec["refit"]
    rec["after"] = rec["bag"] if bag_after else rec["refit"]
    rec["rule_before"], rec["rule_after"] = ("bag" if bag_before else "refit"), ("bag" if bag_after else "refit")
    # The shipped candidate (geometric pool where the rule bags) against the rule before and plain LightGBM,
    # with each difference's paired-bootstrap interval over the test rows.
    before = losses["bag"] if bag_before else losses["refit"]
    geo = losses["geo_bag"] if bag_before else losses["refit"]
    rec["geo_rule"] = float(geo.mean())
    rec["geo_vs_before_lo"], rec["geo_vs_before_hi"] = paired_interval(geo, before, seed)
    rec["geo_vs_lgbm_lo"], rec["geo_vs_lgbm_hi"] = paired_interval(geo, lgbm_rows, seed)
    rec["before_vs_lgbm_lo"], rec["before_vs_lgbm_hi"] = paired_interval(before, lgbm_rows, seed)
    print(json.dumps(rec, default=float), flush=True)
    return rec


SHAPING = {"wine", "digits", "iris", "penguins"}  # the sets that shaped the geometric bag (issue #25)


def main() -> None:
    from bench_engine import datasets
    from same_search import collection_rows
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", help="comma-separated dataset stems")
    parser.add_argument("--trials", default="8", help="comma-separated trial counts")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--stem", default="bag-metric")
    parser.add_argument("--out", action="store_true", help="write bench/results/<stem>-*.md/.json")
    parser.add_argument("--collect", help="comma-separated logs of earlier runs: record their rows as one result")
    args = parser.parse_args()
    wanted = args.sets.split(",")
    if args.collect:
        collect(args.collect.split(","), args.stem, wanted)
        return
    warnings.filterwarnings("ignore")
    rows = [r for r in datasets(bundled=True) if Path(r["file"]).stem in wanted]
    rows += collection_rows([w for w in wanted if w not in {Path(r["file"]).stem for r in rows}])
    recs = [one_set(row, int(t), int(seed)) for t in args.trials.split(",") for seed in args.seeds.split(",")
            for row in rows]
    table = pd.DataFrame(recs)
    print(table.round(5).to_string(index=False))
    if args.out:
        record(table, args.stem, wanted)


def verdicts(table: pd.DataFrame, candidate: str = "geo_rule", tie: float = 1e-4) -> pd.Series:
    """Per run, the candidate against the rule before: "better" / "worse" when the paired-bootstrap interval
    of the difference excludes 0 and the difference is over ``tie``, else "tied"."""
    diff = table[candidate] - table["before"]
    # rows recorded before the intervals were (an earlier result's JSON): the point difference alone
    lo, hi = table["geo_vs_before_lo"].fillna(diff), table["geo_vs_before_hi"].fillna(diff)
    out = pd.Series("tied", index=table.index)
    out[(hi < 0) & (diff < -tie)] = "better"
    out[(lo > 0) & (diff > tie)] = "worse"
    return out


def summary(table: pd.DataFrame) -> list[str]:
    """Per group of runs (shaping / held-out sets), the geometric bag where the rule bags against the rule
    before: better / worse / tied (paired bootstrap), the geometric mean of the loss ratios, and each against
    one default LGBMClassifier (worse beyond the bootstrap noise)."""
    lines = []
    for role, part in table.groupby(np.where(table["set"].isin(SHAPING), "shaping", "held out")):
        v = verdicts(part)
        bagged = part["rule_before"] == "bag"
        # a set every system predicts perfectly has log loss ~0: floored, so its ratio is 1, not 0/0
        ratios = np.log(part["geo_rule"].clip(lower=1e-12) / part["before"].clip(lower=1e-12))
        ratio = float(np.exp(ratios.mean()))
        ratio_bagged = float(np.exp(ratios[bagged].mean())) if bagged.any() else 1.0
        lgbm_before = part.loc[part["before_vs_lgbm_lo"] > 0, "set"]
        lgbm_geo = part.loc[part["geo_vs_lgbm_lo"] > 0, "set"]
        lines += [f"{role}: {len(part)} runs on {part['set'].nunique()} sets, the rule bags in {int(bagged.sum())}; "
                  f"geometric bag where the rule bags: better {int((v == 'better').sum())}, worse "
                  f"{int((v == 'worse').sum())}, tied {int((v == 'tied').sum())}; geo-mean loss ratio {ratio:.4f} "
                  f"over all runs, {ratio_bagged:.4f} over the bagged runs",
                  f"{role}: worse than one default LGBMClassifier beyond the noise: rule before {len(lgbm_before)} "
                  f"({', '.join(sorted(set(lgbm_before))) or 'none'}), geometric bag {len(lgbm_geo)} "
                  f"({', '.join(sorted(set(lgbm_geo))) or 'none'})"]
    return lines


def record(table: pd.DataFrame, stem: str, sets: list[str]) -> None:
    from bench_engine import save_per_trial
    trials = ",".join(str(t) for t in sorted(table["trials"].unique()))
    lines = summary(table) + [f"trials {trials}, seeds {','.join(str(s) for s in sorted(table['seed'].unique()))}; "
                              f"test log loss (binary sets too); load average at the end {os.getloadavg()[0]:.1f} "
                              f"(scores do not depend on it)"]
    print("\n".join(lines))
    shown = table[["set", "task", "seed", "trials", "saved", "rule_before", "plain_lightgbm", "before", "bag",
                   "geo_bag", "refit", "share_sq", "geo_vs_before_lo", "geo_vs_before_hi"]].round(5)
    save_per_trial(stem, "Geometric bag of fold models under log loss", sets, trials, lines, table, shown)


def collect(logs: list[str], stem: str, sets: list[str]) -> None:
    """Record the JSON lines of several runs of this script (split across processes) as one result."""
    recs = []
    for log in logs:  # a run's stdout (JSON lines), or an earlier result's JSON (its rows)
        if log.endswith(".json"):
            saved = json.loads(Path(log).read_text())
            recs += [{"trials": saved["trials"], **r} for r in saved["rows"]]
        else:
            recs += [json.loads(line) for line in open(log) if line.startswith("{")]
    table = pd.DataFrame(recs)
    if "geo_rule" in table:  # earlier rows: the candidate is the geometric bag where the rule bagged
        table["geo_rule"] = table["geo_rule"].fillna(table["geo_bag"].where(table["rule_before"] == "bag",
                                                                            table["refit"]))
    else:
        table["geo_rule"] = table["geo_bag"].where(table["rule_before"] == "bag", table["refit"])
    for col in ("geo_vs_before_lo", "geo_vs_before_hi", "geo_vs_lgbm_lo", "geo_vs_lgbm_hi", "before_vs_lgbm_lo",
                "before_vs_lgbm_hi", "task"):
        table[col] = table[col] if col in table else np.nan
    table = table.drop_duplicates(["set", "seed", "trials"], keep="last")
    table = table[table["set"].isin(sets)] if sets and sets != [""] else table
    record(table.reset_index(drop=True), stem, list(table["set"].unique()))


if __name__ == "__main__":
    main()
