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
from typing import Any

import numpy as np
import pandas as pd

from ..errors import AutoMLInputError

SEPARATORS = (";", "|", ",")
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


@dataclass(frozen=True)
class LabelFormat:
    kind: str               # "python", "json", "separator", or "columns" (the target was several 0/1 columns)
    separator: str = ""

    def write(self, labels: list[str]) -> str:
        if self.kind in ("python", "columns"):  # "columns" predictions also get one 0/1 column per label
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


def readable_list(cell: str) -> list[str] | None:
    """A bracketed cell's labels (a JSON or Python list), or None when it is not one."""
    cell = cell.strip()
    labels = _bracketed(cell, "json")
    return labels if labels is not None else _bracketed(cell, "python")


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


# --- the multilabel task's data (``tables.prepare`` hands a list-like target here) ------------------------

#: A label needs this many positive rows to be learned and scored out of fold; rarer ones are left out (noted).
MIN_LABEL_ROWS = 5
#: At most this many labels (the most frequent) are learned: one binary head each per trial.
MAX_LABELS = 100


#: Cells a 0/1 target column may hold (compared in lower case, as text): the column's label is on or off.
ON, OFF = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}


def indicator_target(target: str | list[str] | tuple[str, ...], columns: pd.Index) -> list[str] | None:
    """The 0/1 columns a target names when it names several (a list, or ``"a,b,c"`` that is not itself a
    column but whose parts all are); None for a single target column."""
    if isinstance(target, str):
        if target in columns or "," not in target:
            return None
        names = [t.strip() for t in target.split(",") if t.strip()]
    else:
        names = [str(t) for t in target]
    absent = [n for n in names if n not in columns]
    if absent:
        from ..io.reader import missing_column_error
        raise missing_column_error(absent[0], columns, what="target column")
    if len(set(names)) < 2:
        raise AutoMLInputError(f"A multi-label target of 0/1 columns needs two columns or more, got {names}",
                               "name several 0/1 columns, or one column to predict")
    return list(dict.fromkeys(names))


def zero_one_columns(df: pd.DataFrame) -> list[str]:
    """The columns holding only 0/1 (yes/no, true/false) with no empty cell: candidates for a multi-label target."""
    out = []
    for name in df.columns:
        cells = df[name]
        if cells.isna().any() or cells.nunique() > 2:
            continue
        if cells.astype(str).str.strip().str.lower().isin(ON | OFF).all():
            out.append(str(name))
    return out


def lists_from_indicators(df: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, str, str]:
    """Several 0/1 columns as one multi-label target: a column of Python lists holding the names of the columns
    that are 1 in the row (``[]`` for none), named by the columns joined with ``,``, in place of them.
    Returns the frame, the target's name and the note that says so.

    Raises:
        AutoMLInputError: a column holding anything but 0/1 (yes/no, true/false), or missing cells.
    """
    rows = np.zeros((len(df), len(names)), dtype=bool)
    for j, name in enumerate(names):
        cells = df[name]
        if cells.isna().any():
            raise AutoMLInputError(f"The target column {name!r} has {int(cells.isna().sum()):,} empty cell(s)",
                                   "fill them with 0 or 1, or drop those rows")
        text = cells.astype(str).str.strip().str.lower()
        bad = ~text.isin(ON | OFF)
        if bad.any():
            raise AutoMLInputError(f"The target column {name!r} holds {str(cells[bad].iloc[0])!r}, not 0 or 1 "
                                   f"({int(bad.sum()):,} such cell(s))",
                                   "give 0/1 (or yes/no, true/false) columns as the targets of a multi-label model")
        rows[:, j] = text.isin(ON).to_numpy()
    target = ",".join(names)
    lists = [repr([n for n, on in zip(names, row) if on]) for row in rows]
    out = df.drop(columns=names).assign(**{target: lists})
    note = (f"the 0/1 columns {', '.join(names)} are read as one multi-label target: a row's labels are the "
            "columns holding 1 there")
    return out, target, note


