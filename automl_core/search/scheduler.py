"""Which model family to try next.

First the warm-start portfolio, in order (fast baselines first, so the leaderboard has a model within
seconds). Then the family with the lowest estimated cost of improving on the best score, in the
spirit of FLAML's cost-frugal search: cheap families that are close to the best, or still improving,
are tried more often. Within a family Optuna's seeded, multivariate TPE proposes hyperparameters; a
family the portfolio does not hold starts from its ``defaults``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import optuna

from ..models.families import ModelFamily
from ..prepare.schema import Task

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class FamilyState:
    """What the search knows about one family. ``update`` is its only mutator."""

    family: ModelFamily
    study: optuna.Study
    n_trials: int = 0
    n_failed: int = 0
    best_loss: float = math.inf
    since_improvement: int = 0
    seconds: float = 0.0
    pending: dict[int, optuna.trial.Trial] = field(default_factory=dict)

    def update(self, trial_id: int, loss: float | None, seconds: float, low_fidelity: bool = False) -> None:
        ask = self.pending.pop(trial_id, None)
        self.n_trials += 1
        self.seconds += seconds
        if low_fidelity and ask is not None:
            # A score on a row sample is not comparable with full-data scores: TPE does not learn
            # from it, but the family's best still tells the scheduler which families are promising.
            self.study.tell(ask, state=optuna.trial.TrialState.FAIL)
            ask = None
        if loss is None or not math.isfinite(loss):
            self.n_failed += 1
            self.since_improvement += 1
            if ask is not None:
                self.study.tell(ask, state=optuna.trial.TrialState.FAIL)
            return
        if ask is not None:
            self.study.tell(ask, loss)
        if loss < self.best_loss - 1e-12:
            self.best_loss = loss
            self.since_improvement = 0
        else:
            self.since_improvement += 1

    def mean_seconds(self, deterministic: bool) -> float:
        if deterministic or self.n_trials == 0:
            return self.family.relative_cost
        return max(self.seconds / self.n_trials, 0.05)


class Scheduler:
    def __init__(self, families: list[ModelFamily], task: Task, portfolio: dict[str, list[dict[str, Any]]],
                 seed: int, deterministic: bool, warm_start: list[tuple[str, dict[str, Any]]] = (),
                 portfolio_order: list[tuple[str, int]] | None = None,
                 fold_shape: tuple[float, int, int] | None = None,
                 lead: tuple[tuple[str, ...], int] = ((), 0)) -> None:
        """``fold_shape``: (training rows per fold, features, fits per trial: folds x one-vs-rest heads), which
        prices a family's first trial by its ``fit_seconds`` before any of its trials has been measured.
        ``lead``: (families, trials): right after the given warm starts, that many trials picked among those
        families (cheapest route to improvement first) before the portfolio's warm starts."""
        self.task = task
        self.deterministic = deterministic
        self.fold_shape = fold_shape
        self.states = {}
        for i, family in enumerate(families):
            sampler = optuna.samplers.TPESampler(seed=seed + i, multivariate=True, n_startup_trials=4)
            self.states[family.name] = FamilyState(family, optuna.create_study(direction="minimize", sampler=sampler))
        # Given configurations first (a resumed run's best), then the portfolio in its recorded order
        # (cheapest first, see bench/mine_portfolio.py), else level by level across families.
        self.warm: list[tuple[str, dict[str, Any]]] = [(f, p) for f, p in warm_start if f in self.states]
        self.given_left = len(self.warm)
        self.lead_families = tuple(f for f in lead[0] if f in self.states)
        self.lead_left = lead[1] if self.lead_families else 0
        configs = {f.name: portfolio.get(f.name, []) for f in families}
        order = [(f, level) for f, level in (portfolio_order or []) if f in configs and level < len(configs[f])]
        depth = max((len(c) for c in configs.values()), default=0)
        order += [(f.name, level) for level in range(depth) for f in families
                  if level < len(configs[f.name]) and (f.name, level) not in order]
        self.warm += [(f, configs[f][level]) for f, level in order]

    def next(self, trial_id: int, fits: Callable[[str], bool] = lambda family: True
             ) -> tuple[str | None, dict[str, Any] | None]:
        """The family and hyperparameters of the next trial, among families whose trials ``fits``
        (is expected to finish in the time left); (None, None) when none does."""
        while self.warm and not fits(self.warm[0][0]):
            self.warm.pop(0)  # a warm start too slow for the time left
            self.given_left = max(0, self.given_left - 1)
        lead = self._lead(fits) if self.given_left == 0 and self.lead_left > 0 else None
        if lead is not None:
            self.lead_left -= 1
            name, state = lead, self.states[lead]
        elif self.warm:
            self.given_left = max(0, self.given_left - 1)
            name, params = self.warm.pop(0)
            state = self.states[name]
            state.study.enqueue_trial(params, skip_if_exists=False)
        else:
            name = self._pick(fits)
            if name is None:
                return None, None
            state = self.states[name]
            if state.n_trials == 0 and not state.pending and state.family.defaults is not None:
                # a family the portfolio does not hold starts from its defaults, not a random point
                state.study.enqueue_trial(state.family.defaults, skip_if_exists=False)
        ask = state.study.ask()
        params = state.family.space(ask, self.task)
        state.pending[trial_id] = ask
        return name, params

    def _lead(self, fits: Callable[[str], bool]) -> str | None:
        """A lead family's next trial (``lead``), or None (and no more lead trials) when none fits."""
        name = self._pick(lambda family: family in self.lead_families and fits(family))
        if name is None:
            self.lead_left = 0
        return name

    def _pick(self, fits: Callable[[str], bool]) -> str | None:
        best = min(s.best_loss for s in self.states.values())
        scale = abs(best) if math.isfinite(best) and best != 0 else 1.0

        def eci(state: FamilyState) -> float:
            if state.n_trials == 0:
                return 0.0
            if not math.isfinite(state.best_loss):
                return math.inf if state.n_failed >= 3 else state.mean_seconds(self.deterministic) * 4
            gap = max(0.0, state.best_loss - best) / scale
            return state.mean_seconds(self.deterministic) * (1 + state.since_improvement) * (1 + 20 * gap)

        ranked = sorted(self.states.values(), key=lambda s: (eci(s), s.family.name))
        return next((s.family.name for s in ranked if math.isfinite(eci(s)) and fits(s.family.name)), None)

    @property
    def exhausted(self) -> bool:
        return False  # TPE can always propose another configuration

    def in_warm_round(self, n_asked: int) -> bool:
        """Whether the next trial is in the first round of warm starts (about one per family),
        which large data fits on a row sample."""
        leading = self.given_left == 0 and self.lead_left > 0  # lead trials are searched on every row
        return bool(self.warm) and n_asked < len(self.states) and not leading

    def tell(self, family: str, trial_id: int, loss: float | None, seconds: float,
             low_fidelity: bool = False) -> None:
        self.states[family].update(trial_id, loss, seconds, low_fidelity)

    def trial_seconds(self, family: str) -> float | None:
        """Expected seconds of the family's next trial: its measured mean, else its cost model on the fold's
        shape (a kernel SVM on 50,000 rows is not started to be killed at the budget's end), else unknown."""
        state = self.states[family]
        if self.deterministic:
            return None
        if state.n_trials:
            return state.seconds / state.n_trials
        if state.family.fit_seconds is not None and self.fold_shape is not None:
            rows, features, fits = self.fold_shape
            return state.family.fit_seconds(int(rows), int(features)) * fits
        return None
