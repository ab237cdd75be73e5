"""What an experiment learns about its data and model besides the model itself: guardrails and
explanations, recorded in the store while the experiment runs (``run_experiment`` wires them in).

Data guardrails run before the search starts and are stored at once, so the live page shows them;
model guardrails and explanations follow once the model is saved.
Neither may cost the experiment its model: a failure is recorded in the summary instead.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..config import AutoMLConfig
from .explain import BUDGET_SECONDS
from .guardrails import GUARDRAILS_FILE, Guardrail, check_data, check_model, to_json, validation_check
from ..search.results import Event

EXPLAIN_SHARE = 0.1


class DataChecks:
    """The data guardrails of an experiment, run when created (before the search starts, so they do not
    compete with its trials for the CPU) and stored at once; ``callback`` fills in the validation plan
    when the search announces it.

    The time budget is the search's (trials, ensembles, the final refit): these checks run before its
    clock starts and the explanations after it ends, each with its seconds recorded, so a budget buys
    the same search with or without them."""

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
        self.explain_seconds = self.explain_budget(config)

    def explain_budget(self, config: AutoMLConfig) -> float:
        """Seconds the explanations may take: a tenth of the budget, 1 to BUDGET_SECONDS s."""
        if config.time_budget is None:
            return BUDGET_SECONDS
        return min(BUDGET_SECONDS, max(1.0, EXPLAIN_SHARE * config.time_budget))

    def _save(self) -> None:
        self._store.update_experiment(self._id, summary={"guardrails": to_json(self.found, [])})

    def callback(self, event: Event) -> None:
        if event.kind == "experiment_started" and self.found:
            plan = validation_check(str(event.payload.get("validation", "")))
            self.found = [plan if g.name == plan.name else g for g in self.found]
            self._save()


def record_after_training(store: Any, experiment_id: str, automl: Any, folder: Path,
                          data_checks: DataChecks) -> dict[str, Any]:
    """Model guardrails and explanations into ``folder`` (registered as artifacts); returns the
    summary entries (``guardrails``, ``explanations``) for the experiment record."""
    from .explain import save_explanation
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
    path = Path(folder) / GUARDRAILS_FILE
    path.write_text(json.dumps(out["guardrails"], indent=1))
    store.register_artifact(experiment_id, path, "guardrails")
    store.add_event(experiment_id, Event("message", round(getattr(automl, "wall_seconds_", 0.0), 3),
                                         {"text": "Explaining the model (SHAP on a row sample)"}))
    try:
        explanation = automl.explain(budget_seconds=data_checks.explain_seconds)
        for file in save_explanation(explanation, folder):
            store.register_artifact(experiment_id, file, "explanations")
        out["explanations"] = {"method": explanation.method, "seconds": round(explanation.seconds, 3),
                               "n_rows": explanation.n_rows}
    except Exception as exc:  # explanations are a bonus; the model stands without them
        out["explanations"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
