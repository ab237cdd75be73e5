"""Search mechanics bench: trials per budget at 1 vs 2 concurrent trials, and how fast Stop takes effect.

    python bench/bench_search.py [--budget 20] [--repeats 3]

(a) The same budget on the same data with max_concurrent_trials 1 and 2, ensembles off: trials
    finished (median of ``--repeats`` runs, in this process, alternating so that drift hits both).
(b) Stop: the run is stopped 8 s in; seconds from the stop to the end of the search (the refit
    starting) and to ``fit`` returning. Target: the search ends within 2 s.
Run it with nothing else busy on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from automl_core import AutoML  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
SETS = [("breast_cancer_wisconsin.csv", "target"), ("wine_quality_white.csv", "quality"),
        ("bank_marketing_train.csv", "y")]


def trials_in_budget(df: pd.DataFrame, target: str, budget: float, concurrent: int) -> int:
    automl = AutoML(time_budget=budget, seed=0, max_concurrent_trials=concurrent, ensembles=False)
    return len(automl.fit(df, target=target).search_.trials)


def stop_latency(df: pd.DataFrame, target: str, after: float = 8.0) -> tuple[float, float]:
    stop = threading.Event()
    marks: dict[str, float] = {}

    def on_event(event) -> None:
        if event.kind == "refit_started":
            marks["search_end"] = time.perf_counter()

    timer = threading.Timer(after, lambda: (marks.setdefault("stop", time.perf_counter()), stop.set()))
    timer.start()
    AutoML(time_budget=120, seed=0).fit(df, target=target, callbacks=[on_event], stop_event=stop)
    returned = time.perf_counter()
    return marks["search_end"] - marks["stop"], returned - marks["stop"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for file, target in SETS:
        df = pd.read_csv(SHARED / file)
        counts: dict[int, list[int]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for n in (1, 2):
                counts[n].append(trials_in_budget(df, target, args.budget, n))
        stops = [stop_latency(df, target) for _ in range(args.repeats)]
        row = {"dataset": Path(file).stem, "rows": len(df), "budget_s": args.budget,
               "trials_1": statistics.median(counts[1]), "trials_2": statistics.median(counts[2]),
               "ratio_2_vs_1": round(statistics.median(counts[2]) / max(statistics.median(counts[1]), 1), 2),
               "runs_1": counts[1], "runs_2": counts[2],
               "stop_to_search_end_s": round(statistics.median(s for s, _ in stops), 2),
               "stop_to_return_s": round(statistics.median(r for _, r in stops), 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"when": stamp, "python": platform.python_version(), "cores": os.cpu_count(), "repeats": args.repeats}
    (out / f"search-{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in table.itertuples(index=False)]
    (out / f"search-{stamp}.md").write_text(f"# Search bench, {stamp}\n\n{json.dumps(meta)}\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
