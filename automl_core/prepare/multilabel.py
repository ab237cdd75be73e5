"""Multi-label targets (issue 22, groundwork): read a list per row, score, and tune thresholds.

Not wired into the search yet (the ``multilabel`` task is still to come); these are the pieces it needs,
each checked on the shared arXiv categories set:

- ``parse_labels``: a target column holding a list per row, as a Python list repr (``['cs.CV', 'cs.LG']``),
  a JSON list (``["a", "b"]``) or a separator (``a;b``, ``a|b``, ``a,b``), detected on the whole column;
  returns the label sets and the format, so predictions are written back the way the target came.
- ``multilabel_scores``: micro / macro F1, Hamming loss, subset accuracy.
- ``tune_thresholds``: one decision threshold per label, chosen on out-of-fold probabilities.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import AutoMLInputError

SEPARATORS = (";", "|", ",")
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


@dataclass(frozen=True)
class LabelFormat:
    kind: str               # "python", "json" or "separator"
    separator: str = ""

    def write(self, labels: list[str]) -> str:
        if self.kind == "python":
            return repr(list(labels))
        if self.kind == "json":
            return json.dumps(list(labels))
        return self.separator.join(labels)


def _bracketed(cell: str, kind: str) -> list[str] | None:
    try:
        value = ast.literal_eval(cell) if kind == "python" else json.loads(cell)
    except (ValueError, SyntaxError, json.JSONDecodeError):
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
        return None
    return [str(v).strip() for v in value if str(v).strip()]


def parse_labels(target: pd.Series) -> tuple[list[list[str]], LabelFormat]:
    """The label set of every row, and the target's format. Missing cells are an empty set.

    Raises:
        AutoMLInputError: no list format fits every non-missing cell (naming the first cell that fails).
    """
    cells = [None if pd.isna(v) else str(v).strip() for v in target]
    present = [c for c in cells if c]
    if not present:
        raise AutoMLInputError(f"The target column {target.name!r} is empty", "choose a column holding labels")
    if all(c.startswith("[") for c in present):
        for kind in ("json", "python"):
            parsed = [_bracketed(c, kind) if c else [] for c in cells]
            if all(p is not None for p in parsed):
                return [sorted(set(p)) for p in parsed], LabelFormat(kind)  # type: ignore[arg-type]
        bad = next(c for c in present if _bracketed(c, "python") is None and _bracketed(c, "json") is None)
        raise AutoMLInputError(f"The target cell {bad[:80]!r} is not a readable list of labels",
                               "write every cell as a list like ['a', 'b'], or separate labels with ';'")
    counts = {s: sum(s in c for c in present) for s in SEPARATORS}
    separator = max(SEPARATORS, key=lambda s: (counts[s], -SEPARATORS.index(s)))
    if counts[separator] == 0:
        separator = SEPARATORS[0]  # one label per row: still a list (of one)
    labels = [sorted({p.strip() for p in c.split(separator) if p.strip()}) if c else [] for c in cells]
    return labels, LabelFormat("separator", separator)


def indicator(labels: list[list[str]], classes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Rows x labels 0/1 matrix (labels sorted unless ``classes`` is given)."""
    classes = classes if classes is not None else sorted({x for row in labels for x in row})
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)), dtype=np.int8)
    for r, row in enumerate(labels):
        for x in row:
            if x in index:
                out[r, index[x]] = 1
    return out, classes


def multilabel_scores(Y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """f1_micro, f1_macro (labels with no true and no predicted row count as 1), hamming_loss, subset_accuracy."""
    Y, pred = np.asarray(Y, dtype=bool), np.asarray(pred, dtype=bool)
    tp = (Y & pred).sum(axis=0).astype(float)
    fp = (~Y & pred).sum(axis=0).astype(float)
    fn = (Y & ~pred).sum(axis=0).astype(float)
    denom = 2 * tp + fp + fn
    per_label = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    return {"f1_micro": float(micro), "f1_macro": float(per_label.mean()),
            "hamming_loss": float((Y != pred).mean()), "subset_accuracy": float((Y == pred).all(axis=1).mean())}


def tune_thresholds(Y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Per label, the threshold on out-of-fold probabilities with the best F1 for that label (ties: the
    one nearest 0.5). A label never seen positive keeps 0.5."""
    thresholds = np.full(Y.shape[1], 0.5)
    for j in range(Y.shape[1]):
        y = Y[:, j].astype(bool)
        if not y.any():
            continue
        best, best_f1 = 0.5, -1.0
        for t in sorted(THRESHOLDS, key=lambda t: abs(t - 0.5)):
            p = proba[:, j] >= t
            f1 = 2 * (y & p).sum() / max(y.sum() + p.sum(), 1)
            if f1 > best_f1 + 1e-12:
                best, best_f1 = float(t), f1
        thresholds[j] = best
    return thresholds
