"""Comparing models on the Results page: one name per model, the comparison table, overlaid curves.

Pure pandas/numpy, no streamlit. A model is called "#<trial> <family>" everywhere (leaderboard,
charts, selectors), so the row a person ticks is the bar and the curve they then see.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from automl_core.understand import evaluation as ev
from automl_core.models.metrics import METRICS
from automl_core.understand.predictions import Predictions
from studio import live
from studio.wording import metric_help, metric_label, number


def model_name(trial_id: Any, family: str, *, short: bool = True) -> str:
    """'#51 LightGBM': the trial number and the family, the same on every page."""
    label = live.family_label(str(family))
    return f"#{int(trial_id)} {live.short_label(label) if short else label}"


def metric_columns(trials: pd.DataFrame, metric: str) -> list[str]:
    """The metric columns of ``trials``, the primary one first."""
    others = [c for c in trials.columns if c in METRICS and c != metric]
    return ([metric] if metric in trials.columns else []) + others


def comparison_table(trials: pd.DataFrame, metric: str, picked: list[int]) -> pd.DataFrame:
    """The picked models best first: model, each metric (readable names), fit seconds; raw numbers."""
    chosen = trials[trials["trial_id"].isin(picked) & trials["score"].notna()]
    chosen = chosen.sort_values(["score", "trial_id"], ascending=[not live.greater_is_better(metric), True])
    cols = metric_columns(chosen, metric)
    table = pd.DataFrame({"model": [model_name(t, f) for t, f in zip(chosen["trial_id"], chosen["family"])]})
    for c in cols:
        table[metric_label(c)] = chosen[c].to_numpy(dtype=float)
    table["fit s"] = chosen["fit_seconds"].to_numpy(dtype=float)
    return table


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as text at a sensible precision per column (a column shares its decimals)."""
    out = table.copy()
    for c in out.columns[1:]:
        values = pd.to_numeric(out[c], errors="coerce")
        scale = float(values.abs().median()) if values.notna().any() else None
        out[c] = [number(v, scale) if pd.notna(v) else "—" for v in values]
    return out


def overlaid_curves(p: Predictions, picked: list[int], names: dict[int, str], kind: str,
                    pos_index: int = 1) -> list[dict[str, Any]]:
    """One ROC (``kind="roc"``) or precision-recall curve per picked model that has stored predictions:
    the positive class for binary tasks, the micro average for multiclass; named after the model."""
    make = ev.roc_curves if kind == "roc" else ev.pr_curves
    curves = []
    for trial in picked:
        proba = p.models.get(trial)
        if proba is None or np.ndim(proba) != 2:
            continue
        found = make(p.y_true, proba, p.classes or [], pos_index=pos_index)
        curve = next((c for c in found if c["name"] == "micro average"), found[0] if found else None)
        if curve is not None:
            curves.append({**curve, "name": names.get(trial, f"#{trial}")})
    return curves


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """{metric: value} as rows of readable name, value at a sensible precision, and what it means."""
    return pd.DataFrame([{"metric": metric_label(m), "value": number(v), "what it says": metric_help(m)}
                         for m, v in metrics.items()], columns=["metric", "value", "what it says"])


def hyperparameter_table(params: Any) -> pd.DataFrame:
    """A trial's hyperparameters as rows of parameter and value (nested settings flattened with dots)."""
    rows: list[dict[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            rows.append({"parameter": prefix, "value": _value_text(value)})

    if isinstance(params, dict):
        walk("", params)
    return pd.DataFrame(rows, columns=["parameter", "value"])


def _value_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(v) for v in value) or "—"
    return str(value)