def looks_like_lists(target: pd.Series) -> bool:
    """Auto-detection: every non-missing cell is a bracketed list (``['a', 'b']`` or ``["a"]``).
    Separator-joined labels (``a;b``) are ordinary strings to the eye: they need ``task="multilabel"``."""
    cells = [str(v).strip() for v in target.dropna()]
    if not cells or not all(c.startswith("[") and c.endswith("]") for c in cells):
        return False
    return all(_bracketed(c, "json") is not None or _bracketed(c, "python") is not None for c in cells[:2000])


def prepare_multilabel(df: pd.DataFrame, target: str, config: Any, *, test_data: Any = None,
                       validation_data: Any = None, reason: str = "") -> Any:
    """The ``Prepared`` of a multi-label run: ``y`` a rows x labels 0/1 matrix, ``classes`` the labels."""
    import hashlib

    from ..io.reader import load_table
    from ..models.metrics import resolve_metric
    from .schema import Task
    from .tables import Prepared, _column_roles
    for name, value in (("validation_data", validation_data), ("group_column", config.group_column)):
        if value is not None:
            raise AutoMLInputError(f"A multilabel task does not take {name} yet",
                                   f"leave {name} out: the search cross-validates on the training rows")
    notes: list[str] = []
    present = df[target].notna() & (df[target].astype(str).str.strip() != "")
    if (~present).sum():
        notes.append(f"dropped {int((~present).sum()):,} rows where the target {target!r} is empty")
        df = df.loc[present].reset_index(drop=True)
    labels, fmt = parse_labels(df[target])
    classes = _kept_labels(labels, notes)
    Y, classes = indicator(labels, classes)
    X = df.drop(columns=[c for c in {target, *config.exclude_columns} if c in df.columns])
    X_test = Y_test = None
    if config.test_size is not None and test_data is not None:
        raise AutoMLInputError("Both a test file and a test fraction were given", "give only one of them")
    if config.test_size is not None:
        order = np.random.default_rng(config.seed).permutation(len(X))
        held, keep = np.sort(order[:int(round(config.test_size * len(X)))]), np.sort(order[int(round(config.test_size * len(X))):])
        X_test, Y_test = X.iloc[held].reset_index(drop=True), Y[held]
        X, Y = X.iloc[keep].reset_index(drop=True), Y[keep]
        notes.append(f"{len(held):,} rows ({config.test_size:.0%}) held out as test data before anything else")
    elif test_data is not None:
        test = load_table(test_data, "test")
        absent = [c for c in [target, *X.columns] if c not in test.columns]
        if absent:
            raise AutoMLInputError(f"The test data lacks column(s): {', '.join(map(str, absent[:10]))}",
                                   "give a test file with the training file's columns")
        test = test.loc[test[target].notna()].reset_index(drop=True)
        X_test, Y_test = test[list(X.columns)], indicator(parse_labels(test[target])[0], classes)[0]
    if len(X) < 10:
        raise AutoMLInputError(f"{len(X)} training rows are too few for a multi-label model", "give at least 10 rows")
    _require_labels(classes, target)
    columns = _column_roles(df.drop(columns=[c for c in {target, *config.exclude_columns} if c in df.columns]),
                            X, config, target)
    fingerprint = hashlib.sha256(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes()
                                 + Y.tobytes()).hexdigest()
    return Prepared(target, Task.MULTILABEL, reason or "the target holds a list of labels per row", X, Y,
                    list(classes), None, columns, notes, None, None, X_test, Y_test, None, fingerprint,
                    resolve_metric(config.metric, Task.MULTILABEL), label_format=fmt)


