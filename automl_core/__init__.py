"""AutoML Studio's engine: tabular AutoML as a Python library and a command-line tool.

The packages follow the data's way through a run: ``io`` (read files within limits) -> ``prepare``
(column roles, task, folds, featurization) -> ``models`` (the families and their portfolio, metrics) ->
``search`` (the loop, scheduler, trials in workers, ensembles, the final refit) -> ``understand``
(evaluation, explanations, guardrails) -> ``export`` (the saved model, prediction, ONNX, code, REST);
``forecast`` holds what is particular to time series. ``automl`` (the ``AutoML`` facade), ``experiment``
(a run recorded in the store), ``config`` and ``cli`` sit on top.

Names are imported lazily, and the sub-packages' ``__init__`` files import nothing: trial worker
processes import ``automl_core.search.trial`` only, and should not pay for the search's imports
(optuna and friends).
"""
from __future__ import annotations

from importlib import import_module

from typing import Any

_EXPORTS = {
    "AutoML": "automl", "AutoMLConfig": "config", "AutoMLInputError": "errors", "StoreLockedError": "errors",
    "Event": "search.results", "TrialResult": "search.results", "ColumnInfo": "prepare.schema", "Role": "prepare.schema",
    "Task": "prepare.schema",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'automl_core' has no attribute {name!r}")
