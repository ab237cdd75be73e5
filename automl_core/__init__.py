"""AutoML Studio's engine: tabular AutoML as a Python library and a command-line tool.

Names are imported lazily: trial worker processes import ``automl_core.trial`` only, and should not
pay for the search's imports (optuna and friends).
"""
from __future__ import annotations

from importlib import import_module

from typing import Any

_EXPORTS = {
    "AutoML": "automl", "AutoMLConfig": "config", "AutoMLInputError": "errors", "StoreLockedError": "errors",
    "Event": "results", "TrialResult": "results", "ColumnInfo": "schema", "Role": "schema", "Task": "schema",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'automl_core' has no attribute {name!r}")
