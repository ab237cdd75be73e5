"""The time line of a timed run on small tables: when the first trial starts and finishes, what each trial
costs, how many finish in the budget, and when the search hands over to ensembles and the refit (issue #25).

    python bench/first_result_timeline.py wine,digits --budget 30 --repeats 3 --before ../base-tree --out

Each run is its own process (``--one``), so a run never inherits a warm worker pool or import cache from the
one before. With ``--before TREE`` (a checkout of the engine to compare against, e.g. ``git worktree add``)
the runs alternate before / after per set and repeat, so both see the same load; speed is read as the ratio
of the two medians, never as absolute seconds (the machine is shared). Sets by stem: peers.md's bundled sets
and the wide collection (bench/collection.py).
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


def one(stem: str, budget: float) -> dict:
    """One timed run of the engine found first on sys.path; its time line as a dict."""
    import warnings
    from automl_core import AutoML  # the tree under test (PYTHONPATH), before bench/ adds this repository
    sys.path.insert(1, str(REPO / "bench"))
    from bench_engine import datasets, split
    from same_search import METRIC_OF, _test_score, collection_rows
    warnings.filterwarnings("ignore")
    rows = [r for r in datasets(bundled=True) if Path(r["file"]).stem == stem] or collection_rows([stem])
    row = rows[0]
    with tempfile.TemporaryDirectory() as tmp:
        _, _, train, test = split(row, Path(tmp))
    target, task = row["target"], row["task"]
    events: list[dict] = []

    def record(event) -> None:
        t = event.trial
        events.append({"kind": event.kind, "at": event.elapsed, "trial": t.trial_id if t else event.payload.get("trial_id"),
                       "family": t.family if t else event.payload.get("family"),
                       "status": t.status if t else None, "fit_seconds": round(t.fit_seconds, 3) if t else None})

    automl = AutoML(time_budget=budget, seed=0, task=task, metric=METRIC_OF[task])
    automl.fit(train, target=target, callbacks=[record])
    classes = None if task == "regression" else sorted(train[target].unique().tolist())
    test_score = _test_score(automl.model_, test.drop(columns=target), test[target], task, classes)
    finished = [e for e in events if e["kind"] == "trial_finished" and e["status"] == "ok"
                and e["family"] not in ("ensemble", "stacking")]
    started = [e for e in events if e["kind"] == "trial_started"]
    at = {e["kind"]: e["at"] for e in reversed(events)}  # the first of each kind
    return {"set": stem, "rows": len(train), "budget": budget, "prepared_at": at.get("experiment_started"),
            "first_start_at": started[0]["at"] if started else None,
            "first_result_at": finished[0]["at"] if finished else None, "trials_ok": len(finished),
            "timeouts": sum(e["kind"] == "trial_finished" and e["status"] == "timeout" for e in events),
            "refit_at": at.get("refit_started"), "end_at": round(automl.wall_seconds_, 3),
            "final": automl.best_trial_.family, "test": test_score, "metric": METRIC_OF[task],
            "load": os.getloadavg()[0], "events": events}


def run(tree: Path, stem: str, budget: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # loky workers import the same tree
    out = subprocess.run([sys.executable, __file__, stem, "--one", "--budget", str(budget)], env=env, cwd=tree,
                         capture_output=True, text=True, timeout=budget * 4 + 120)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{stem} in {tree} failed: {out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", help="comma-separated dataset stems")
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", type=Path, help="a checkout of the engine to alternate with this one")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", action="store_true", help="write bench/results/first-result-*.md/.json")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.sets, args.budget), default=float), flush=True)
        return
    trees = {"after": REPO} if args.before is None else {"before": args.before.resolve(), "after": REPO}
    runs = []
    for stem in args.sets.split(","):
        for rep in range(args.repeats):
            order = list(trees.items()) if rep % 2 == 0 else list(reversed(trees.items()))
            for name, tree in order:
                rec = {"tree": name, "repeat": rep, **run(tree, stem, args.budget)}
                runs.append(rec)
                print(json.dumps({k: v for k, v in rec.items() if k != "events"}, default=float), flush=True)
    lines = summary(runs, list(trees))
    print("\n".join(lines))
    if args.out:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        name = REPO / "bench" / "results" / f"first-result-{int(args.budget)}s-{stamp}"
        name.with_suffix(".json").write_text(json.dumps({"budget": args.budget, "summary": lines, "runs": runs},
                                                        indent=1, default=float))
        name.with_suffix(".md").write_text(f"# First result and trials per budget, {args.budget:.0f} s, {stamp}\n\n"
                                           + "\n".join(f"- {line}" for line in lines) + "\n")


def summary(runs: list[dict], trees: list[str]) -> list[str]:
    """Per set: the medians of first-result seconds and trials finished per tree, and after/before ratios."""
    lines = []
    for stem in dict.fromkeys(r["set"] for r in runs):
        med = {}
        for tree in trees:
            mine = [r for r in runs if r["set"] == stem and r["tree"] == tree]
            med[tree] = {k: statistics.median(r[k] for r in mine if r[k] is not None)
                         for k in ("prepared_at", "first_result_at", "trials_ok", "timeouts", "test", "load")}
        text = "; ".join(f"{t}: first result {m['first_result_at']:.1f} s, {m['trials_ok']:.0f} trials ok, {m['timeouts']:.0f} timed out, "
                         f"test {m['test']:.4f}, load {m['load']:.1f}" for t, m in med.items())
        if "before" in med:
            b, a = med["before"], med["after"]
            text += (f"; after/before: first result x{a['first_result_at'] / b['first_result_at']:.2f}, "
                     f"trials x{a['trials_ok'] / max(b['trials_ok'], 1):.2f}")
        lines.append(f"{stem}: {text}")
    return lines


if __name__ == "__main__":
    main()
