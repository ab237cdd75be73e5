"""Command seconds and first-trial seconds of the CLI's ``train`` on one table, two trees alternating.

    python bench/cli_timeline.py ../shared/datasets/bank_marketing_train.csv y --budget 20 --repeats 2 --before TREE

Each run is a fresh ``python -m automl_core train`` (the person's path: data checks, search, refit,
explanations) in the tree under test; the trees take turns per repeat so both see the same load. Per run:
the command's wall seconds, the run's own ``wall_seconds``, when the first trial finished
(``first_trial_s``, from the store), the refit's estimate and its actual seconds (refit_started ->
experiment_finished), and the 1-minute load before it. Summary: medians per tree and after/before ratios.
Results: bench/results/cli-timeline-<stem>-<UTC stamp>.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(tree: Path, data: str, target: str, budget: float) -> dict:
    """One CLI run in ``tree``; its timings read back from its store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.duckdb"
        load = os.getloadavg()[0]
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "automl_core", "train", str(Path(data).resolve()), "--target", target,
                              "--time-budget", str(budget), "--seed", "0", "--store", str(store), "--json", "--quiet"],
                             cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
        command = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        code = ("import json,sys; from storage import Store; s=Store(sys.argv[1]); e=sys.argv[2]; "
                "t=s.trials(e); v=s.events(e); print(json.dumps({'first': float(t['finished_at'].min()), "
                "'events': [[r.kind, float(r.elapsed), str(r.payload)] for r in v.itertuples()]}))")
        got = json.loads(subprocess.run([sys.executable, "-c", code, str(store), summary["experiment_id"]], cwd=tree,
                                        env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                                        check=True).stdout)
    at = {kind: (when, payload) for kind, when, payload in got["events"]}
    refit_at, refit_payload = at.get("refit_started", (None, ""))
    finished_at = at.get("experiment_finished", (None, ""))[0]
    return {"command_s": round(command, 2), "wall_s": summary["wall_seconds"], "first_trial_s": got["first"],
            "refit_s": None if refit_at is None else round(finished_at - refit_at, 2), "refit_payload": refit_payload[:200],
            "best_model": summary["best_model"], "n_trials": summary["n_trials"], "load": round(load, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("target")
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the engine to compare against")
    args = parser.parse_args()
    trees = [("before", args.before.resolve()), ("after", REPO)]
    runs = []
    for rep in range(args.repeats):
        for name, tree in (trees if rep % 2 == 0 else trees[::-1]):
            rec = {"tree": name, "repeat": rep, **run(tree, args.data, args.target, args.budget)}
            runs.append(rec)
            print(json.dumps(rec), flush=True)
    stem = Path(args.data).stem
    lines = [f"# CLI train on {stem}, {args.budget:.0f} s budget, {args.repeats} runs per tree (alternating)", "",
             "| tree | repeat | command s | run wall s | first trial s | refit s | best | trials | load before |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    lines += [f"| {r['tree']} | {r['repeat']} | {r['command_s']} | {r['wall_s']} | {r['first_trial_s']} | {r['refit_s']} "
              f"| {r['best_model']} | {r['n_trials']} | {r['load']} |" for r in runs]
    med = {name: {k: statistics.median(r[k] for r in runs if r["tree"] == name and r[k] is not None)
                  for k in ("command_s", "wall_s", "first_trial_s")} for name, _ in trees}
    lines += ["", *(f"- {name}: median command {m['command_s']:.1f} s, run {m['wall_s']:.1f} s, first trial "
                    f"{m['first_trial_s']:.2f} s" for name, m in med.items()),
              "- after/before: " + ", ".join(f"{k} x{med['after'][k] / med['before'][k]:.2f}" for k in med["after"])]
    text = "\n".join(lines) + "\n"
    print(text)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"cli-timeline-{stem}-{int(args.budget)}s-{stamp}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
