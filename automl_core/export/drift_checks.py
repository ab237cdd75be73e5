"""Checks of new data against a saved model, before it is scored.

One function, :func:`check_input`, compares a frame with a model and its card and returns a frozen
:class:`CheckReport`: required columns that are missing (an error), extra columns (ignored), type
changes, unseen categories (handled by the model, counted), values outside the training range and
per-column drift (population stability index against the training rows). The Predict page, the CLI's
``predict`` and the REST server all show this same report.

The training side is a *profile* written into model.json at save time (:func:`training_profile`).
Values are compared after the model's own cleaning steps (the leading ``FunctionTransformer`` steps
of each column's pipeline), so "unseen" means exactly what the encoder will treat as unknown. Text
columns are cleaned once per distinct value, not per row: a million-row file costs a value count.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..prepare.batch_featurize import clean_columns, cleaner_of
from ..errors import AutoMLInputError

#: PSI above this is flagged as drift (the usual reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major).
DRIFT_THRESHOLD = 0.25
#: Fewer rows than this make PSI noise, so drift is not computed (one REST record, say).
MIN_DRIFT_ROWS = 100
#: Rows named per column whose value is not a number / date (the count covers them all); and the column
#: of the predictions table that shows each flagged row's problem.
MAX_FLAGGED_ROWS = 1000
ROW_FLAG_COLUMN = "input check"
_MAX_SEEN = 5000      # seen categories kept per column in the card; beyond it unseen levels are not counted
_TOP_LEVELS = 30      # categories with their own PSI bin; the rest share one
_N_BINS = 10
_EPS = 1e-4           # floor for empty bins, so PSI stays finite
_SMALL_ROWS = 1000   # up to this many rows, columns are cleaned together rather than per distinct value
_BLOCK_CELLS = 2_000_000  # numeric columns of the training profile are cleaned in blocks of this many cells


# --- the model's own cleaning --------------------------------------------------------------------

def _featurizer(model: Any) -> Any:
    """The fitted ColumnTransformer at the head of a saved pipeline (single model or ensemble), or None."""
    from ..models.families import bag_folds
    folds = bag_folds(model)  # a bag of fold models: every fold reads the same columns the same way
    steps = getattr(folds[0] if folds else model, "named_steps", {})
    ct = steps.get("features")
    return ct if hasattr(ct, "transformers_") else None


def _kind(entry: str, pipe: Any) -> str:
    steps = getattr(pipe, "steps", [])
    names = {type(step).__name__ for _, step in steps}
    if steps and steps[0][0] == "clean_to_numeric":  # the shared numeric entries ("numeric", "numeric_plain", ...)
        return "numeric"
    if "DatetimeEncoder" in names:
        return "datetime"
    if "FeatureUnion" in names or "TfidfVectorizer" in names:
        return "text"
    return "categorical"


def column_plan(model: Any) -> dict[str, tuple[str, Any]]:
    """{raw column: (kind, cleaning pipeline or None)} for every column the model reads."""
    ct = _featurizer(model)
    if ct is None:
        return {}
    plan: dict[str, tuple[str, Any]] = {}
    for entry, pipe, cols in ct.transformers_:
        if isinstance(pipe, str) or entry == "remainder":
            continue
        kind, cleaner = _kind(entry, pipe), cleaner_of(pipe)
        for col in cols:
            plan[str(col)] = (kind, cleaner)
    return plan


def _family(series: pd.Series) -> str:
    """The dtype family a person would recognise: number, boolean, date/time or text."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date/time"
    return "text"


def _clean_numeric(frame: pd.DataFrame, cleaner: Any) -> np.ndarray:
    """The columns of ``frame`` as the model's numeric cleaning leaves them: a float matrix."""
    out = cleaner.transform(frame) if cleaner is not None else frame.apply(pd.to_numeric, errors="coerce")
    return np.asarray(out, dtype=float).reshape(len(frame), -1)


