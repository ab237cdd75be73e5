"""A multi-label run's out-of-fold label sets, kept after the run so Results can show what it got wrong.

File (in the experiment's artifact folder): ``label_sets_validation.parquet``, one row per validation row:
``row`` (position in the training table, or in the image set), ``true`` and ``predicted`` (the label lists; the
prediction at the saved model's thresholds), then ``p<k>``: the out-of-fold probability of ``labels[k]``. The
labels, thresholds and trial id travel in the Parquet file's metadata, so the file explains itself. Kept apart
from ``predictions.py``'s files: those hold one class per row, which the evaluation and comparison charts read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FILE = "label_sets_validation.parquet"
ARTIFACT = "label_sets_validation"
_META_KEY = b"automl_label_sets"


@dataclass(frozen=True)
class LabelSets:
    """Out-of-fold label sets of one trial: ``Y`` (rows x labels, 0/1) the truth, ``proba`` the probabilities,
    ``thresholds`` the per-label decision thresholds, ``rows`` each row's position in the training table."""

    labels: list[str]
    rows: np.ndarray
    Y: np.ndarray
    proba: np.ndarray
    thresholds: np.ndarray
    trial_id: int

    @property
    def predicted(self) -> np.ndarray:
        return self.proba >= self.thresholds


def save_label_sets(sets: LabelSets, folder: str | Path) -> Path:
    """Write ``sets`` as Parquet in ``folder``; returns the path."""
    names = np.asarray(sets.labels, dtype=object)
    frame = pd.DataFrame({"row": np.asarray(sets.rows, dtype=np.int64),
                          "true": [list(names[r.astype(bool)]) for r in sets.Y],
                          "predicted": [list(names[r]) for r in sets.predicted]})
    for k in range(len(names)):
        frame[f"p{k}"] = sets.proba[:, k].astype(float)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {"labels": [str(x) for x in sets.labels], "thresholds": [float(t) for t in sets.thresholds],
            "trial_id": int(sets.trial_id)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()})
    path = Path(folder) / FILE
    pq.write_table(table, path)
    return path


def load_label_sets(folder: str | Path) -> LabelSets | None:
    """The saved label sets, or None when the run kept none (single-label, or made before they were kept)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    df = table.to_pandas()
    labels = meta["labels"]
    index = {label: k for k, label in enumerate(labels)}
    Y = np.zeros((len(df), len(labels)), dtype=np.int8)
    for i, true in enumerate(df["true"]):
        Y[i, [index[x] for x in true]] = 1
    proba = np.column_stack([df[f"p{k}"].to_numpy(float) for k in range(len(labels))])
    return LabelSets(labels, df["row"].to_numpy(), Y, proba, np.asarray(meta["thresholds"], float),
                     int(meta["trial_id"]))


def label_set_mistakes(sets: LabelSets, limit: int = 100) -> pd.DataFrame:
    """The rows whose predicted label set differs from the true one, worst first: most labels wrong, then the
    furthest past the thresholds (the mean, over its wrong labels, of how far each probability sits on the wrong
    side of its label's threshold).

    Returns:
        Columns ``row``, ``true``, ``predicted`` (labels joined with ", "), ``missed`` and ``extra`` (each
        wrong label with its probability, "label (0.31)"), ``n_wrong``, ``margin``; at most ``limit`` rows.
    """
    predicted = sets.predicted
    truth = sets.Y.astype(bool)
    wrong = predicted != truth
    n_wrong = wrong.sum(axis=1)
    margin = np.where(wrong, np.abs(sets.proba - sets.thresholds), 0.0).sum(axis=1) / np.maximum(n_wrong, 1)
    bad = np.flatnonzero(n_wrong)
    bad = bad[np.lexsort((-margin[bad], -n_wrong[bad]))][:limit]  # last key sorts first
    names = [str(x) for x in sets.labels]

    def listed(mask: np.ndarray, i: int, with_proba: bool = False) -> str:
        return ", ".join(f"{names[k]} ({sets.proba[i, k]:.2f})" if with_proba else names[k]
                         for k in np.flatnonzero(mask))

    return pd.DataFrame({
        "row": np.asarray(sets.rows)[bad].astype(int),
        "true": [listed(truth[i], i) for i in bad],
        "predicted": [listed(predicted[i], i) for i in bad],
        "missed": [listed(truth[i] & ~predicted[i], i, True) for i in bad],
        "extra": [listed(predicted[i] & ~truth[i], i, True) for i in bad],
        "n_wrong": n_wrong[bad].astype(int),
        "margin": margin[bad].round(4),
    })


def n_wrong_sets(sets: LabelSets) -> int:
    """How many rows' predicted label sets differ from the true ones."""
    return int((sets.predicted != sets.Y.astype(bool)).any(axis=1).sum())



def _prf(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(truth & predicted))
    precision = tp / max(float(predicted.sum()), 1.0)
    recall = tp / max(float(truth.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def per_label_scores(sets: LabelSets) -> pd.DataFrame:
    """One row per label, out of fold at the saved thresholds: ``label``, ``rows`` (validation rows carrying it),
    ``precision``, ``recall``, ``f1``, ``average_precision`` (threshold-free) and ``threshold``; most rows first."""
    from sklearn.metrics import average_precision_score
    truth, predicted = sets.Y.astype(bool), sets.predicted
    rows = []
    for k, label in enumerate(sets.labels):
        p, r, f = _prf(truth[:, k], predicted[:, k])
        ap = float(average_precision_score(truth[:, k], sets.proba[:, k])) if truth[:, k].any() else float("nan")
        rows.append({"label": str(label), "rows": int(truth[:, k].sum()), "precision": p, "recall": r, "f1": f,
                     "average_precision": ap, "threshold": float(sets.thresholds[k])})
    return pd.DataFrame(rows).sort_values(["rows", "label"], ascending=[False, True], kind="stable",
                                          ignore_index=True)


def threshold_curve(sets: LabelSets, label: str, steps: int = 99) -> pd.DataFrame:
    """Precision, recall and F1 of one label at each threshold from 0.01 to 0.99 (out of fold): what moving its
    threshold would do. Columns ``threshold``, ``precision``, ``recall``, ``f1``, ``predicted`` (rows called yes)."""
    k = [str(x) for x in sets.labels].index(str(label))
    truth, proba = sets.Y[:, k].astype(bool), sets.proba[:, k]
    out = []
    for t in np.linspace(0.01, 0.99, steps):
        called = proba >= t
        p, r, f = _prf(truth, called)
        out.append({"threshold": round(float(t), 4), "precision": p, "recall": r, "f1": f,
                    "predicted": int(called.sum())})
    return pd.DataFrame(out)
