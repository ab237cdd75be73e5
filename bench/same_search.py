"""Does a change to the search keep its results? A fixed trial count with a fixed seed is reproducible
(trials finish in batches, in trial order), so two checkouts must give the same leaderboard.

    python bench/same_search.py > after.json     # in each checkout, then compare the two files

Prints one JSON object: per shared dataset, every leaderboard row as (trial id, family, score).

    python bench/same_search.py --finals [--trials 10] [--only mpg,titanic]

compares the two final models of *one* search (issue #25 item 2): "refit" on all training rows against
"bag" (the k fold models the validation fit, averaged; automl_core/search/bag.py), on the engine bench's
75/25 splits and test metrics (bench_engine.py), with the seconds each final stage took and what the
"auto" rule picks. A fixed trial count, so the comparison does not depend on the machine's load; the
seconds do (they are taken on a shared machine). Writes bench/results/finals-<trials>trials-<stamp>.md/.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
SETS = [("german_credit.csv", "class", ()), ("mpg.csv", "mpg", ("name",)), ("penguins.csv", "species", ())]
#: Eight shared tables, small to mid-size, binary / multiclass / regression (the finals comparison).
FINAL_SETS = ["hardware_performance_machine", "titanic", "german_credit", "breast_cancer_wisconsin", "penguins",
              "mpg", "islp_hitters", "wine_quality_white"]


def main() -> None:
    from automl_core import AutoML
    out = {}
    for name, target, drop in SETS:
        df = pd.read_csv(SHARED / name).drop(columns=list(drop))
        automl = AutoML(max_trials=8, time_budget=None, seed=0).fit(df, target=target)
        out[name] = [(t.trial_id, t.family, None if t.score is None else round(t.score, 10)) for t in automl.trials_]
    print(json.dumps(out))


def finals(trials: int, only: list[str] | None) -> None:
    import tempfile
    from bench_engine import classes_of, datasets, markdown, score, split
    from automl_core import AutoML
    from automl_core.search.bag import decide
    from automl_core.search.finalize import FinalChoice, RESERVE_MARGIN, fit_final, label_order
    from automl_core.models.families import FAMILIES
    rows = []
    wanted = only or FINAL_SETS
    for row in [r for r in datasets() if Path(r["file"]).stem in wanted] + collection_rows(wanted):
        with tempfile.TemporaryDirectory() as tmp:
            _, _, train, test = split(row, Path(tmp))
        target, task = row["target"], row["task"]
        classes = classes_of(train, target, task)
        # the bench's task and metric (a collection table's integer classes would otherwise be detected as values)
        automl = AutoML(max_trials=trials, time_budget=None, seed=0, final_model="bag", task=task,
                        metric=METRIC_OF[task])
        automl._keep_fold_models = True  # the refit below is made from the same search
        began = time.perf_counter()
        automl.fit(train, target=target)
        fit_s = time.perf_counter() - began
        X_test = test.drop(columns=target)
        chosen = automl.final_
        bag_model, bagger = automl.model_, automl._bagger
        rec = {"set": Path(row["file"]).stem, "task": task, "rows": len(train), "metric": METRIC_OF[task],
               "chosen": chosen.row.family, "folds": bagger.k if bagger else 0, "bag": np.nan, "bag_s": np.nan,
               "ambiguity": np.nan, "auto": "", "decide_s": np.nan}
        p, plan = automl.prepared_, automl.validation_
        y_oof = automl._y_codes[np.concatenate([v for _, v in plan.splits])]
        plain = FinalChoice(chosen.row, chosen.members, chosen.weights)
        ids = [m.trial_id for m in chosen.members] or [chosen.row.trial_id]
        row_oof = automl.predictions_["validation"].models.get(chosen.row.trial_id)
        if bagger is not None and chosen.final == "bag":
            bagger._made.clear()  # timed again from scratch: the bag's final stage alone
            start = time.perf_counter()
            bagger.pipeline(ids, chosen.weights or None)
            rec["bag_s"] = time.perf_counter() - start
            rec["bag"] = _test_score(bag_model, X_test, test[target], task, classes)
            cost = automl._cost
            fits = cost.members(chosen.members) if chosen.members else cost.single(chosen.row)
            start = time.perf_counter()
            rec["ambiguity"] = bagger.ambiguity(ids, chosen.weights or None, row_oof, y_oof)
            stopped = any(FAMILIES[m.family].early_stopping is not None
                          for m in (chosen.members or [chosen.row]) if m.family in FAMILIES)
            rec["auto"] = decide("auto", bagger, ids, chosen.weights or None,
                                 RESERVE_MARGIN * (fits + cost.featurize_seconds), np.inf, row_oof, y_oof)[0]
            # what a rule "refit early-stopped fold models on folds under 50 rows" would pick (tried, not kept:
            # bench/results/tiny-sets-20261207.md)
            rec["fold_rows"], rec["early_stopped"] = len(bagger.y) // bagger.k, stopped
            rec["auto_min_stop"] = "refit" if stopped and rec["fold_rows"] < 50 else rec["auto"]
            rec["decide_s"] = time.perf_counter() - start
        start = time.perf_counter()
        refit_model, _ = fit_final(automl._refit_data, plain, automl.search_.oof, y_oof, label_order(p.classes, p.y),
                                   automl._cost.refit_threads, 0, best=automl.search_.best, cost=automl._cost,
                                   mode="refit")
        rec["refit_s"] = time.perf_counter() - start
        rec["refit"] = _test_score(refit_model, X_test, test[target], task, classes)
        rec["search_s"] = fit_s
        rows.append(rec)
        print(json.dumps(rec, default=float), flush=True)
    _record(rows, trials, markdown)


def collection_rows(wanted: list[str]) -> list[dict]:
    """The wanted tables of the wide collection (bench/collection.py writes them to bench/.collection)."""
    import csv
    manifest = REPO / "bench" / ".collection" / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with open(manifest, newline="") as fh:
        items = [r for r in csv.DictReader(fh, delimiter="\t") if r["name"] in wanted]
    return [{"file": r["file"], "target": r["target"], "task": r["task"], "rows": r["rows"],
             "frame": pd.read_csv(manifest.parent / r["file"])} for r in items]


METRIC_OF = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def search_keeping_folds(row: dict, trials: int):
    """One search on a collection row's 75 % split, every trial's fold models kept (``final_model="bag"``), and
    its 25 % test rows: ``(automl, X_test, y_test, classes)``. The per-trial benches score refits and bags of it."""
    import tempfile
    from automl_core import AutoML
    from bench_engine import classes_of, split
    with tempfile.TemporaryDirectory() as tmp:
        _, _, train, test = split(row, Path(tmp))
    target, task = row["target"], row["task"]
    classes = classes_of(train, target, task)
    a = AutoML(max_trials=trials, time_budget=None, seed=0, final_model="bag", task=task, metric=METRIC_OF[task])
    a._keep_fold_models = True
    a.fit(train, target=target)
    return a, test.drop(columns=target), test[target], classes


def _test_score(model, X, y, task: str, classes) -> float:
    from bench_engine import score
    if task == "regression":
        return score(task, y, model.predict(X))
    proba = model.predict_proba(X)
    order = [list(model.classes_).index(c) for c in classes]
    return score(task, y, proba[:, order], classes)


def _record(rows: list[dict], trials: int, markdown) -> None:
    table = pd.DataFrame(rows)
    lower = table["metric"] != "roc_auc"
    diff = (table["bag"] - table["refit"]).where(~lower, table["refit"] - table["bag"])  # > 0: the bag is better
    table["bag_better_by"] = diff
    if "auto" in table:
        table["auto_right"] = [(a == "bag") == (d > 0) if a else None
                               for a, d in zip(table["auto"], diff)]
        # what each rule's pick scored on test
        picked = {c: table["bag"].where(table[c] == "bag", table["refit"]) for c in ("auto", "auto_min_stop")
                  if c in table}
        if len(picked) == 2:  # > 0: the min-stop variant's pick scored better on test than the auto rule's
            gain = (picked["auto"] - picked["auto_min_stop"]).where(lower, picked["auto_min_stop"] - picked["auto"])
            table["min_stop_better_by"] = gain.where(table["auto"] != "", np.nan)
    cols = [c for c in ["set", "task", "rows", "metric", "chosen", "folds", "fold_rows", "early_stopped", "refit",
                        "bag", "bag_better_by", "ambiguity", "auto", "auto_right", "auto_min_stop", "min_stop_better_by",
                        "refit_s", "bag_s", "decide_s", "search_s"] if c in table]
    table = table[cols]
    wins = int((diff > 0).sum())
    lines = [f"bag better on test on {wins} of {int(diff.notna().sum())} sets, refit better on "
             f"{int((diff < 0).sum())}, tied on {int((diff == 0).sum())}",
             f"final stage seconds: refit {table['refit_s'].sum():.1f} s in all, bag {table['bag_s'].sum():.2f} s "
             f"(+ {table['decide_s'].sum():.2f} s for the auto rule's spread)",
             "timings taken on a shared, loaded machine (2 cores, several helpers): compare them with each other only",
             f"load average at the end: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[2]:.1f} (15 min)"]
    if "min_stop_better_by" in table:
        gain = table["min_stop_better_by"].dropna()
        lines.append(f"refitting early-stopped fold models on folds under 50 rows, against the auto rule, on the test "
                     f"scores of what each picks: better on {int((gain > 0).sum())}, worse on {int((gain < 0).sum())}, the same on "
                     f"{int((gain == 0).sum())} (of {len(gain)} sets with fold models kept)")
    print(table.to_string(index=False))
    print("\n".join(lines))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results"
    name = f"finals-{trials}trials-{stamp}"
    (out / f"{name}.json").write_text(json.dumps({"trials": trials, "rows": rows, "summary": lines}, indent=1,
                                                 default=float))
    (out / f"{name}.md").write_text(f"# Refit on all rows vs bag of fold models, one search each, {trials} trials, "
                                    f"seed 0, {stamp}\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n"
                                    + markdown(table))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--finals", action="store_true", help="refit vs bag of the same search (see the doc)")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--only", help="comma-separated dataset stems")
    args = parser.parse_args()
    if args.finals:
        finals(args.trials, args.only.split(",") if args.only else None)
    else:
        main()
