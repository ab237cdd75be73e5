"""Rough numbers for the Configure page: a default time budget and how many trials might fit.

They are guides for people, not promises: the search adapts to the real trial times.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

# The part of the budget the search gets: the rest goes to ensembles and the final refit.
_SEARCH_SHARE = 0.85


def default_budget(n_rows: int, n_cols: int) -> int:
    """A time budget in seconds that suits the table's size (small tables need little time)."""
    cells = n_rows * max(n_cols, 1)
    if cells < 100_000:
        return 60
    if cells < 1_000_000:
        return 120
    if cells < 10_000_000:
        return 300
    return 900


def measured_rate(trials: list[pd.DataFrame]) -> tuple[float, int] | None:
    """Trials finished per second of search in earlier runs, and how many runs it comes from.

    Each frame is one run's trials (the store's ``started_at``/``finished_at`` are seconds since its
    search began). A formula from the table's size was 10-40x off in practice (linear models and
    small trees take a fraction of a second, successive halving fits on samples), so only measured
    speed on this dataset makes a number worth showing.
    """
    done, seconds, runs = 0, 0.0, 0
    for frame in trials:
        ok = frame[frame["status"] == "ok"] if "status" in frame else frame
        span = float(frame["finished_at"].max()) if len(frame) and frame["finished_at"].notna().any() else 0.0
        if len(ok) and span > 0:
            done, seconds, runs = done + len(ok), seconds + span, runs + 1
    return (done / seconds, runs) if runs else None


def trials_hint(budget_seconds: float, rate: tuple[float, int] | None) -> str:
    """What Configure says about how many trials fit in ``budget_seconds``."""
    if rate is None:
        return (f"How many models fit in {budget_seconds:,.0f} s depends on their kinds (a linear model takes a "
                "fraction of a second, a large boosted one many); the Train page counts them live, and the next "
                "run here is estimated from this one's speed.")
    per_second, runs = rate
    n = max(1, round(per_second * budget_seconds * _SEARCH_SHARE))
    return (f"≈ {n:,} trial{'s' if n != 1 else ''} fit{'s' if n == 1 else ''} in {budget_seconds:,.0f} s, at the speed of {runs} earlier run(s) on this "
            "dataset (other settings change it; the search adapts).")


def past_trials(store: Any, dataset_id: str, task: str, limit: int = 3) -> list[pd.DataFrame]:
    """The trials of the latest finished runs of ``task`` on ``dataset_id`` (at most ``limit`` runs)."""
    history = store.list_experiments(dataset_id)
    done = history[history["status"].isin(("completed", "stopped")) & (history["task"] == task)]
    return [store.trials(str(i)) for i in done["experiment_id"].head(limit)]
