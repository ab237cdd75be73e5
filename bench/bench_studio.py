"""Studio bench (issue 3, last "Done when" bullet). Not a timed test: run it on a quiet machine.

    python bench/bench_studio.py            # full sizes (takes ~5 min on 2 cores)
    python bench/bench_studio.py --quick    # small sizes, only proves the script works

Targets: (a) upload + profile of a 100 MB CSV < 10 s; (b) first render of each page < 1 s with a
50k-row dataset loaded; (c) training with the live page open <= 5 % slower than without.

Protocol
(a) Upload. A CSV of >= 100 MB (quick: >= 5 MB) is built in a temp dir by repeating the data rows of
    ../shared/datasets/bank_marketing_train.csv. Its bytes are read once (the browser transfer is not
    measured), then timed: exactly what pages/data.py does for an upload -- ``ds.sniff`` (parse
    settings), ``ds.parse`` (``read_table`` with those settings), ``ds.columns_for`` (role inference),
    ``Store.add_dataset`` -- and what it does right after to show the dataset, ``Store.profile_dataset``.
    Each of 3 runs uses a fresh store (add_dataset dedups and profiles are cached); the store is
    opened before the clock starts, as a running server has it open. Median per part and of the total.
(b) Pages. A store (AUTOML_STORE=temp) holds diamonds.csv (53,940 rows; quick: 5,000) and one
    finished experiment on it (run_experiment, target price, time_budget 20 s; quick 5 s). Every
    measurement is a new session: ``AppTest.from_file(app.py)``; for the Data page the wizard state
    (dataset, target, task, experiment) is set and the first ``run()`` is timed; for the other pages
    an untimed first run shows the empty Data page, then the state is set, ``switch_page`` and the
    timed ``run()``. Time = script execution incl. AppTest's own overhead (that is "render" here; the
    browser's drawing is not). One untimed warm-up session pays imports first. 3 sessions per page:
    the first also fills process-wide caches (cold), the median is reported next to it.
(c) Training. run_experiment on bank_marketing_train.csv (target y, time_budget 30 s, quick 6 s,
    max_trials unset, seed 0), alternating without / with a poller, 2 runs each (--repeats). The
    poller is a thread in the same process (as the Streamlit server's page threads are) doing every
    1.5 s what pages/train.py's live fragment computes: get_experiment, trials, events(limit=8) and
    the studio.live / charts transforms. Streamlit's serialization and websocket traffic are not
    included. Budget is fixed, so slowdown = fewer trials: median trials per run each way, ratio.
Results: a table on stdout, bench/results/studio[-quick]-<UTC stamp>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from shared_data import DATASETS as SHARED  # noqa: E402  (tests' helpers: shared data path)
from studio_fixtures import APP, texts  # noqa: E402

from automl_core.config import AutoMLConfig  # noqa: E402
from automl_core.experiment import run_experiment  # noqa: E402
from storage import Store  # noqa: E402
from studio import datasets as ds  # noqa: E402

# AppTest's session_state, touched from this thread between runs, warns about a missing context
from streamlit.runtime.scriptrunner_utils import script_run_context  # noqa: E402
logging.getLogger(script_run_context.__name__).addFilter(lambda r: "ScriptRunContext" not in r.getMessage())
PAGES = ["data", "task", "configure", "train", "results", "experiments"]
POLL_SECONDS = 1.5  # pages/train.py POLL_SECONDS


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))


# --- (a) upload and profile ----------------------------------------------------------------------

def build_csv(path: Path, mb: float) -> int:
    lines = (SHARED / "bank_marketing_train.csv").read_bytes().splitlines(keepends=True)
    header, body = lines[0], b"".join(lines[1:])
    if not body.endswith(b"\n"):
        body += b"\n"
    with open(path, "wb") as fh:
        fh.write(header)
        while fh.tell() < mb * 2**20:
            fh.write(body)
    return path.stat().st_size


def bench_upload(tmp: Path, mb: float, runs: int = 3) -> dict:
    csv = tmp / "bank_big.csv"
    size = build_csv(csv, mb)
    data, name = csv.read_bytes(), csv.name
    parts = {k: [] for k in ("sniff", "read_table", "roles", "add_dataset", "profile", "total")}
    n_rows = 0
    for i in range(runs):
        store = Store(tmp / f"upload{i}" / "store.duckdb")
        t0 = time.perf_counter()
        s = ds.sniff(data, name)
        t1 = time.perf_counter()
        df = ds.parse(data, name, {"delimiter": s["delimiter"], "encoding": s["encoding"],
                                   "header": s["header"], "skip_rows": 0})
        t2 = time.perf_counter()
        columns = ds.columns_for(df)
        t3 = time.perf_counter()
        dataset_id = store.add_dataset(name, df, columns=columns, source=f"upload:{name}")
        t4 = time.perf_counter()
        store.profile_dataset(dataset_id)
        t5 = time.perf_counter()
        for k, v in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
            parts[k].append(v)
        n_rows = len(df)
        store.close()
        del df
    return {"csv_mb": size / 2**20, "rows": n_rows, "runs_s": parts, "median_s": {k: med(v) for k, v in parts.items()}}


# --- (b) first render of each page ----------------------------------------------------------------

def page_store(tmp: Path, rows: int | None, budget: float) -> dict:
    """The store the pages see: diamonds (50k rows) and one finished experiment on it."""
    os.environ["AUTOML_STORE"] = str(tmp / "pages" / "store.duckdb")
    df = pd.read_csv(SHARED / "diamonds.csv")
    df = df.head(rows) if rows else df
    store = Store(os.environ["AUTOML_STORE"])
    dataset_id = store.add_dataset("diamonds.csv", df, columns=ds.columns_for(df), source="upload:diamonds.csv")
    out = run_experiment(store, df, "price", AutoMLConfig(time_budget=budget), dataset_id=dataset_id)
    assert out.status == "completed", out.error
    return {"dataset_id": dataset_id, "target": "price", "task": "auto", "task_effective": "regression",
            "ready": True, "experiment_id": out.experiment_id, "rows": len(df)}


def render_once(page: str, wiz: dict) -> float:
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=300)
    if page != "data":
        at.run()
        at.switch_page(f"pages/{page}.py")
    at.session_state["wizard"] = {k: v for k, v in wiz.items() if k != "rows"}
    t0 = time.perf_counter()
    at.run()
    took = time.perf_counter() - t0
    if at.exception or "Something went wrong" in texts(at):
        raise RuntimeError(f"page {page} failed: {at.exception or texts(at)}")
    return took


def bench_pages(tmp: Path, rows: int | None, budget: float, runs: int = 3) -> dict:
    wiz = page_store(tmp, rows, budget)
    from streamlit.testing.v1 import AppTest
    AppTest.from_file(APP, default_timeout=300).run()  # warm-up: imports, store open
    times = {p: [] for p in PAGES}
    for _ in range(runs):
        for p in PAGES:
            times[p].append(render_once(p, wiz))
    return {"rows": wiz["rows"], "runs_s": times, "cold_s": {p: t[0] for p, t in times.items()},
            "median_s": {p: med(t) for p, t in times.items()}}


# --- (c) training with the live page open ---------------------------------------------------------

def poll_live(store: Store, experiment_id: str, stop: threading.Event, latencies: list[float]) -> None:
    """What the live fragment of pages/train.py computes every POLL_SECONDS (minus st.* drawing)."""
    from studio import live
    from studio.charts import best_score_chart
    while not stop.wait(POLL_SECONDS):
        t0 = time.perf_counter()
        exp = store.get_experiment(experiment_id)
        trials = store.trials(experiment_id)
        metric = exp.get("metric") or ""
        live.progress(exp, len(trials))
        live.leaderboard(trials, metric).head(50)
        best_score_chart(live.best_over_time(trials, metric), metric)
        live.events_frame(store.events(experiment_id, limit=8))
        live.failed_trials(trials)
        live.elapsed_seconds(exp)
        latencies.append(time.perf_counter() - t0)


def bench_training(tmp: Path, budget: float, repeats: int) -> dict:
    df = pd.read_csv(SHARED / "bank_marketing_train.csv")
    runs = []
    for i in range(repeats):
        for polled in (False, True):
            store = Store(tmp / f"train{i}{int(polled)}" / "store.duckdb")
            config = AutoMLConfig(time_budget=budget, seed=0)
            # created first, as studio.jobs.JobRegistry.start does, so the live page can show it at once
            experiment_id = store.create_experiment("y (auto)", dataset_id=None, task="auto", metric="auto",
                                                    config={**config.to_dict(), "target": "y"})
            stop, latencies = threading.Event(), []
            poller = threading.Thread(target=poll_live, args=(store, experiment_id, stop, latencies), daemon=True)
            if polled:
                poller.start()
            t0 = time.perf_counter()
            out = run_experiment(store, df, "y", config, experiment_id=experiment_id)
            wall = time.perf_counter() - t0
            stop.set()
            if polled:
                poller.join()
            trials = store.trials(out.experiment_id)
            rec = {"polled": polled, "status": out.status, "trials": len(trials), "wall_s": wall,
                   "ok_trials": int((trials["status"] == "ok").sum()) if len(trials) else 0, "polls": len(latencies),
                   "poll_ms_median": 1000 * med(latencies) if latencies else None}
            runs.append(rec)
            print(f"  (c) {'with poller' if polled else 'alone      '} run {i + 1}: {rec['trials']} trials, "
                  f"{wall:.1f} s, {rec['polls']} polls", flush=True)
            store.close()
    alone = med([r["trials"] for r in runs if not r["polled"]])
    polled = med([r["trials"] for r in runs if r["polled"]])
    return {"budget_s": budget, "runs": runs, "median_trials_alone": alone, "median_trials_polled": polled,
            "ratio": polled / alone if alone else None}


# --- report ---------------------------------------------------------------------------------------

def table(res: dict, quick: bool) -> list[tuple[str, str, str, str]]:
    def verdict(ok: bool) -> str:
        return "(quick)" if quick else ("PASS" if ok else "FAIL")
    a, b, c = res["upload"], res["pages"], res["training"]
    rows = [(f"(a) {k}", f"{v:.2f} s", "", "") for k, v in a["median_s"].items() if k != "total"]
    rows.append((f"(a) upload+profile {a['csv_mb']:.0f} MB, {a['rows']:,} rows", f"{a['median_s']['total']:.2f} s",
                 "< 10 s", verdict(a["median_s"]["total"] < 10)))
    for p in PAGES:
        rows.append((f"(b) first render {p} ({b['rows']:,} rows; cold {b['cold_s'][p]:.2f} s)",
                     f"{b['median_s'][p]:.2f} s", "< 1 s", verdict(b["median_s"][p] < 1)))
    r = c["ratio"]
    polls = [x["poll_ms_median"] for x in c["runs"] if x["poll_ms_median"] is not None]
    rows.append((f"(c) trials in {c['budget_s']:.0f} s: alone / polled (poll {med(polls) if polls else 0:.0f} ms)",
                 f"{c['median_trials_alone']:g} / {c['median_trials_polled']:g}", "", ""))
    rows.append(("(c) throughput ratio polled / alone", "n/a" if r is None else f"{r:.3f}", ">= 0.95",
                 verdict(r is not None and r >= 0.95)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (5 MB CSV, 5k rows, short budgets)")
    parser.add_argument("--repeats", type=int, default=2, help="training runs each way for (c)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    q = args.quick
    meta = {"quick": q, "when": datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S"), "cores": os.cpu_count(),
            "load_avg_at_start": os.getloadavg(), "python": platform.python_version(), "machine": platform.platform(),
            "packages": {p: version(p) for p in ("streamlit", "duckdb", "pandas", "pyarrow", "numpy",
                                                 "scikit-learn", "lightgbm", "plotly")}}
    res: dict = {"meta": meta}
    with tempfile.TemporaryDirectory(prefix="bench-studio-") as tmp_name:
        tmp = Path(tmp_name)
        print("(a) upload and profile…", flush=True)
        res["upload"] = bench_upload(tmp, 5 if q else 100)
        print("(b) page renders…", flush=True)
        res["pages"] = bench_pages(tmp, 5000 if q else None, 5 if q else 20)
        print("(c) training with and without the live page…", flush=True)
        res["training"] = bench_training(tmp, 6 if q else 30, args.repeats)
    rows = table(res, q)
    widths = [max(len(r[i]) for r in rows + [("measure", "median", "target", "verdict")]) for i in range(4)]
    for r in [("measure", "median", "target", "verdict"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"studio{'-quick' if q else ''}-{meta['when']}"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str))
    md = ["| measure | median | target | verdict |", "|---|---|---|---|"] + ["| " + " | ".join(r) + " |" for r in rows]
    (out / f"{stem}.md").write_text(f"# Studio bench{' (quick)' if q else ''}, {meta['when']}\n\n"
                                    f"```\n{json.dumps(meta, indent=1)}\n```\n\n" + "\n".join(md) + "\n")
    print(f"written {out / stem}.json and .md")


if __name__ == "__main__":
    main()