def _require_labels(classes: list[str], target: str) -> None:
    """Two learnable labels at least: with one, one-vs-rest is a yes/no model and its heads answer in two
    columns, not one (a trial failed on it with a shape mismatch)."""
    if len(classes) >= 2:
        return
    found = f"only {classes[0]!r} is" if classes else "no label is"
    raise AutoMLInputError(f"{found} seen in {MIN_LABEL_ROWS} or more rows of {target!r}, and a multi-label model "
                           "needs two such labels",
                           "give more rows per label" + (f", or predict {classes[0]!r} as a yes/no target column"
                                                         if classes else ", or choose another target"))


def _kept_labels(labels: list[list[str]], notes: list[str]) -> list[str]:
    """The labels learned: seen in at least MIN_LABEL_ROWS rows, at most MAX_LABELS of them (most frequent)."""
    counts = pd.Series([x for row in labels for x in row], dtype=object).value_counts()
    rare = counts[counts < MIN_LABEL_ROWS]
    if len(rare):
        notes.append(f"{len(rare)} label(s) seen in fewer than {MIN_LABEL_ROWS} rows are not learned (too few rows "
                     f"to train and validate a head): {', '.join(map(str, rare.index[:10]))}"
                     f"{' ...' if len(rare) > 10 else ''}")
    kept = counts[counts >= MIN_LABEL_ROWS]
    if len(kept) > MAX_LABELS:
        notes.append(f"{len(kept)} labels: the {MAX_LABELS} most frequent are learned, the other {len(kept) - MAX_LABELS} "
                     f"(each in at most {int(kept.iloc[MAX_LABELS])} rows) are not")
        kept = kept.iloc[:MAX_LABELS]
    return sorted(map(str, kept.index))


def multilabel_verdict(target: pd.Series, task: str) -> dict[str, Any] | None:
    """The Task page's reading of a target as multi-label: None unless ``task`` is "multilabel", or "auto" and
    every cell is a bracketed list. Else task, reason, the labels that will be learned and the notes.

    Raises:
        AutoMLInputError: a cell that is no list of labels, or no label seen in MIN_LABEL_ROWS rows.
    """
    if task != "multilabel" and not (task == "auto" and looks_like_lists(target)):
        return None
    notes: list[str] = []
    labels, _ = parse_labels(target)
    classes = _kept_labels(labels, notes)
    _require_labels(classes, str(target.name))
    reason = ("task set to multilabel" if task == "multilabel"
              else "every target cell is a list of labels, like ['a', 'b']")
    per_row = np.mean([len(row) for row in labels])
    notes.append(f"{len(classes)} label(s) learned, {per_row:.1f} per row on average")
    return {"task": "multilabel", "reason": reason, "classes": classes, "positive": None, "notes": notes}


@dataclass(frozen=True)
class LabelProfile:
    """What a column of label lists holds (the Data and Task pages show it): ``counts`` (label, rows, share of
    rows; most frequent first), ``per_row`` (labels in a row, rows) and ``pairs`` (the most common two labels
    together: pair, rows)."""

    n_rows: int
    counts: pd.DataFrame
    per_row: pd.DataFrame
    pairs: pd.DataFrame


def label_profile(column: pd.Series, top_pairs: int = 10) -> LabelProfile:
    """Counts per label, labels per row and the most common co-occurrences of a list-like column.

    Raises:
        AutoMLInputError: a cell that is no list of labels (``parse_labels``'s message).
    """
    from collections import Counter
    from itertools import combinations
    rows, _ = parse_labels(column)
    n = len(rows)
    counts = Counter(label for row in rows for label in set(row))
    pairs = Counter(pair for row in rows for pair in combinations(sorted(set(row)), 2))
    per_row = Counter(len(set(row)) for row in rows)
    table = pd.DataFrame([(label, k, k / max(n, 1)) for label, k in counts.items()], columns=["label", "rows", "share"])
    together = pd.DataFrame([(f"{a} + {b}", k) for (a, b), k in pairs.most_common(top_pairs)], columns=["pair", "rows"])
    return LabelProfile(n, table.sort_values(["rows", "label"], ascending=[False, True], ignore_index=True),
                        pd.DataFrame(sorted(per_row.items()), columns=["labels in the row", "rows"]), together)
