"""The saved many-models artifact: one dict holding each partition's forecasting bundle, and routing.

``model.joblib`` of a partitioned run is a dict (format ``automl-studio-forecast-partitioned/1``):
``partitions`` maps a partition key (the partition columns' values joined by " / ") to that
partition's bundle (bundle.py, format ``automl-studio-forecast/1``); ``partition_by`` names the
columns. It loads with ``joblib.load`` without this repository; ``usage`` says how to route by hand.
The functions here forecast from either format, so callers need not tell them apart.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import AutoMLInputError
from ..export.artifacts import clean_json
from ..search.results import TrialResult
from ..understand.predictions import Predictions
from . import bundle as single
from .accuracy import error_by_step, score
from .series import DS, ID, SEP, Y, series_ids

FORMAT = "automl-studio-forecast-partitioned/1"
USAGE = ("key = ' / '.join(str(row[c]) for c in partition_by); the row's model is partitions[key], a forecasting "
         "bundle whose own 'usage' says how to forecast from it.")


def is_partitioned(model: Any) -> bool:
    return isinstance(model, dict) and model.get("format") == FORMAT


# --- assembling, in the training process --------------------------------------------------------------

def assemble(automl: Any, data: Any, results: dict[str, dict[str, Any]], trials: list[TrialResult], next_id: int,
             emit: Any, clock: Any) -> None:
    """The routing bundle, the summary row, the combined validation and test scores, the card."""
    from .partitions import FAMILY, summary_table
    cfg, metric = automl.config, data.metric
    ok = {k: r for k, r in results.items() if "bundle" in r}
    failed = {k: r["error"] for k, r in results.items() if "error" in r}
    automl.model_ = {
        "format": FORMAT, "usage": USAGE, "partition_by": list(data.partition_by), "partition_separator": SEP,
        "target": data.target, "time_column": cfg.time_column, "series_columns": list(data.config.series_id),
        "horizon": cfg.horizon, "partitions": {k: r["bundle"] for k, r in ok.items()}, "failed": failed,
    }
    cv = pd.concat([r["cv"] for r in ok.values()], ignore_index=True)
    metrics = score(cv)
    best = TrialResult(next_id, FAMILY, {"partitions": {k: r["best"].family for k, r in ok.items()}}, "ok",
                       metrics.get(metric.name), metrics, float(sum(r["seconds"] for r in results.values())), 0.0,
                       0.0, round(clock.elapsed(), 3), "",
                       f"one model per partition of {', '.join(data.partition_by)}: {len(ok)} models")
    emit("trial_finished", best)
    emit("new_best", best, score=best.score, family=FAMILY)
    automl.best_trial_, automl.trials_ = best, [*trials, best]
    automl.partitions_ = summary_table(results, data.values)
    automl.cv_forecasts_ = cv
    automl.predictions_ = {"validation": Predictions("forecasting", None, cv[Y].to_numpy(float), np.arange(len(cv)),
                                                     {best.trial_id: cv["yhat"].to_numpy(float)}), "test": None}
    tables = [r["test"] for r in ok.values() if r["test"] is not None]
    automl.test_predictions_ = pd.concat(tables, ignore_index=True) if tables else None
    automl.test_score_, automl.test_metrics_ = _test_score(automl.model_, automl.test_predictions_, data.target, metric)
    charts = [r["chart"] for r in ok.values() if r["chart"] is not None]
    automl.forecast_chart_ = pd.concat(charts, ignore_index=True) if charts else None
    automl.wall_seconds_ = clock.elapsed()
    automl.card_ = _card(automl, data, ok, failed, cv)


def _test_score(model: dict, table: pd.DataFrame | None, target: str, metric: Any) -> tuple[float | None, dict]:
    """Every partition's test rows scored together, as one run's test rows are."""
    if table is None or table.empty:
        return None, {}
    scales = {uid: s for b in model["partitions"].values() for uid, s in b["scales"].items()}
    scored = table.rename(columns={"series": ID, f"actual_{target}": Y}).dropna(subset=["prediction", Y])
    scored = scored.assign(fold=0, yhat=scored["prediction"], scale=scored[ID].map(scales))
    metrics = score(scored) if len(scored) else {}
    return metrics.get(metric.name), metrics


def _card(automl: Any, data: Any, ok: dict[str, dict], failed: dict[str, str], cv: pd.DataFrame) -> dict[str, Any]:
    from .guardrails import merge
    first = next(iter(ok.values()))["card"]
    best, cfg = automl.best_trial_, automl.config
    n_series = sum(r["card"]["forecast"]["n_series"] for r in ok.values())
    series = sorted({s for r in ok.values() for s in r["card"]["forecast"]["series"]})
    board = automl.partitions_
    return clean_json({
        **first,
        "best_model": best.family, "best_trial_id": best.trial_id, "hyperparameters": best.params,
        "featurization": f"per partition (each partition's features are planned on its own series); first: "
                         f"{first.get('featurization')}",
        "validation": {"strategy": automl.validation_.description, "score": best.score, "metrics": best.metrics},
        "test": {"score": automl.test_score_, "metrics": automl.test_metrics_,
                 "n_rows": 0 if automl.test_predictions_ is None else len(automl.test_predictions_)},
        "n_trials": len(automl.trials_), "config": cfg.to_dict(), "data_fingerprint": data.fingerprint,
        "n_training_rows": sum(len(p.panel) for p in data.parts.values()),
        "notes": [*data.notes, *(f"partition {k}: no model ({e})" for k, e in failed.items())],
        "partition_by": list(data.partition_by),
        "guardrails": merge({k: r["card"].get("guardrails") or {} for k, r in ok.items()}, failed, data.left_out),
        "partitions": board.to_dict(orient="records"),
        "forecast": {**first["forecast"], "n_series": n_series, "series": series[:1000],
                     "error_by_step": error_by_step(cv).to_dict(orient="records")},
    })


# --- forecasting from the artifact ------------------------------------------------------------------

def _route(model: dict, df: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """Each row's partition key; refuses data without the partition columns or of no known partition."""
    by = list(model["partition_by"])
    absent = [c for c in by if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"The data lacks the partition column(s) {', '.join(map(repr, absent))}",
                               "add them: each row is forecast by its partition's model")
    keys = series_ids(df, tuple(by))
    known = list(model["partitions"])
    unknown = sorted(set(keys) - set(known))
    if len(keys) and len(unknown) == keys.nunique():
        raise AutoMLInputError(f"None of the rows belongs to a partition the model was trained on "
                               f"({', '.join(by)} = {', '.join(unknown[:3])})",
                               f"give rows of the trained partitions ({', '.join(known[:10])})")
    notes = []
    if unknown:
        failed = [k for k in unknown if k in model.get("failed", {})]
        notes.append(f"{int(keys.isin(unknown).sum()):,} row(s) of partition(s) the model has no model for get no "
                     f"forecast: {', '.join(unknown[:5])}" + (f" (training failed for {', '.join(failed[:5])})"
                                                               if failed else "")
                     + f"; it knows {', '.join(known[:10])}")
    return keys, notes


