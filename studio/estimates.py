"""Rough numbers for the Configure page: a default time budget and how many trials might fit.

They are guides for people, not promises: the search adapts to the real trial times.
"""
from __future__ import annotations

import os

# Cells (rows x columns) one core featurizes and fits per second for a default LightGBM trial,
# measured loosely on this class of machine; only the order of magnitude matters here.
_CELLS_PER_SECOND = 150_000
_MIN_TRIAL_SECONDS = 1.0
# Worker start-up and data preparation before the first trial (seen: ~10 s on 2 busy cores).
_STARTUP_SECONDS = 10.0


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


def estimate_trials(n_rows: int, n_cols: int, budget_seconds: float, n_folds: int, cores: int | None = None) -> int:
    """About how many trials fit in the budget (each trial fits one model per validation fold)."""
    cores = cores or os.cpu_count() or 1
    per_fit = max(_MIN_TRIAL_SECONDS, n_rows * max(n_cols, 1) / _CELLS_PER_SECOND)
    per_trial = per_fit * max(n_folds, 1)
    usable = max(0.0, budget_seconds * 0.85 - _STARTUP_SECONDS)  # 15 % goes to the final refit
    return max(1, int(usable * cores / per_trial))
