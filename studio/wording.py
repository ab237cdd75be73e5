"""How the studio names and prints metrics: readable names, a one-line explanation, sensible precision.

The engine's metric names (``norm_macro_recall``, ``normalized_root_mean_squared_error``) are ids for
code and the CLI; people see their labels (``metric_label``, kept beside the metrics so that the
engine's guardrails use them too). Numbers are printed at a precision that suits their
scale: an RMSE of 22,308.66 on house prices reads "22,309", an AUC "0.9412".
"""
from __future__ import annotations

import math
import re
from typing import Any

from automl_core.models.metrics import METRICS, metric_label  # noqa: F401  (metric_label: the studio imports it from here)

_DIRECTION = re.compile(r"[;.]?\s*(lower|higher) is better\.?", re.IGNORECASE)


def metric_help(name: Any) -> str:
    """One line: what the metric measures, then which direction is better (said once)."""
    metric = METRICS.get(str(name))
    if metric is None:
        return ""
    text = metric.explanation
    what = _DIRECTION.sub(lambda m: "." if text[m.end():].strip() else "", text).strip().rstrip(".")
    return f"{what}. {'Higher' if metric.greater_is_better else 'Lower'} is better."


def _decimals(size: float) -> int:
    return max(0, 3 - int(math.floor(math.log10(size)))) if size > 0 else 4


def column_format(values: Any) -> str:
    """A printf format for a table column of scores: 4 significant digits at the column's typical size."""
    import pandas as pd

    numbers = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").abs()
    numbers = numbers[numbers > 0]
    size = float(numbers.median()) if len(numbers) else 0.0
    return f"%.{min(_decimals(size), 6)}f" if size < 1e9 else "%.3e"


def number(value: Any, scale: float | None = None) -> str:
    """A score at a precision that suits its size: 4 significant digits, thousands separated, no
    exponent for everyday magnitudes. ``scale`` (e.g. the best score) makes a column of related
    numbers share one number of decimals."""
    if value is None:
        return "—"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return str(x)
    size = abs(scale if scale is not None and math.isfinite(scale) and scale != 0 else x)
    if size == 0:
        return "0"
    if size >= 1e9 or size < 1e-4:
        return f"{x:.3e}"
    return f"{x:,.{_decimals(size)}f}"
