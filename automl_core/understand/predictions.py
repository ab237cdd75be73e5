"""Per-model predictions kept after a run: out-of-fold (validation) and test, for charts and comparisons.

Files (in the experiment's artifact folder): ``predictions_validation.parquet`` and
``predictions_test.parquet``. One row per scored row: ``row`` (position in the training table after
rows without a target were dropped -- or in the test table), ``actual`` (the label or value),
``actual_code`` (classification: the index of the label in ``classes``), then per model
``m<trial_id>`` (regression: the prediction) or ``m<trial_id>_p<k>`` (classification: the
probability of ``classes[k]``). Task and classes travel in the Parquet file's metadata, so a file
explains itself.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FILES = {"validation": "predictions_validation.parquet", "test": "predictions_test.parquet"}
_META_KEY = b"automl_predictions"
_COLUMN = re.compile(r"^m(\d+)(?:_p(\d+))?$")


@dataclass(frozen=True)
class Predictions:
    """Predictions of several models on the same rows.

    ``y_true``: class codes (indexes into ``classes``) for classification, float values for regression.
    ``models``: trial id -> (n,) predictions, or (n, K) probabilities ordered like ``classes``.
    """

    task: str
    classes: list[Any] | None
    y_true: np.ndarray
    rows: np.ndarray
    models: dict[int, np.ndarray] = field(default_factory=dict)
    labels_true: np.ndarray | None = None  # the original labels (classification)

    @property
    def is_classification(self) -> bool:
        return self.task in ("binary", "multiclass")

    def to_frame(self) -> pd.DataFrame:
        cols: dict[str, Any] = {"row": self.rows}
        if self.is_classification:
            labels = self.labels_true if self.labels_true is not None else np.asarray(self.classes, dtype=object)[self.y_true]
            cols["actual"] = pd.Series(labels).astype(str).to_numpy()
            cols["actual_code"] = self.y_true.astype(int)
        else:
            cols["actual"] = self.y_true.astype(float)
        for trial_id, pred in self.models.items():
            if pred.ndim == 1:
                cols[f"m{trial_id}"] = pred.astype(float)
            else:
                for k in range(pred.shape[1]):
                    cols[f"m{trial_id}_p{k}"] = pred[:, k].astype(float)
        return pd.DataFrame(cols)


def save_predictions(predictions: Predictions, folder: str | Path, which: str) -> Path:
    """Write one set ("validation" or "test") as Parquet; returns the path."""
    path = Path(folder) / FILES[which]
    table = pa.Table.from_pandas(predictions.to_frame(), preserve_index=False)
    meta = {"task": predictions.task, "classes": None if predictions.classes is None
            else [_plain(c) for c in predictions.classes]}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
    pq.write_table(table, path)
    return path


def load_predictions(folder: str | Path, which: str) -> Predictions | None:
    """The saved predictions of one set, or None when the run has none (e.g. no test data)."""
    path = Path(folder) / FILES[which]
    if not path.is_file():
        return None
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    df = table.to_pandas()
    classification = meta.get("task") in ("binary", "multiclass")
    models: dict[int, dict[int, np.ndarray]] = {}
    for col in df.columns:
        m = _COLUMN.match(col)
        if m:
            models.setdefault(int(m.group(1)), {})[int(m.group(2) or 0)] = df[col].to_numpy()
    arrays = {t: (np.column_stack([parts[k] for k in sorted(parts)]) if classification else parts[0])
              for t, parts in models.items()}
    y_true = df["actual_code"].to_numpy(dtype=int) if classification else df["actual"].to_numpy(dtype=float)
    return Predictions(meta.get("task", ""), meta.get("classes"), y_true, df["row"].to_numpy(), arrays,
                       df["actual"].to_numpy() if classification else None)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
