"""Which forecasting configuration to try next, for the engine's one search loop.

A resumed run's best configurations first, then the portfolio in its order (simple baselines, lag
models, statistical models: ``families.portfolio``), then LightGBM-on-lags configurations sampled at
random (seeded). It answers the loop the way the tabular ``Scheduler`` does (``next``, ``tell``,
``trial_seconds``, ``in_warm_round``), so every exit criterion, Stop, concurrency, Dask and per-trial
timeout means the same for forecasting as for tables.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import families

SAMPLED = "lgbm_lags"  # the family the search samples once the portfolio is done


class ForecastScheduler:
    def __init__(self, problem: families.Problem, n_rows: int, *, seed: int, deterministic: bool,
                 allowed: tuple[str, ...] | None = None, blocked: tuple[str, ...] = (),
                 warm_start: list[tuple[str, dict[str, Any]]] = (), n_series: int = 1, n_folds: int = 1) -> None:
        def ok(family: str) -> bool:
            return (not allowed or family in allowed) and family not in blocked

        default = families.portfolio(problem, n_rows)
        default += families.opt_in(allowed, default)
        self.queue = [(f, dict(p)) for f, p in [*warm_start, *default] if ok(f)]
        self.sampling = ok(SAMPLED)
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)
        self.seconds: dict[str, list[float]] = {}   # family -> seconds of each finished trial
        self.n_series, self.n_folds = n_series, n_folds

    @property
    def exhausted(self) -> bool:
        return not self.queue and not self.sampling

    def next(self, trial_id: int, fits: Callable[[str], bool] = lambda family: True
             ) -> tuple[str | None, dict[str, Any] | None]:
        """The next configuration whose family is expected to finish in the time left (``fits``)."""
        while self.queue and not fits(self.queue[0][0]):
            self.queue.pop(0)  # too slow for the time left
        if self.queue:
            return self.queue.pop(0)
        if self.sampling and fits(SAMPLED):
            return families.sample_params(self.rng)
        return None, None

    def tell(self, family: str, trial_id: int, loss: float | None, seconds: float,
             low_fidelity: bool = False) -> None:
        self.seconds.setdefault(family, []).append(seconds)

    def trial_seconds(self, family: str) -> float | None:
        done = self.seconds.get(family)
        if done and not self.deterministic:
            return float(np.mean(done))
        # before the family's first trial: its cost model (a fixed estimate, so trial counts stay reproducible)
        return families.expected_seconds(family, self.n_series, self.n_folds)

    def in_warm_round(self, n_asked: int) -> bool:
        return False  # forecasting trials always see the whole history