def _numeric_columns(X: pd.DataFrame, plan: dict[str, tuple[str, Any]]) -> Any:
    """(column, cleaned values) for the numeric columns of ``plan``. The cleaning is columnwise, so the
    columns sharing a cleaner are cleaned together, a block of at most _BLOCK_CELLS at a time: one call
    per column cost minutes on a 10,000-column table."""
    groups: dict[int, tuple[Any, list[str]]] = {}
    for col, (kind, cleaner) in plan.items():
        if kind == "numeric" and col in X.columns:
            groups.setdefault(id(cleaner), (cleaner, []))[1].append(col)
    for cleaner, cols in groups.values():
        step = max(1, _BLOCK_CELLS // max(len(X), 1))
        for start in range(0, len(cols), step):
            block = cols[start:start + step]
            values = _clean_numeric(X[block], cleaner)
            for j, col in enumerate(block):
                yield col, values[:, j]


def _clean_counts(series: pd.Series, cleaner: Any) -> tuple[pd.Series, int]:
    """Counts of the cleaned values (NaN dropped) and the number of rows that cleaned to missing.

    Cleaning is elementwise (the dtype conversion depends only on the set of values), so it runs on
    the distinct raw values and the counts are carried over.
    """
    counts = series.value_counts(dropna=False, sort=False)
    raw = pd.DataFrame({series.name: pd.Series(counts.index, dtype=series.dtype)})
    cleaned = cleaner.transform(raw) if cleaner is not None else raw.astype("str")
    values = pd.Series(np.asarray(cleaned, dtype=object).ravel())
    if len(values) != len(counts):  # a cleaning step that changes the shape (never in our featurizer)
        return pd.Series(dtype=float), 0
    keyed = pd.Series(counts.to_numpy(), index=values.to_numpy())
    missing = int(keyed[pd.isna(keyed.index)].sum())
    keyed = keyed[~pd.isna(keyed.index)]
    keyed.index = keyed.index.map(str)
    return keyed.groupby(level=0, sort=False).sum(), missing


# --- the training profile (written into model.json) --------------------------------------------

def training_profile(model: Any, X: pd.DataFrame) -> dict[str, Any]:
    """Per-column summaries of the training rows, for drift, range and unseen-category checks.

    Numeric: training range, decile bin edges and the share of rows per bin (plus missing).
    Categorical: share of the most frequent cleaned levels, of the rest, of missing, and the seen
    levels (up to 5,000). Datetime/text: share missing. Every column: its dtype family.
    """
    plan = column_plan(model)
    found: dict[str, Any] = {}
    n = max(len(X), 1)
    for col, values in _numeric_columns(X, plan):
        finite = values[np.isfinite(values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, _N_BINS + 1)[1:-1])) if len(finite) else np.array([])
        found[col] = {"kind": "numeric", "family": _family(X[col]),
                      "min": float(finite.min()) if len(finite) else None,
                      "max": float(finite.max()) if len(finite) else None, "edges": edges.tolist(),
                      "shares": _numeric_shares(values, edges)}
    for col, (kind, cleaner) in plan.items():
        if col not in X.columns or col in found:
            continue
        raw = X[col]
        entry: dict[str, Any] = {"kind": kind, "family": _family(raw)}
        if kind == "categorical":
            counts, missing = _clean_counts(raw, cleaner)
            top = counts.sort_values(ascending=False, kind="stable")
            entry.update(levels={k: float(v) / n for k, v in top.head(_TOP_LEVELS).items()},
                         other=float(top.iloc[_TOP_LEVELS:].sum()) / n, missing=missing / n,
                         seen=sorted(counts.index)[:_MAX_SEEN] if len(counts) <= _MAX_SEEN else [],
                         seen_complete=len(counts) <= _MAX_SEEN, n_levels=int(len(counts)))
        else:
            entry["missing"] = float(raw.isna().mean())
        found[col] = entry
    columns = {col: found[col] for col in plan if col in found}  # in the model's column order
    return {"version": 1, "n_rows": int(len(X)), "required": list(plan), "columns": columns}


def _numeric_shares(values: np.ndarray, edges: np.ndarray) -> list[float]:
    """Share of rows in each bin (right-closed bins between the edges) and, last, the missing share."""
    finite = np.isfinite(values)
    counts = np.bincount(np.searchsorted(edges, values[finite], side="left"), minlength=len(edges) + 1)
    return [float(c) / max(len(values), 1) for c in counts] + [float((~finite).sum()) / max(len(values), 1)]


