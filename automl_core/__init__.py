"""AutoML Studio's engine: tabular AutoML as a Python library and a command-line tool.

Names are imported lazily: trial worker processes import ``automl_core.trial`` only, and should not
pay for the search's imports (optuna and friends).
"""
from __future__ import annotations

import os
from importlib import import_module

# OpenMP threads (LightGBM, HistGradientBoosting) spin while they wait by default; on a busy 2-core
# machine that made one HistGradientBoosting refit take 37 s instead of 2.7 s. Passive waits are read
# when the OpenMP runtime starts, so this must run before lightgbm / scikit-learn are imported; the
# trial workers get the same setting through their environment.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
