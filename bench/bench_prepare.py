"""Preparing data: reading roles and featurizing, at the sizes that used to be timed tests. Not a timed
test: run it on a quiet machine; medians of 3 runs.

    python bench/bench_prepare.py

Cases (made here from a seeded generator, as the former tests did):
- roles, 1,000,000 rows x 5 columns (id, number, category, numbers as text, date text): clean_frame +
  infer_roles; goal < 20 s.
- featurize, 200,000 rows x 50 mixed columns (30 numeric with 5 % missing, 15 categorical, 4 high
  cardinality, 1 date): build_featurizer(...).fit_transform; goal < 60 s.
- wide, 40 rows x 10,000 numeric columns (the hostile corpus's wide.csv): roles + featurize + the
  leakage probe, the parts of a run that walk every column.
Results: a table on stdout, bench/results/prepare-<UTC stamp>.json and .md.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from automl_core.prepare.roles import clean_frame, infer_roles  # noqa: E402
from automl_core.prepare.featurize import build_featurizer  # noqa: E402
from automl_core.prepare.schema import ColumnInfo, Role as R  # noqa: E402


def million_rows() -> pd.DataFrame:
    n = 1_000_000
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "row": np.arange(n), "x": rng.normal(size=n), "cat": rng.choice(["a", "b", " c ", "?"], n),
        "num_str": pd.Series(rng.integers(0, 100, n).astype(str), dtype="str"),
        "when": pd.Series(pd.date_range("2000-01-01", periods=n, freq="min")).dt.strftime("%Y-%m-%d %H:%M:%S")})


def mixed_frame() -> tuple[pd.DataFrame, dict, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 200_000
    data, roles = {}, {}
    for i in range(30):
        data[f"n{i}"], roles[f"n{i}"] = np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)), R.NUMERIC
    for i in range(15):
        data[f"c{i}"], roles[f"c{i}"] = rng.choice(["a", "b", "c", "d", " e", "?"], n), R.CATEGORICAL
    for i in range(4):
        data[f"h{i}"], roles[f"h{i}"] = rng.integers(0, 5000, n).astype(str), R.HIGH_CARDINALITY
    data["d"], roles["d"] = pd.Series(pd.date_range("2020-01-01", periods=n, freq="min")).astype(str), R.DATETIME
    return pd.DataFrame(data), roles, rng.integers(0, 2, n)


def infos(X: pd.DataFrame, roles: dict) -> list[ColumnInfo]:
    return [ColumnInfo(c, r, str(X[c].dtype), int(X[c].isna().sum()), int(X[c].nunique())) for c, r in roles.items()]


EXPECTED = {"row": R.ID, "x": R.NUMERIC, "cat": R.CATEGORICAL, "num_str": R.NUMERIC, "when": R.DATETIME}


def roles_of(frame: pd.DataFrame) -> None:
    clean, report = clean_frame(frame)
    found = {c.name: c.role for c in infer_roles(clean, report=report)}
    if found != EXPECTED:
        raise SystemExit(f"roles of the million-row table changed: {found}")


def timed(fn, runs: int = 3) -> float:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def wide_case() -> float:
    from automl_core.config import AutoMLConfig
    from automl_core.prepare.tables import prepare
    from automl_core.understand.leakage import probe
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 10_000)), columns=[f"c{i}" for i in range(10_000)])
    X["target"] = rng.choice(["a", "b"], 40)

    def run() -> None:
        prepared = prepare(X, "target", AutoMLConfig(task="binary"))
        build_featurizer(prepared.columns).fit_transform(prepared.X, prepared.y)
        probe(prepared)
    return timed(run)


def main() -> None:
    big = million_rows()
    X, roles, y = mixed_frame()
    rows = [
        {"case": "roles, 1,000,000 x 5", "goal_s": 20,
         "median_s": timed(lambda: roles_of(big))},
        {"case": "featurize, 200,000 x 50", "goal_s": 60,
         "median_s": timed(lambda: build_featurizer(infos(X, roles)).fit_transform(X, y))},
        {"case": "wide, 40 x 10,000: roles + featurize + leakage probe", "goal_s": None, "median_s": wide_case()},
    ]
    table = pd.DataFrame(rows)
    table["median_s"] = table["median_s"].round(2)
    print(table.to_string(index=False))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"when": stamp, "cores": os.cpu_count(), "load_average_at_end": os.getloadavg()}
    (out / f"prepare-{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / f"prepare-{stamp}.md").write_text(f"# Preparing data, {stamp}\n\n{json.dumps(meta)}\n\n"
                                             + table.to_markdown(index=False) + "\n")


if __name__ == "__main__":
    main()
