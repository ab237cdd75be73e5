"""Scoring bench (issue 7, "Done when"). Not a timed test: run it on a quiet machine.

    python bench/bench_predict.py            # 1M rows, 300 REST requests (~3 min on 2 cores)
    python bench/bench_predict.py --quick    # 100k rows, 40 requests: only proves the script works

Targets: batch scoring >= 100,000 rows/s for a LightGBM model on bank marketing; REST single-row
latency p50 < 20 ms on loopback.

Protocol
Model: LightGBM only (allowed_models=lightgbm, max_trials=3, seed 0) on all of
../shared/datasets/bank_marketing_train.csv, validated on bank_marketing_validation.csv, saved with
``AutoML.save`` (or ``--model DIR/model.joblib``).
Batch: the training rows (target dropped) repeated to N rows (1,000,000; quick 100,000), in memory.
Timed, 3 runs each, median: ``predict_frame`` (what CLI/page/REST score with: 100k-row batches,
featurize once, predict_proba, labels), and ``check_input`` (the report shown before scoring), and
their sum. Parts of ``predict_frame`` (featurizer alone, LightGBM alone) are timed once for the table.
Reading the file is not included (that is the reader's bench).
REST: ``python -m automl_core serve`` in a subprocess on a free loopback port; one httpx client with
keep-alive posts one JSON record (a test-file row) per request: 20 warm-up requests, then M (300;
quick 40), sequentially. Latency = client-side wall time per request: p50, p90, p99.
Results: a table on stdout, bench/results/predict[-quick]-<UTC stamp>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from shared_data import DATASETS as SHARED  # noqa: E402

from automl_core import AutoML  # noqa: E402
from automl_core.export.drift_checks import check_input  # noqa: E402
from automl_core.export.predict import load_model, predict_frame  # noqa: E402
from automl_core.io.reader import read_table  # noqa: E402


def _train(folder: Path) -> Path:
    warnings.simplefilter("ignore")
    train = read_table(SHARED / "bank_marketing_train.csv")
    valid = read_table(SHARED / "bank_marketing_validation.csv")
    automl = AutoML(time_budget=120, max_trials=3, allowed_models="lightgbm", ensembles=False, seed=0)
    automl.fit(train, target="y", validation_data=valid)
    return automl.save(folder)[0]


def _median_seconds(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_batch(model_path: Path, n_rows: int) -> dict:
    model, card = load_model(model_path)
    base = read_table(SHARED / "bank_marketing_train.csv").drop(columns="y")
    frame = pd.concat([base] * (n_rows // len(base) + 1), ignore_index=True).head(n_rows)
    predict_frame(model, card, frame.head(1000))  # warm-up: imports, first-call costs
    score = _median_seconds(lambda: predict_frame(model, card, frame))
    check = _median_seconds(lambda: check_input(frame, model, card))
    head, last = model[:-1], model[-1]
    start = time.perf_counter()
    Xt = head.transform(frame)
    featurize = time.perf_counter() - start
    start = time.perf_counter()
    last.predict_proba(Xt)
    lightgbm = time.perf_counter() - start
    return {"rows": n_rows, "score_s": score, "score_rows_per_s": n_rows / score, "check_s": check,
            "check_and_score_rows_per_s": n_rows / (score + check),
            "featurize_rows_per_s": n_rows / featurize, "lightgbm_rows_per_s": n_rows / lightgbm}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_rest(model_path: Path, n_requests: int) -> dict:
    import httpx
    record = json.loads(read_table(SHARED / "bank_marketing_test.csv").drop(columns="y").head(1).to_json(orient="records"))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "automl_core", "serve", "--model", str(model_path), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(240):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.25)
            for _ in range(20):
                client.post("/predict", json=record).raise_for_status()
            latencies = []
            for _ in range(n_requests):
                start = time.perf_counter()
                client.post("/predict", json=record).raise_for_status()
                latencies.append(1000 * (time.perf_counter() - start))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    q = statistics.quantiles(latencies, n=100)
    return {"requests": n_requests, "p50_ms": statistics.median(latencies), "p90_ms": q[89], "p99_ms": q[98]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", help="an existing model.joblib (default: train one)")
    args = parser.parse_args()
    n_rows, n_requests = (100_000, 40) if args.quick else (1_000_000, 300)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        model_path = Path(args.model) if args.model else _train(Path(tmp) / "model")
        batch = bench_batch(model_path, n_rows)
        rest = bench_rest(model_path, n_requests)
    rows = [("batch scoring (predict_frame)", f"{batch['score_rows_per_s']:,.0f} rows/s", ">= 100,000 rows/s"),
            ("  check report + scoring", f"{batch['check_and_score_rows_per_s']:,.0f} rows/s", ""),
            ("  featurizer alone", f"{batch['featurize_rows_per_s']:,.0f} rows/s", ""),
            ("  LightGBM predict_proba alone", f"{batch['lightgbm_rows_per_s']:,.0f} rows/s", ""),
            ("REST single row p50", f"{rest['p50_ms']:.1f} ms", "< 20 ms"),
            ("REST single row p90 / p99", f"{rest['p90_ms']:.1f} / {rest['p99_ms']:.1f} ms", "")]
    table = "| measure | value | goal |\n|---|---|---|\n" + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    print(table)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"predict{'-quick' if args.quick else ''}-{stamp}"
    meta = {"when": stamp, "python": platform.python_version(), "machine": platform.machine(), "quick": args.quick}
    out.with_suffix(".json").write_text(json.dumps({**meta, "batch": batch, "rest": rest}, indent=2))
    out.with_suffix(".md").write_text(f"# Scoring bench {stamp}{' (quick)' if args.quick else ''}\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
