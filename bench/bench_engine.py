"""Engine benchmark: our AutoML vs plain LightGBM on every shared binary / multiclass / regression set.

Protocol (as ../shared/peers.md): rows with a missing target dropped, a fixed 75/25 split
(random_state=0, stratified for classification), test scores on the 25 %: ROC AUC for binary,
log loss for multiclass, RMSE for regression. Each of our runs is a separate process running
``python -m automl_core train`` (so wall time includes start-up), with peak memory summed over the
process tree. Run it with nothing else busy on the machine.

    python bench/bench_engine.py --budget 60 [--only iris,titanic] [--repeats 1]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
PEER_NAMES = {"breast_cancer_wisconsin": "breast_cancer", "iris": "sh_iris"}


def datasets() -> list[dict[str, str]]:
    with open(SHARED / "MANIFEST.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r for r in rows if r["task"] in METRIC]


def split(row: dict[str, str], tmp: Path) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(SHARED / row["file"])
    df = df[df[row["target"]].notna()].reset_index(drop=True)
    strat = df[row["target"]] if row["task"] != "regression" else None
    train, test = train_test_split(df, test_size=0.25, random_state=0, stratify=strat)
    stem = Path(row["file"]).stem
    train_path, test_path = tmp / f"{stem}_train.parquet", tmp / f"{stem}_test.parquet"
    train.to_parquet(train_path)
    test.to_parquet(test_path)
    return train_path, test_path, train, test


def score(task: str, y_true, pred, classes=None) -> float:
    if task == "binary":
        return float(roc_auc_score(y_true == classes[1], pred[:, 1]))
    if task == "multiclass":
        return float(log_loss(y_true, pred, labels=classes))
    return float(root_mean_squared_error(y_true, pred))


def plain_lightgbm(task: str, train: pd.DataFrame, test: pd.DataFrame, target: str) -> float:
    import lightgbm as lgb
    X, Xt = train.drop(columns=target), test.drop(columns=target)
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            cats = pd.Categorical(X[col].astype("string")).categories
            X[col] = pd.Categorical(X[col].astype("string"), categories=cats)
            Xt[col] = pd.Categorical(Xt[col].astype("string").where(Xt[col].astype("string").isin(cats)),
                                     categories=cats)
    if task == "regression":
        model = lgb.LGBMRegressor(n_jobs=2, verbose=-1).fit(X, train[target])
        return score(task, test[target], model.predict(Xt))
    model = lgb.LGBMClassifier(n_jobs=2, verbose=-1).fit(X, train[target])
    return score(task, test[target].to_numpy(), model.predict_proba(Xt), list(model.classes_))


class PeakMemory:
    """Peak resident memory of a process and all its descendants, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> int:
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                children.setdefault(int(stat[1]), []).append(int(entry))
                rss[int(entry)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        total, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            total += rss.get(pid, 0)
            todo.extend(children.get(pid, []))
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._tree_rss())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def ours(row: dict[str, str], train_path: Path, test_path: Path, budget: float, tmp: Path) -> dict:
    cmd = [sys.executable, "-m", "automl_core", "train", str(train_path), "--target", row["target"],
           "--task", row["task"], "--metric", METRIC[row["task"]], "--test-data", str(test_path),
           "--time-budget", str(budget), "--seed", "0", "--store", str(tmp / "store.duckdb"), "--json", "--quiet"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    peak = memory.stop()
    if proc.returncode != 0:
        return {"error": (err.strip().splitlines() or ["?"])[-1], "wall_s": wall, "peak_mb": peak}
    summary = json.loads(out.strip().splitlines()[-1])
    first = first_trial_seconds(tmp / "store.duckdb", summary["experiment_id"])
    return {"ours": summary["test_score"], "best_model": summary["best_model"], "n_trials": summary["n_trials"],
            "engine_s": summary["wall_seconds"], "wall_s": wall, "peak_mb": peak, "first_trial_s": first}


def first_trial_seconds(store: Path, experiment_id: str) -> float | None:
    sys.path.insert(0, str(REPO))
    from storage import Store
    s = Store(store)
    trials = s.trials(experiment_id)
    s.close()
    return float(trials["finished_at"].min()) if len(trials) else None


def peers(budget: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    text = (SHARED.parent / "peers.md").read_text()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 10 and cells[2] == str(budget):
            try:
                out[cells[0]] = {"autogluon": float(cells[4]), "flaml": float(cells[7]), "lightgbm": float(cells[8])}
            except ValueError:
                continue
    return out


def markdown(table: pd.DataFrame) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in rec) + " |" for rec in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--only", help="comma-separated dataset stems")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    peer = peers(30 if args.budget <= 60 else 120)
    rows = []
    for row in datasets():
        stem = Path(row["file"]).stem
        if only and stem not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            train_path, test_path, train, test = split(row, Path(tmp))
            baseline = plain_lightgbm(row["task"], train, test, row["target"])
            result = ours(row, train_path, test_path, args.budget, Path(tmp))
        p = peer.get(PEER_NAMES.get(stem, "sh_" + stem), {})
        record = {"dataset": stem, "task": row["task"], "metric": METRIC[row["task"]], "rows": len(train) + len(test),
                  "plain_lightgbm": baseline, **result, "autogluon_30s": p.get("autogluon"), "flaml_30s": p.get("flaml")}
        rows.append(record)
        print(json.dumps(record), flush=True)
    table = pd.DataFrame(rows)
    higher = table["metric"] == "roc_auc"
    table["beats_lgbm"] = np.where(higher, table["ours"] >= table["plain_lightgbm"], table["ours"] <= table["plain_lightgbm"])
    # The budget covers the run from data in to model saved; interpreter start-up (wall_s) is extra.
    table["within_budget"] = table["engine_s"] <= args.budget * 1.1
    print(table.to_string(index=False))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"budget_s": args.budget, "when": stamp, "python": platform.python_version(), "cores": os.cpu_count(),
            "packages": {m: __import__(m).__version__ for m in ("sklearn", "lightgbm", "pandas", "optuna")}}
    (out / f"engine-{int(args.budget)}s-{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / f"engine-{int(args.budget)}s-{stamp}.md").write_text(
        f"# Engine bench, {args.budget:.0f} s budget, {stamp}\n\n{json.dumps(meta)}\n\n" + markdown(table))


if __name__ == "__main__":
    main()
