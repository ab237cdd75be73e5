"""Import-time bench: what a cold interpreter pays to import the engine's entry points, and which heavy
libraries each one drags in (they should arrive only when a run needs them).

    python bench/bench_imports.py            # 5 cold runs per module, alternating
    python bench/bench_imports.py --runs 9

Protocol. Each module below is imported in a fresh ``python -c`` (a cold interpreter; the OS file cache is
warm after the first round), the modules taking turns round by round so that a load change hits them all
alike; the time is measured inside the child around the import alone. The table gives the median and the
ratio to ``import pandas`` measured in the same rounds (the baseline every run pays anyway), the load
(``os.getloadavg``) before and after, and which of :data:`HEAVY` each import loaded.
Results: a table on stdout, bench/results/imports-<UTC stamp>.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: Libraries that cost seconds to import and that a run needs only for some tables or stages.
HEAVY = ("skrub", "shap", "plotly", "onnx", "onnxruntime", "skl2onnx", "torch", "statsforecast", "mlforecast",
         "sentence_transformers", "lightgbm", "xgboost", "catboost", "optuna", "duckdb", "distributed", "polars")
#: The baseline first, then the engine's entry points (the CLI's train path imports experiment + storage).
MODULES = ("pandas", "automl_core", "automl_core.cli", "storage", "automl_core.automl", "automl_core.experiment",
           "automl_core.search.trial", "skrub")
CHILD = """
import sys, time
t = time.perf_counter()
import {module}
took = time.perf_counter() - t
print(took, ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def measure(module: str) -> tuple[float, list[str]]:
    """Seconds to import ``module`` in a fresh interpreter, and the heavy libraries it loaded."""
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD.format(module=module, heavy=HEAVY)],
                         capture_output=True, text=True, cwd=REPO, check=True).stdout.split()
    return float(out[0]), (out[1].split(",") if len(out) > 1 else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {m: [] for m in MODULES}
    loaded: dict[str, list[str]] = {}
    for _ in range(args.runs):
        for module in MODULES:
            seconds, heavy = measure(module)
            times[module].append(seconds)
            loaded[module] = heavy
    load_after = os.getloadavg()[0]
    base = statistics.median(times["pandas"])
    rows = [{"module": m, "median_s": round(statistics.median(t), 3), "vs_pandas": round(statistics.median(t) / base, 2),
             "runs": [round(x, 3) for x in t], "heavy_loaded": loaded[m]} for m, t in times.items()]
    lines = [f"# Import times, median of {args.runs} cold runs (under load {load_before:.1f} -> {load_after:.1f})", "",
             "| module | median s | x import pandas | heavy libraries loaded |", "|---|---:|---:|---|"]
    lines += [f"| {r['module']} | {r['median_s']:.2f} | {r['vs_pandas']:.2f} | {', '.join(r['heavy_loaded']) or '-'} |"
              for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"imports-{stamp}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"runs": args.runs, "load": [load_before, load_after],
                                                    "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
