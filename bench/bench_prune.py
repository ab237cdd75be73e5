"""Fold pruning and time slices (search/pruning.py), before vs after, on the larger tables.

Runs ``python -m automl_core train`` from two source trees (``--before``: a copy of the tree before the
change, e.g. ``git archive <commit> | tar -x -C DIR``; ``--after``: this repository) on the same 75/25
splits as bench/bench_engine.py, same budget and seed, alternating which goes first per set. Sets: the
wide collection's tables with at least ``--min-rows`` rows (bench/collection.py; sets that did not shape
the rule) and the shared tables that large. Records test score, trials, pruned trials, engine seconds.

    python bench/bench_prune.py --before /tmp/base --budget 30 [--only a,b]
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import METRIC, SHARED, classes_of, score, split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def sets(min_rows: int, collection: Path) -> list[dict]:
    rows = []
    with open(collection / "MANIFEST.tsv", newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if int(r["rows"]) >= min_rows and r["task"] in METRIC:
                rows.append({"file": r["file"], "target": r["target"], "task": r["task"], "group": "collection",
                             "frame": pd.read_csv(collection / r["file"])})
    with open(SHARED / "MANIFEST.tsv", newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r["task"] in METRIC and int(r["rows"]) >= min_rows:
                rows.append({"file": r["file"], "target": r["target"], "task": r["task"], "group": "shared"})
    return rows


def run(tree: Path, row: dict, train: Path, test: Path, budget: float, tmp: Path, classes: list | None,
        max_trials: int | None = None) -> dict:
    store = tmp / f"{tree.name}-{time.time_ns()}.duckdb"
    cmd = [sys.executable, "-m", "automl_core", "train", str(train), "--target", row["target"], "--task", row["task"],
           "--metric", METRIC[row["task"]], "--test-data", str(test), "--time-budget", str(budget), "--seed", "0",
           "--store", str(store), "--json", "--quiet"] + (["--max-trials", str(max_trials)] if max_trials else [])
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    model_path = Path(summary["model_path"])
    model_path = model_path if model_path.is_absolute() else tree / model_path
    scored = pd.read_csv(model_path.with_name("test_predictions.csv"))
    pred = (scored["prediction"].to_numpy(dtype=float) if classes is None
            else scored[[f"proba_{c}" for c in classes]].to_numpy(dtype=float))
    test_df = pd.read_parquet(test)
    with duckdb.connect(str(store), read_only=True) as con:
        counts = dict(con.execute("SELECT status, count(*) FROM trials WHERE experiment_id = ? AND family NOT IN "
                                  "('ensemble', 'stacking') GROUP BY status", [summary["experiment_id"]]).fetchall())
    return {"test": score(row["task"], test_df[row["target"]].to_numpy(), pred, classes),
            "trials": sum(counts.values()), "ok": counts.get("ok", 0), "pruned": counts.get("pruned", 0),
            "timeout": counts.get("timeout", 0), "engine_s": summary["fit_seconds"], "best": summary["best_model"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True)
    p.add_argument("--budget", type=float, default=30)
    p.add_argument("--min-rows", type=int, default=5000)
    p.add_argument("--collection", default=str(REPO / "bench" / ".collection"))
    p.add_argument("--only")
    p.add_argument("--max-trials", type=int, help="a fixed trial count (time slices are then off: pruning alone)")
    p.add_argument("--out", default=str(REPO / "bench" / "results"))
    p.add_argument("--retable", help="a results JSON of this script: rewrite its .md (with --note) instead of running")
    p.add_argument("--note", default="", help="a paragraph for the .md (load, what changed between runs)")
    p.add_argument("--title", default="Fold pruning + time slices", help="what the two trees differ by, for the .md")
    p.add_argument("--name", default="prune", help="the results files' name prefix")
    args = p.parse_args()
    if args.retable:
        saved = json.loads(Path(args.retable).read_text())
        Path(args.retable).with_suffix(".md").write_text(table(saved["results"], saved["budget"], args.note,
                                                               saved.get("max_trials"), args.title))
        return
    trees = {"before": Path(args.before), "after": REPO}
    rows = [r for r in sets(args.min_rows, Path(args.collection))
            if not args.only or Path(r["file"]).stem in args.only.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for i, row in enumerate(rows):
            train_path, test_path, train, _ = split(row, tmp)
            classes = classes_of(train, row["target"], row["task"])
            order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
            rec = {"set": Path(row["file"]).stem, "group": row["group"], "task": row["task"],
                   "metric": METRIC[row["task"]], "rows": len(train), "first": order[0]}
            for name in order:
                load = Path("/proc/loadavg").read_text().split()[0]
                rec[name] = {**run(trees[name], row, train_path, test_path, args.budget, tmp, classes, args.max_trials), "load": float(load)}
            results.append(rec)
            print(json.dumps(rec), flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    kind = f"{args.max_trials}trials" if args.max_trials else f"{int(args.budget)}s"
    out = Path(args.out) / f"{args.name}-{kind}-{stamp}"
    out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "max_trials": args.max_trials, "seed": 0,
                                                   "results": results}, indent=1))
    out.with_suffix(".md").write_text(table(results, args.budget, "", args.max_trials, args.title))
    print(out)


def table(results: list[dict], budget: float, note: str = "", max_trials: int | None = None,
          title: str = "Fold pruning + time slices") -> str:
    what = f"{max_trials} trials each (time slices off: pruning alone)" if max_trials else f"{budget:.0f} s"
    lines = [f"# {title}, before vs after, {what}, seed 0", "", note, "",
             "| set | group | metric | rows | before | after | trials b/a | pruned a | winner |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b, a = r["before"], r["after"]
        if "error" in b or "error" in a:
            lines.append(f"| {r['set']} | {r['group']} | {r['metric']} | {r['rows']} | {b.get('error', '')} | {a.get('error', '')} | | | |")
            continue
        sign = -1 if r["metric"] == "roc_auc" else 1
        diff = sign * (a["test"] - b["test"]) / max(abs(b["test"]), 1e-12)
        win = "tie" if abs(diff) < 0.001 else ("after" if diff < 0 else "before")
        r["winner"] = win
        lines.append(f"| {r['set']} | {r['group']} | {r['metric']} | {r['rows']:,} | {b['test']:.5g} | {a['test']:.5g} | "
                     f"{b['trials']}/{a['trials']} | {a['pruned']} | {win} |")
    lines.append("")
    for group in ("collection", "shared"):
        rows = [r for r in results if r["group"] == group and "winner" in r]
        if not rows:
            continue
        count = {w: sum(r["winner"] == w for r in rows) for w in ("after", "before", "tie")}
        trials = [(r["before"]["trials"], r["after"]["trials"]) for r in rows]
        lines.append(f"- {group}: after wins {count['after']}, loses {count['before']}, ties {count['tie']} (within 0.1 %); "
                     f"trials before/after: median {median([t[0] for t in trials])} / {median([t[1] for t in trials])}, "
                     f"total {sum(t[0] for t in trials)} / {sum(t[1] for t in trials)}; "
                     f"pruned after: {sum(r['after']['pruned'] for r in rows)}")
    loads = [r[k]["load"] for r in results for k in ("before", "after")]
    lines.append(f"- load average (1 min) at each run's start: {min(loads):.1f} to {max(loads):.1f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
