"""Kill-and-resume bench (issue 8): the timeline of a studio server SIGKILLed mid-run and brought back.

    python bench/bench_resume.py                 # bank marketing upload, 120 s budget, kill 40 s in
    python bench/bench_resume.py --quick         # iris sample, 40 s budget, kill 20 s in (proves it works)

Protocol. A studio server (own store in a temp dir, free port) is driven by headless Chromium through
the wizard: upload ../shared/datasets/bank_marketing_train.csv (target y; --quick: the iris sample),
time budget B, Start (t = 0). At t = K the server's whole process group gets SIGKILL (as the OOM killer
or a crash would). The store is opened to count the finished trials (and to check the status is still
'running' on disk), then closed; the server is started again and the browser opens the experiment's
Train page: the time until it shows Interrupted is measured from the restart command. Resume is
clicked; the time until Completed is measured. Finally the store is read again: every trial finished
before the kill must be there with the same score, and the run must have more trials.
Results: a table on stdout, bench/results/resume[-quick]-<UTC stamp>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from shared_data import DATASETS  # noqa: E402
from studio_server import (StudioServer, launch, start_sample_run, start_upload_run, trials_done,  # noqa: E402
                           wait_status)


def _store_trials(store_path: Path, experiment_id: str):
    from storage import Store

    with Store(store_path) as store:
        return store.get_experiment(experiment_id), store.trials(experiment_id)


def run(quick: bool, budget: int, kill_after: float) -> dict:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    server = StudioServer(tmp)
    timeline: dict[str, float] = {}
    url = server.start()
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(120_000)
        if quick:
            experiment_id = start_sample_run(page, url, budget=budget)
        else:
            experiment_id = start_upload_run(page, url, path=DATASETS / "bank_marketing_train.csv", target="y",
                                             budget=budget)
        t0 = time.monotonic()
        wait_status(page, ("Running",), 120)
        while time.monotonic() - t0 < kill_after:
            time.sleep(0.2)
        shown_before_kill = trials_done(page)
        timeline["killed_at"] = time.monotonic() - t0
        server.kill()
        exp, before = _store_trials(server.store, experiment_id)
        restart = time.monotonic()
        url = server.start()
        timeline["server_ready_after_restart"] = time.monotonic() - restart
        page.goto(f"{url}/train?experiment={experiment_id}")
        wait_status(page, ("Interrupted",), 120)
        timeline["interrupted_shown_after_restart"] = time.monotonic() - restart
        resume_label = page.locator(".st-key-resume_training button").inner_text()
        page.locator(".st-key-resume_training button").click()
        clicked = time.monotonic()
        final = wait_status(page, ("Completed", "Stopped", "Failed"), budget * 3 + 300)
        timeline["resume_done_after_click"] = time.monotonic() - clicked
        browser.close()
    server.stop()
    exp_after, after = _store_trials(server.store, experiment_id)
    kept = after.set_index("trial_id").reindex(before["trial_id"])
    # None when nothing had finished before the kill (kill later, --kill-after)
    intact = bool((kept["score"].to_numpy() == before["score"].to_numpy()).all()) if len(before) else None
    return {
        "dataset": "iris (sample)" if quick else "bank_marketing_train.csv", "budget_s": budget,
        "kill_after_s": kill_after, "experiment_id": experiment_id,
        "status_on_disk_after_kill": exp["status"], "trials_shown_before_kill": shown_before_kill,
        "trials_in_store_after_kill": len(before), "trials_intact_after_resume": intact,
        "trials_after_resume": len(after), "resume_button": resume_label, "final_status": final,
        "final_status_in_store": exp_after["status"],
        "timeline_s": {k: round(v, 2) for k, v in timeline.items()}, "store": str(server.store),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=int)
    parser.add_argument("--kill-after", type=float)
    args = parser.parse_args()
    budget = args.budget or (40 if args.quick else 120)
    kill_after = args.kill_after or (20.0 if args.quick else 40.0)
    result = run(args.quick, budget, kill_after)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"resume{'-quick' if args.quick else ''}-{stamp}"
    out.parent.mkdir(exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    t = result["timeline_s"]
    lines = [f"# Kill-and-resume ({result['dataset']}, budget {budget} s, SIGKILL at {t['killed_at']:.1f} s)", "",
             "| event | seconds |", "|---|---|",
             f"| SIGKILL after Start | {t['killed_at']:.1f} |",
             f"| server healthy after restart | {t['server_ready_after_restart']:.1f} |",
             f"| Interrupted shown after restart | {t['interrupted_shown_after_restart']:.1f} |",
             f"| Resume done after click | {t['resume_done_after_click']:.1f} |", "",
             f"Trials finished before the kill: {result['trials_in_store_after_kill']} in the store "
             f"(page showed {result['trials_shown_before_kill']}); all intact after resume: "
             f"{result['trials_intact_after_resume']}; after resume: {result['trials_after_resume']} "
             f"({result['final_status_in_store']}; the button said: {result['resume_button']})."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