def forecast_table(model: dict, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Forecasts for a raw table's rows, each by its partition's model, in the table's row order."""
    if not is_partitioned(model):
        return single.forecast_table(model, df)
    keys, notes = _route(model, df)
    first = next(iter(model["partitions"].values()))
    cols = ["prediction"] + [f"prediction_{side}_{lv}" for lv in first["interval_levels"] for side in ("lo", "hi")]
    out = pd.DataFrame(np.nan, index=df.index, columns=cols)
    for key, idx in keys.groupby(keys.to_numpy()).indices.items():
        if key not in model["partitions"]:
            continue
        part, part_notes = single.forecast_table(model["partitions"][key], df.iloc[idx])
        out.iloc[idx] = part[cols].to_numpy()
        notes.extend(f"partition {key}: {n}" for n in part_notes)
    return out, notes


def next_horizon(model: dict, future: pd.DataFrame | None = None) -> pd.DataFrame:
    """The next horizon after the training history of every series of every partition."""
    if not is_partitioned(model):
        return single.next_horizon(model, future)
    return pd.concat([single.next_horizon(b, future) for b in model["partitions"].values()], ignore_index=True)


def forecast_latest(model: dict, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The next horizon after the latest data (bundle.forecast_latest), each partition from its own rows."""
    if not is_partitioned(model):
        return single.forecast_latest(model, df)
    keys, notes = _route(model, df)
    tables = []
    for key, part in model["partitions"].items():
        table, part_notes = single.forecast_latest(part, df[keys.to_numpy() == key])
        tables.append(table)
        notes.extend(f"partition {key}: {n}" for n in part_notes)
    return pd.concat(tables, ignore_index=True), notes


def history(model: dict) -> pd.DataFrame:
    """The training history (unique_id, ds, y) of every series."""
    if not is_partitioned(model):
        return model["history"][[ID, DS, Y]]
    return pd.concat([b["history"][[ID, DS, Y]] for b in model["partitions"].values()], ignore_index=True)
