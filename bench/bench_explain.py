"""Explanations and guardrails benchmark: what they add to a run, on the largest shared sets.

For each dataset: an ordinary search (``AutoML.fit`` with the given budget), then the steps
``run_experiment`` adds to it, each timed on its own: the data guardrails (run before the first
trial), the model guardrails and the explanations (SHAP on a row sample, or permutation importance)
written to their files. Goal (issue #6): on a 50k-row set (diamonds, 53,940 rows) these add < 15 s.
Run it with nothing else busy on the machine; results go to bench/results/explain-<budget>s-<time>.{json,md}.

    python bench/bench_explain.py [--budget 60] [--only diamonds,bank_marketing_train] [--no-record]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
DEFAULT = ("diamonds", "bank_marketing_train", "california_housing", "bike_sharing_hourly")
GOAL_SECONDS = 15.0
GOAL_DATASET = "diamonds"


def manifest() -> dict[str, dict[str, str]]:
    with open(SHARED / "MANIFEST.tsv", newline="") as fh:
        return {Path(r["file"]).stem: r for r in csv.DictReader(fh, delimiter="\t")}


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run_one(name: str, row: dict[str, str], budget: float) -> dict[str, object]:
    from automl_core import AutoML
    from automl_core.understand.explain import save_explanation
    from automl_core.understand.guardrails import check_data, check_model

    automl, fit_s = timed(AutoML(time_budget=budget, seed=0).fit, SHARED / row["file"], target=row["target"])
    p = automl.prepared_
    data_checks, data_s = timed(check_data, p, automl.config, automl.metric_, automl.validation_.description)
    model_checks, model_s = timed(check_model, automl.card_, p, automl.model_, automl.metric_)
    explanation, explain_s = timed(automl.explain)
    with tempfile.TemporaryDirectory() as tmp:
        _, save_s = timed(save_explanation, explanation, tmp)
    added = data_s + model_s + explain_s + save_s
    alerts = [g.name for g in [*data_checks, *model_checks] if g.status == "Alerted"]
    return {"dataset": name, "rows": len(p.X), "columns": len(p.columns), "task": p.task.value,
            "best_model": automl.best_trial_.family, "search_seconds": round(fit_s, 2),
            "data_guardrails_s": round(data_s, 2), "model_guardrails_s": round(model_s, 2),
            "explain_s": round(explain_s, 2), "save_s": round(save_s, 2), "added_s": round(added, 2),
            "method": explanation.method, "explained_rows": explanation.n_rows, "alerted": alerts}


def table(results: list[dict[str, object]]) -> str:
    head = ("| dataset | rows | best model | search s | data guardrails s | model guardrails s | explain s | "
            "added s | method (rows) | alerted |")
    lines = [head, "|" + "---|" * 10]
    for r in results:
        lines.append(f"| {r['dataset']} | {r['rows']:,} | {r['best_model']} | {r['search_seconds']} | "
                     f"{r['data_guardrails_s']} | {r['model_guardrails_s']} | {r['explain_s']} | **{r['added_s']}** | "
                     f"{r['method']} ({r['explained_rows']:,}) | {', '.join(r['alerted']) or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="search time budget per dataset (s)")
    parser.add_argument("--only", default=",".join(DEFAULT), help="comma-separated dataset names (file stems)")
    parser.add_argument("--no-record", action="store_true", help="print only; write nothing to bench/results")
    args = parser.parse_args()
    rows = manifest()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in rows]
    if unknown:
        sys.exit(f"unknown dataset(s): {', '.join(unknown)}; use file stems from MANIFEST.tsv")
    results = []
    for name in names:
        print(f"{name}: searching {args.budget:.0f} s, then guardrails and explanations…", flush=True)
        results.append(run_one(name, rows[name], args.budget))
        print(f"  added {results[-1]['added_s']} s ({results[-1]['method']})", flush=True)
    md = table(results)
    goal = next((r for r in results if r["dataset"] == GOAL_DATASET), None)
    verdict = ("" if goal is None else
               f"\nGoal: explanations and guardrails add < {GOAL_SECONDS:.0f} s on {GOAL_DATASET} "
               f"({goal['rows']:,} rows): {goal['added_s']} s -> {'PASS' if goal['added_s'] < GOAL_SECONDS else 'FAIL'}\n")
    print("\n" + md + "\n" + verdict)
    if args.no_record:
        return
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"explain-{args.budget:.0f}s-{stamp}"
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "machine": machine, "results": results}, indent=1))
    out.with_suffix(".md").write_text(f"# Explanations and guardrails: time added to a run\n\nSearch budget {args.budget:.0f} s "
                                      f"per dataset; {machine['cpus']} CPUs, Python {machine['python']}.\n\n{md}\n{verdict}")
    print(f"recorded {out.with_suffix('.md').relative_to(REPO)}")


if __name__ == "__main__":
    main()
