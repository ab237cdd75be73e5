"""What an experiment learns about its data and model besides the model itself: guardrails and
explanations, recorded in the store while the experiment runs (``run_experiment`` wires them in).

Data guardrails run before the search starts and are stored at once, so the live page shows them;
model guardrails and explanations follow once the model is saved.
Neither may cost the experiment its model: a failure is recorded in the summary instead.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..config import AutoMLConfig
from .explain import BUDGET_SECONDS, ExplanationStopped
from .explain import save_explanation as save_explanation_files
from .guardrails import GUARDRAILS_FILE, Guardrail, check_data, check_model, to_json, validation_check
from ..search.results import Event

EXPLAIN_SHARE = 0.1
#: Seconds the explanations always get (never more than their share): a run that overran its budget
#: (nyc_taxis at 45 s ended its refit at 59 s) had 1 s left, which explained 2 of its ensemble's 3 members
#: on 100 rows or nothing at all, while 2-4 s explained every member on a few hundred rows (load 8).
EXPLAIN_FLOOR_SECONDS = 3.0
#: The whole run (search, refit, explanations) should end within this multiple of the time budget.
BUDGET_TOLERANCE = 1.1
#: Seconds between two explaining_progress events (each is a row in the store).
PROGRESS_EVERY = 0.5


class DataChecks:
    """The data guardrails of an experiment, run when created (before the search starts, so they do not
    compete with its trials for the CPU) and stored at once; ``callback`` fills in the validation plan
    when the search announces it.

    The time budget is the whole run's: its clock starts before the data is read (``run_experiment``),
    so these checks, the search, the final model and the explanations (which get what is left of the
    budget's 10 % tolerance, a few seconds at least, see ``explain_budget``) all count, each with its seconds
    recorded."""

    def __init__(self, store: Any, experiment_id: str, prepared: Any, config: Any, metric: Any) -> None:
        self._store, self._id = store, experiment_id
        self.error = ""
        start = time.perf_counter()
        try:
            self.found: list[Guardrail] = check_data(prepared, config, metric, "the plan the search announces as it starts")
        except Exception as exc:  # a broken check must not break the experiment
            self.found, self.error = [], f"{type(exc).__name__}: {exc}"
        self._save()
        self.seconds = time.perf_counter() - start

    def explain_budget(self, config: AutoMLConfig, elapsed: float = 0.0) -> float:
        """Seconds the explanations may take: a tenth of the budget (1 to BUDGET_SECONDS s), and no more
        than what is left of the budget's tolerance after ``elapsed`` seconds of the run, but never less
        than EXPLAIN_FLOOR_SECONDS (or the share, when smaller): a person who asked for a short run still
        expects its Results to explain the model, so a run that overran gets a few seconds more for it.

        A floor rather than explaining later on the Results page: the SHAP values belong to the
        background job (a page load must not spend seconds on them, DESIGN.md), and a CLI or Python
        run has no page to explain it later."""
        if config.time_budget is None:
            return BUDGET_SECONDS
        share = min(BUDGET_SECONDS, max(1.0, EXPLAIN_SHARE * config.time_budget))
        return max(min(share, EXPLAIN_FLOOR_SECONDS), min(share, BUDGET_TOLERANCE * config.time_budget - elapsed))

    def _save(self) -> None:
        self._store.update_experiment(self._id, summary={"guardrails": to_json(self.found, [])})

    def callback(self, event: Event) -> None:
        if event.kind == "experiment_started" and self.found:
            plan = validation_check(str(event.payload.get("validation", "")))
            self.found = [plan if g.name == plan.name else g for g in self.found]
            self._save()


def record_after_training(store: Any, experiment_id: str, automl: Any, folder: Path,
                          data_checks: DataChecks, emit: Callable[[Event], None] | None = None,
                          stop_event: threading.Event | None = None) -> dict[str, Any]:
    """Model guardrails and explanations into ``folder`` (registered as artifacts); returns the
    summary entries (``guardrails``, ``explanations``) for the experiment record.

    ``emit`` gets the explaining stage's events (default: the store only); ``stop_event`` set while
    explaining ends that stage early (see ``explain_stage``)."""
    out: dict[str, Any] = {}
    try:
        model_checks = check_model(automl.card_, automl.prepared_, automl.model_, automl.metric_)
    except Exception as exc:  # a broken check must not lose the trained model
        model_checks = []
        out["guardrails_error"] = f"{type(exc).__name__}: {exc}"
    out["guardrails"] = to_json(data_checks.found, model_checks)
    out["guardrails_seconds"] = round(data_checks.seconds, 3)
    if data_checks.error:
        out["guardrails_error"] = data_checks.error
    store.register_artifact(experiment_id, save_guardrails(out["guardrails"], folder), "guardrails")

    def save(explanation: Any) -> None:
        for file in save_explanation_files(explanation, folder):
            store.register_artifact(experiment_id, file, "explanations")

    out["explanations"] = explain_stage(automl, data_checks, emit or store.callback(experiment_id), save, stop_event)
    return out


def save_guardrails(stored: dict[str, Any], folder: str | Path) -> Path:
    """``guardrails.json`` in an experiment's folder (the stored form: ``{"data": [...], "model": [...]}``)."""
    path = Path(folder) / GUARDRAILS_FILE
    path.write_text(json.dumps(stored, indent=1))
    return path


class _StopDuring:
    """A stop signal that only counts when given during the stage: a run stopped earlier (during the
    search) still gets its short explanation; Stop pressed while explaining ends it."""

    def __init__(self, stop_event: threading.Event | None) -> None:
        self._event = stop_event
        self._before = stop_event is not None and stop_event.is_set()

    def is_set(self) -> bool:
        return self._event is not None and not self._before and self._event.is_set()


def explain_stage(automl: Any, data_checks: DataChecks, emit: Callable[[Event], None],
                  save: Callable[[Any], None], stop_event: threading.Event | None = None) -> dict[str, Any]:
    """The explaining stage, announced by events: ``explaining_started`` (its budget),
    ``explaining_progress`` (fraction, what it is doing) and ``explaining_finished`` (seconds, method,
    or why there is no explanation). Returns the summary entry. The model is saved before this runs,
    so neither a failure nor Stop costs it."""
    clock = getattr(automl, "clock_", None)
    elapsed = clock.elapsed if clock is not None else (lambda: round(getattr(automl, "wall_seconds_", 0.0), 3))
    budget = data_checks.explain_budget(automl.config, elapsed())
    stop = _StopDuring(stop_event)  # before the start is announced: a Stop from then on counts
    emit(Event("explaining_started", round(elapsed(), 3), {"budget_seconds": round(budget, 3)}))
    last = [0.0]

    def progress(fraction: float, text: str) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            emit(Event("explaining_progress", round(elapsed(), 3), {"fraction": round(fraction, 3), "text": text}))

    began = time.perf_counter()
    try:
        explanation = automl.explain(budget_seconds=budget, progress=progress, stop=stop)
        save(explanation)
        entry = {"method": explanation.method, "seconds": round(explanation.seconds, 3), "n_rows": explanation.n_rows,
                 "budget_seconds": round(budget, 3)}
    except ExplanationStopped as why:
        entry = {"skipped": f"{why}; the model is saved without explanations", "budget_seconds": round(budget, 3)}
    except Exception as exc:  # explanations are a bonus; the model stands without them
        entry = {"error": f"{type(exc).__name__}: {exc}", "budget_seconds": round(budget, 3)}
    seconds = time.perf_counter() - began
    emit(Event("explaining_finished", round(elapsed(), 3), {**entry, "seconds": round(seconds, 3)}))
    return {**entry, "seconds": entry.get("seconds", round(seconds, 3))}
