"""Memory bench (issue 8): peak memory of a CLI training run on a 1M-row x 50-column table. Goal: < 8 GB.

    python bench/bench_memory.py                    # 1,000,000 rows, 300 s budget
    python bench/bench_memory.py --quick            # 20,000 rows, 90 s budget (proves the script works)

Protocol. A table of N rows is generated in a temp dir (seed 0): 30 float columns (normal, 1 % missing),
8 integer columns (counts), 8 low-cardinality categorical columns (5-20 levels, strings), 3
high-cardinality string columns (~5,000 levels) and 1 date column, plus a binary target y that depends
on a few of them -- 50 feature columns. It is written as CSV (--format parquet for Parquet). Then
``python -m automl_core train DATA --target y --time-budget B --json --quiet`` runs with its own store;
the peak resident memory of the CLI process and all its children (trial workers) is sampled every
0.2 s from /proc (bench_engine.PeakMemory). The engine's JSON summary and model.json are searched for
what it says about row sampling (any key mentioning "sampl" or "rows"), reported as-is.
Results: a table on stdout, bench/results/memory[-quick]-<UTC stamp>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_engine import PeakMemory  # noqa: E402

GOAL_MB = 8 * 1024


def make_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """50 mixed feature columns and a learnable binary target."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(30):
        x = rng.normal(size=n_rows).astype("float64")
        x[rng.random(n_rows) < 0.01] = np.nan
        cols[f"num_{i}"] = x
    for i in range(8):
        cols[f"count_{i}"] = rng.poisson(3 + i, size=n_rows)
    for i in range(8):
        levels = np.array([f"level_{j}" for j in range(5 + 2 * i)])
        cols[f"cat_{i}"] = levels[rng.integers(0, len(levels), n_rows)]
    for i in range(3):
        cols[f"code_{i}"] = np.char.add("c", rng.integers(0, 5000, n_rows).astype(str))
    cols["day"] = (np.datetime64("2015-01-01") + rng.integers(0, 3000, n_rows).astype("timedelta64[D]")).astype(str)
    logit = (cols["num_0"].copy() + 0.5 * np.nan_to_num(cols["num_1"]) + (cols["cat_0"] == "level_1")
             - 0.2 * cols["count_0"] + rng.normal(scale=1.0, size=n_rows))
    cols["y"] = np.where(np.nan_to_num(logit) > 0, "yes", "no")
    return pd.DataFrame(cols)


def _sampling_notes(obj, prefix: str = "") -> dict:
    """Every key (nested) that mentions sampling or row counts, with its value."""
    found = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}{k}"
            if isinstance(v, (dict, list)):
                found.update(_sampling_notes(v, key + "."))
            elif "sampl" in str(k).lower() or "rows" in str(k).lower():
                found[key] = v
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, str) and "sampl" in v.lower():
                found[f"{prefix}{i}"] = v
            elif isinstance(v, dict):
                found.update(_sampling_notes(v, f"{prefix}{i}."))
    return found


def run(n_rows: int, budget: float, fmt: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    start = time.perf_counter()
    df = make_table(n_rows)
    data = tmp / f"table.{fmt}"
    if fmt == "csv":
        df.to_csv(data, index=False)
    else:
        df.to_parquet(data, index=False)
    generate_s = time.perf_counter() - start
    del df
    cmd = [sys.executable, "-m", "automl_core", "train", str(data), "--target", "y", "--time-budget", str(budget),
           "--seed", "0", "--store", str(tmp / "store.duckdb"), "--out", str(tmp / "model"), "--json", "--quiet"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    peak_mb = memory.stop()
    summary = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 and out.strip() else {}
    card_path = tmp / "model" / "model.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    return {
        "rows": n_rows, "feature_columns": 50, "format": fmt, "file_mb": round(data.stat().st_size / 2**20, 1),
        "generate_s": round(generate_s, 1), "budget_s": budget, "exit_code": proc.returncode,
        "stderr_tail": err.strip().splitlines()[-3:] if proc.returncode else [],
        "wall_s": round(wall, 1), "peak_mb": round(peak_mb), "goal_mb": GOAL_MB, "within_goal": peak_mb <= GOAL_MB,
        "n_trials": summary.get("n_trials"), "best_model": summary.get("best_model"),
        "validation_score": summary.get("validation_score"), "metric": summary.get("metric"),
        "validation": summary.get("validation"),
        "sampling_reported": {**_sampling_notes(summary, "summary."), **_sampling_notes(card, "model.json.")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--budget", type=float)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args()
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    budget = args.budget or (90.0 if args.quick else 300.0)
    result = run(rows, budget, args.format)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"memory{'-quick' if args.quick else ''}-{stamp}"
    out.parent.mkdir(exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str))
    lines = [f"# Memory: {rows:,} rows x 50 columns ({args.format}, {result['file_mb']} MB), budget {budget:g} s", "",
             "| peak MB (process tree) | goal MB | within | wall s | trials | best | score |", "|---|---|---|---|---|---|---|",
             f"| {result['peak_mb']:,} | {GOAL_MB:,} | {result['within_goal']} | {result['wall_s']} | {result['n_trials']} "
             f"| {result['best_model']} | {result['validation_score']} |", "",
             f"Exit code {result['exit_code']}. Validation: {result['validation']}.",
             f"What the engine says about rows/sampling: {json.dumps(result['sampling_reported'], default=str)}"]
    if result["stderr_tail"]:
        lines.append(f"stderr: {' / '.join(result['stderr_tail'])}")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
