"""What an experiment learns about its data and model besides the model itself: guardrails and
explanations, recorded in the store while the experiment runs (``run_experiment`` wires them in).

Data guardrails start as soon as the search announces its validation plan and are stored a few
seconds later, while the first trials run, so the live page shows them; model guardrails and
explanations follow once the model is saved.
Neither may cost the experiment its model: a failure is recorded in the summary instead.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from .guardrails import GUARDRAILS_FILE, Guardrail, check_data, check_model, to_json
from .results import Event


class DataChecks:
    """The search callback that runs the data guardrails, and what they found.

    On ``experiment_started`` the checks start in a thread of their own: the search does not wait for
    them (the leakage probe takes seconds on a busy machine, which would come out of the time budget),
    and the store has them a few seconds into the search.
    """

    def __init__(self, store: Any, experiment_id: str, prepared: Any, config: Any, metric: Any) -> None:
        self.found: list[Guardrail] = []
        self.error = ""
        self._args = (store, experiment_id, prepared, config, metric)
        self._thread: threading.Thread | None = None

    def callback(self, event: Event) -> None:
        if event.kind == "experiment_started" and self._thread is None:
            validation = str(event.payload.get("validation", ""))
            self._thread = threading.Thread(target=self._run, args=(validation,), daemon=True,
                                            name=f"automl-guardrails-{self._args[1]}")
            self._thread.start()

    def _run(self, validation: str) -> None:
        store, experiment_id, prepared, config, metric = self._args
        try:
            self.found = check_data(prepared, config, metric, validation)
            store.update_experiment(experiment_id, summary={"guardrails": to_json(self.found, [])})
        except Exception as exc:  # a broken check must not break the experiment
            self.error = f"{type(exc).__name__}: {exc}"

    def wait(self, timeout: float = 300) -> list[Guardrail]:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.found


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
    out["guardrails"] = to_json(data_checks.wait(), model_checks)
    if data_checks.error:
        out["guardrails_error"] = data_checks.error
    path = Path(folder) / GUARDRAILS_FILE
    path.write_text(json.dumps(out["guardrails"], indent=1))
    store.register_artifact(experiment_id, path, "guardrails")
    store.add_event(experiment_id, Event("message", round(getattr(automl, "wall_seconds_", 0.0), 3),
                                         {"text": "Explaining the model (SHAP on a row sample)"}))
    try:
        explanation = automl.explain()
        for file in save_explanation(explanation, folder):
            store.register_artifact(experiment_id, file, "explanations")
        out["explanations"] = {"method": explanation.method, "seconds": round(explanation.seconds, 3),
                               "n_rows": explanation.n_rows}
    except Exception as exc:  # explanations are a bonus; the model stands without them
        out["explanations"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
