"""Where a forecasting run's time goes (issue #20: a 60 s window that took 126 s): for each bench window
of the chosen sets, the seconds at which the search ended and each later phase (choice / ensemble,
refit, its fallback, intervals, bundle, test score, card, guardrails, chart, predict) took, and what
the run recorded (stopped_by, refit_fallback, the reserve at the search's end).

    python bench/forecast_timeline.py --budget 60 --only co2_mauna_loa_weekly [--out NAME]

Results go to bench/results/forecast-timeline-<budget>-<stamp>.{md,json}.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_forecast as bf  # noqa: E402
from automl_core.forecast import runner  # noqa: E402
from automl_core.search import loop  # noqa: E402

PHASES = ("_choose", "_final_refit", "refit", "_wait", "conformal_quantiles", "make_bundle", "score_test",
          "make_card", "check_forecast", "chart_frame")


class Timeline:
    """Wraps the runner's phase functions; records (phase, start, seconds) against the run's start."""

    def __init__(self) -> None:
        self.start, self.rows = time.perf_counter(), []
        for name in PHASES:  # the runner before and after issue #20's change name their phases differently
            if hasattr(runner, name):
                setattr(runner, name, self._timed(name, getattr(runner, name)))
        loop._warm = self._timed("worker start", loop._warm)

    def _timed(self, name: str, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.rows.append((name, round(t0 - self.start, 1), round(time.perf_counter() - t0, 1)))
        return wrapped

    def reset(self) -> None:
        self.start, self.rows = time.perf_counter(), []


def run(row: dict, budget: float, timeline: Timeline) -> list[dict]:
    from automl_core import AutoML
    name = bf.short_name(row["file"])
    _, h, _, _ = bf.PEERS[name]
    panel, _ = bf.panel_of(row)
    out = []
    for k, (train, window) in enumerate(bf.windows(panel, h)):
        events: list = []
        load = round(os.getloadavg()[0], 1)
        automl = AutoML(task="forecasting", time_column="ds", horizon=h, series_id=["unique_id"], metric="mase",
                        time_budget=budget, seed=0)
        timeline.reset()
        automl.fit(train, target="y", callbacks=[lambda e: events.append(e)])
        fit_end = time.perf_counter() - timeline.start
        automl.predict(window.drop(columns="y"))
        total = time.perf_counter() - timeline.start
        search_end = next((e.elapsed for e in events if e.kind == "refit_started"), None)
        trials = [t for t in automl.trials_ if t.family != "ensemble"]
        out.append({"dataset": name, "window": k, "load": load, "total": round(total, 1), "fit": round(fit_end, 1),
                    "search_end": search_end, "stopped_by": automl.search_.stopped_by,
                    "best": automl.best_trial_.family, "n_trials": len(trials),
                    "refit_fallback": automl.prepared_.facts.get("refit_fallback"),
                    "phases": list(timeline.rows),
                    "slow_trials": sorted(((t.family, round(t.fit_seconds, 1), t.status) for t in trials),
                                          key=lambda x: -x[1])[:6]})
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--only", required=True)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    timeline = Timeline()
    rows = [r for r in bf.datasets() if bf.short_name(r["file"]) in args.only.split(",")]
    results = [x for r in rows for x in run(r, args.budget, timeline)]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"forecast-timeline-{args.budget:g}s{args.label}-{stamp}"
    lines = [f"# Forecast run time line, {args.budget:g} s per window, {stamp}", "",
             f"Command: `python bench/forecast_timeline.py --budget {args.budget:g} --only {args.only}`; 2 cores, "
             "load (1 min) as each window started in the table.", "",
             "| set | window | load | total s | fit s | search end s | stopped by | best | fallback | phases (name @start +s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        phases = ", ".join(f"{n}@{s}+{d}" for n, s, d in r["phases"] if d >= 0.3)
        lines.append(f"| {r['dataset']} | {r['window']} | {r['load']} | {r['total']} | {r['fit']} | {r['search_end']} | "
                     f"{r['stopped_by']} | {r['best']} | {r['refit_fallback'] or ''} | {phases} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