def _psi(expected: list[float], actual: list[float]) -> float:
    e = np.maximum(np.asarray(expected, dtype=float), _EPS)
    a = np.maximum(np.asarray(actual, dtype=float), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


# --- the report ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnCheck:
    """What was found for one column the model reads."""

    column: str
    kind: str                        # numeric, categorical, datetime or text
    trained_type: str = ""           # dtype family in training (number, text, boolean, date/time)
    got_type: str = ""
    missing_share: float = 0.0       # share of rows the model will see as missing
    trained_missing_share: float | None = None
    n_unparsable: int = 0            # values that are not numbers / dates: the model sees them as missing
    # Their row positions (0-based, the first MAX_FLAGGED_ROWS) and raw values, so each such row can be
    # flagged beside its prediction: the model predicts it (as if the value were missing) with no warning.
    unparsable_rows: tuple[int, ...] = ()
    unparsable_values: tuple[str, ...] = ()
    n_unseen: int = 0                # rows whose category the model never saw (encoded as unknown)
    unseen_examples: tuple[str, ...] = ()
    n_below: int = 0                 # values under the training minimum
    n_above: int = 0
    trained_min: float | None = None
    trained_max: float | None = None
    psi: float | None = None
    drifted: bool = False

    @property
    def family_changed(self) -> bool:
        if not (self.trained_type and self.got_type) or self.trained_type == self.got_type:
            return False
        # A numeric column that was text in training (disguised missing values such as "NA" in
        # penguins.csv) is cleaned to numbers by the model: numbers here are exactly what it wants.
        return not (self.kind == "numeric" and self.got_type == "number")

    @property
    def type_changed(self) -> bool:
        return self.family_changed or self.n_unparsable > 0

    def findings(self) -> dict[str, str]:
        """Each finding in words, by kind: type, unseen, range, drift (absent when nothing found)."""
        out = {}
        if self.type_changed:
            parts = [f"{self.trained_type} in training, {self.got_type} here"] if self.family_changed else []
            if self.n_unparsable:
                what = ("number", "numbers") if self.kind == "numeric" else ("date", "dates")
                parts.append(f"1 value is not a {what[0]} (treated as missing)" if self.n_unparsable == 1
                             else f"{self.n_unparsable:,} values are not {what[1]} (treated as missing)")
                if self.unparsable_rows:
                    shown = ", ".join(f"{r + 1:,}" for r in self.unparsable_rows[:5])
                    more = ", …" if self.n_unparsable > 5 else ""
                    parts[-1] += f": row{'s' if self.n_unparsable > 1 else ''} {shown}{more}"
            out["type"] = "; ".join(parts)
        if self.n_unseen:
            examples = ", ".join(map(repr, self.unseen_examples[:3]))
            rows = "1 row with a category" if self.n_unseen == 1 else f"{self.n_unseen:,} rows with categories"
            out["unseen"] = f"{rows} not seen in training (e.g. {examples}), encoded as unknown"
        if self.n_below or self.n_above:
            out["range"] = (f"{self.n_below + self.n_above:,} values outside the training range "
                            f"[{self.trained_min:.6g}, {self.trained_max:.6g}]")
        if self.drifted:
            out["drift"] = f"PSI {self.psi:.2f}"
        return out

    @property
    def notes(self) -> str:
        """All findings in words ("" when nothing is worth saying)."""
        return "; ".join(self.findings().values())


@dataclass(frozen=True)
class CheckReport:
    """The check of one input table against a model. ``ok`` is False only for missing columns."""

    n_rows: int
    missing_columns: tuple[str, ...]   # required and absent: scoring is refused
    extra_columns: tuple[str, ...]     # not used by the model: ignored
    unused_absent: tuple[str, ...]     # training columns the model drops anyway, absent here: fine
    columns: tuple[ColumnCheck, ...]
    drift_threshold: float = DRIFT_THRESHOLD
    drift_note: str = ""               # why drift was not computed, if it was not

    @property
    def ok(self) -> bool:
        return not self.missing_columns

    @property
    def type_changes(self) -> tuple[ColumnCheck, ...]:
        return tuple(c for c in self.columns if c.type_changed)

    @property
    def unseen(self) -> tuple[ColumnCheck, ...]:
        return tuple(c for c in self.columns if c.n_unseen)

    @property
    def out_of_range(self) -> tuple[ColumnCheck, ...]:
        return tuple(c for c in self.columns if c.n_below or c.n_above)

    @property
    def drifted(self) -> tuple[ColumnCheck, ...]:
        return tuple(c for c in self.columns if c.drifted)

    def row_flags(self) -> pd.Series:
        """Per input row, what is wrong with its values in words ("" for a clean row): the predictions
        table shows it beside each prediction. Row positions are the input's (0-based)."""
        flags = [""] * self.n_rows
        for c in self.columns:
            for row, value in zip(c.unparsable_rows, c.unparsable_values):
                what = "number" if c.kind == "numeric" else "date"
                note = f"{c.column}: {value!r} is not a {what} (read as missing)"
                flags[row] = f"{flags[row]}; {note}" if flags[row] else note
        return pd.Series(flags, name=ROW_FLAG_COLUMN, dtype="string")

    def error(self) -> AutoMLInputError | None:
        """The error to raise when required columns are missing, else None."""
        return missing_columns_error(self.missing_columns) if self.missing_columns else None

    def summary_lines(self) -> list[str]:
        """A few lines for stderr / a log: one per kind of finding."""
        lines = [f"checked {self.n_rows:,} rows against the model"]
        if self.missing_columns:
            lines.append(f"missing required columns: {', '.join(self.missing_columns)}")
        if self.extra_columns:
            lines.append(f"ignored {len(self.extra_columns)} extra column(s): {', '.join(self.extra_columns[:10])}")
        for key, title in (("type", "type changes"), ("unseen", "unseen categories"),
                           ("range", "out of training range"), ("drift", f"drift (PSI > {self.drift_threshold:g})")):
            found = [f"{c.column}: {c.findings()[key]}" for c in self.columns if key in c.findings()]
            if found:
                lines.append(f"{title}: " + " | ".join(found[:8]) + (" | …" if len(found) > 8 else ""))
        if self.drift_note:
            lines.append(self.drift_note)
        if len(lines) == 1:
            lines.append("no problems found")
        return lines

    def table(self) -> pd.DataFrame:
        """One row per column the model reads, for display."""
        rows = [{"column": c.column, "kind": c.kind, "missing %": round(100 * c.missing_share, 2),
                 "unseen rows": c.n_unseen, "out of range": c.n_below + c.n_above,
                 "PSI": None if c.psi is None else round(c.psi, 3), "notes": c.notes} for c in self.columns]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for REST answers and --json)."""
        out = asdict(self)
        out["ok"] = self.ok
        out["columns"] = [{**asdict(c), "notes": c.notes} for c in self.columns]
        return _finite(out)


def missing_columns_error(columns: tuple[str, ...] | list[str]) -> AutoMLInputError:
    """The one message for required columns absent from the data (names the first ten)."""
    shown = ", ".join(map(repr, columns[:10])) + (f" and {len(columns) - 10} more" if len(columns) > 10 else "")
    return AutoMLInputError(f"The data lacks {len(columns)} column(s) the model needs: {shown}",
                            "add the columns the model was trained on (extra columns are fine, order does not matter)")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def check_input(df: pd.DataFrame, model: Any, card: dict[str, Any], *,
                drift_threshold: float = DRIFT_THRESHOLD, cleaned: dict[str, pd.Series] | None = None) -> CheckReport:
    """Compare ``df`` with what ``model`` (its card holding the training profile) was trained on.

    Never raises for problems in the data: they are in the report (``report.error()`` gives the
    error for missing columns). Columns are matched by name; their order does not matter.
    ``cleaned``: :func:`~automl_core.prepare.batch_featurize.clean_columns` of ``df``, if already computed.
    """
    profile = card.get("profile") or {}
    plan = column_plan(model)
    inputs = [str(c) for c in card.get("input_columns") or getattr(model, "feature_names_in_", [])]
    required = list(profile.get("required") or plan or inputs)
    present = {str(c) for c in df.columns}
    missing = tuple(c for c in required if c not in present)
    extra = tuple(str(c) for c in df.columns if str(c) not in set(inputs) | set(required))
    unused_absent = tuple(c for c in inputs if c not in present and c not in required)
    drift_note = ""
    if not profile:
        drift_note = "this model has no training profile (saved by an older version): drift and ranges not checked"
    elif len(df) < MIN_DRIFT_ROWS:
        drift_note = f"drift not computed: {len(df):,} rows (needs at least {MIN_DRIFT_ROWS})"
    # Few rows: clean every column group-wise at once (what a REST request needs); many rows: per
    # column, on its distinct values only.
    if cleaned is None:
        cleaned = clean_columns(model, df) if len(df) <= _SMALL_ROWS else {}
    checks = []
    for col in required:
        if col in missing or col not in plan:
            continue
        kind, cleaner = plan[col]
        trained = (profile.get("columns") or {}).get(col, {})
        checks.append(_check_column(df[col], kind, cleaner, trained, compute_drift=not drift_note,
                                    threshold=drift_threshold, cleaned=cleaned.get(col)))
    return CheckReport(len(df), missing, extra, unused_absent, tuple(checks), drift_threshold, drift_note)


def _check_column(raw: pd.Series, kind: str, cleaner: Any, trained: dict[str, Any], *, compute_drift: bool,
                  threshold: float, cleaned: pd.Series | None = None) -> ColumnCheck:
    n = max(len(raw), 1)
    raw_missing = raw.isna().to_numpy()
    fields: dict[str, Any] = {"column": str(raw.name), "kind": kind, "trained_type": trained.get("family", ""),
                              "got_type": _family(raw) if not raw_missing.all() else ""}
    psi = None
    if kind == "numeric":
        values = _clean_numeric(raw.to_frame(), cleaner).ravel() if cleaned is None else np.asarray(cleaned, dtype=float)
        finite = np.isfinite(values)
        text = raw.astype("string").str.strip() if fields["got_type"] == "text" else None
        if text is not None:
            from ..prepare.featurize import MISSING_TOKENS  # tokens such as "?" are missing on purpose, not unparsable
            bad = ~finite & ~raw_missing & ~text.isin(MISSING_TOKENS).to_numpy()
            rows = np.flatnonzero(bad)[:MAX_FLAGGED_ROWS]
            fields.update(n_unparsable=int(bad.sum()), unparsable_rows=tuple(int(r) for r in rows),
                          unparsable_values=tuple(str(v) for v in text.iloc[rows]))
        fields["missing_share"] = float((~finite).sum()) / n
        low, high = trained.get("min"), trained.get("max")
        if low is not None and high is not None:
            fields.update(n_below=int((values[finite] < low).sum()), n_above=int((values[finite] > high).sum()),
                          trained_min=low, trained_max=high)
        if trained.get("shares") is not None:
            fields["trained_missing_share"] = trained["shares"][-1]
            if compute_drift:
                psi = _psi(trained["shares"], _numeric_shares(values, np.asarray(trained["edges"], dtype=float)))
    elif kind == "categorical":
        if cleaned is None:
            series, n_missing = _clean_counts(raw, cleaner)
            counts = dict(zip(series.index, series.to_numpy().tolist()))
        else:  # few rows: plain Python beats a dozen pandas calls
            values = cleaned.tolist()
            counts = Counter(str(v) for v in values if not (v is None or v != v))
            n_missing = len(values) - sum(counts.values())
        fields["missing_share"] = n_missing / n
        if trained:
            fields["trained_missing_share"] = trained.get("missing")
            if trained.get("seen_complete"):
                seen = set(trained.get("seen") or [])
                unseen = {k: v for k, v in counts.items() if k not in seen}
                fields.update(n_unseen=int(sum(unseen.values())),
                              unseen_examples=tuple(sorted(unseen, key=lambda k: -unseen[k])[:5]))
            if compute_drift:
                levels = trained.get("levels") or {}
                actual = [float(counts.get(k, 0)) / n for k in levels]
                other = float(sum(v for k, v in counts.items() if k not in levels)) / n
                psi = _psi([*levels.values(), trained.get("other", 0.0), trained.get("missing", 0.0)],
                           [*actual, other, n_missing / n])
    else:
        fields["missing_share"] = float(raw_missing.mean()) if len(raw) else 0.0
        fields["trained_missing_share"] = trained.get("missing")
    if psi is not None:
        fields.update(psi=psi, drifted=psi > threshold)
    return ColumnCheck(**fields)
