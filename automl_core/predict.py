"""Scoring new data with a saved model: load (checking the model's fingerprint), check columns, predict."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from .artifacts import CARD_FILE, sha256_file
from .errors import AutoMLInputError
from .reader import read_table

# Cells starting with these are run as formulas by spreadsheet programs; exported CSVs defuse them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def load_model(model_path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The pipeline and its card. Refuses a model.joblib whose sha256 differs from its model.json."""
    path = Path(model_path)
    if not path.is_file():
        raise AutoMLInputError(f"No model file at '{model_path}'", "pass the model.joblib written by `train`")
    card_path = path.with_name(CARD_FILE)
    card: dict[str, Any] = json.loads(card_path.read_text()) if card_path.is_file() else {}
    expected = card.get("model_sha256")
    if expected is None:
        raise AutoMLInputError(f"'{model_path}' has no model.json beside it, so it cannot be checked before loading",
                               "use a model folder written by `train` (model.joblib with its model.json)")
    if sha256_file(path) != expected:
        raise AutoMLInputError(f"'{model_path}' does not match the fingerprint in its model.json (changed or replaced)",
                               "use the model file exactly as `train` wrote it")
    return joblib.load(path), card


def required_columns(model: Any, card: dict[str, Any]) -> list[str]:
    return list(card.get("input_columns") or getattr(model, "feature_names_in_", []))


def predict_frame(model: Any, card: dict[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """Predictions in the input's row order: ``prediction`` and, for classification, ``proba_<class>``."""
    if card.get("task") == "forecasting":  # issue #5: forecasts and interval columns per row
        from .forecast import predict_forecast
        return predict_forecast(model, card, df)
    needed = required_columns(model, card)
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"The data lacks required column(s): {', '.join(map(str, absent[:10]))}",
                               "add the columns the model was trained on (extra columns are fine)")
    X = df[needed]
    out = pd.DataFrame(index=df.index)
    out["prediction"] = model.predict(X)
    if card.get("task") in ("binary", "multiclass") and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        for i, cls in enumerate(model.classes_):
            out[f"proba_{cls}"] = proba[:, i]
    return out


def predict_file(model_path: str | Path, data: str | Path, out_path: str | Path) -> int:
    """Score ``data`` and write the input columns plus predictions as CSV; returns the row count."""
    model, card = load_model(model_path)
    df = read_table(data)
    result = pd.concat([df, predict_frame(model, card, df)], axis=1)
    safe_csv(result).to_csv(out_path, index=False)
    return len(result)


def safe_csv(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (a leading quote defuses them)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            values = out[col]
            risky = values.astype("string").str.startswith(_FORMULA_START, na=False)
            # numbers such as "-1.5" stay as they are
            risky &= pd.to_numeric(values, errors="coerce").isna()
            if risky.any():
                out[col] = values.astype(object).where(~risky, "'" + values.astype("string"))
    out.columns = [("'" + c) if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in out.columns]
    return out
