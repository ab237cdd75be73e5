"""A faster executor of a saved featurizer: the same result as ``model[:-1].transform(X)``, sooner.

Nothing here is pickled into models: saved pipelines stay plain scikit-learn / pandas objects. This
only changes *how* a loaded pipeline's stateless cleaning calls are carried out when scoring:

- columns whose entries share the same cleaning calls are cleaned together, once (a REST request
  otherwise pays dozens of tiny pandas calls, one sequence per column);
- ``DataFrame.map(str.strip)`` runs on each column's distinct values only;
- ``DataFrame.replace(list_of_tokens, NaN)`` (one comparison pass per token) becomes one ``isin``;
- for a few rows (a REST request), a categorical entry's fitted steps are replaced by a lookup in a
  table of their own outputs for every training level, missing and unseen (built once per model).

Each entry's fitted steps (imputers, encoders, scalers) then run unchanged on its cleaned columns
and are stacked as the ColumnTransformer stacks them. Substitutes apply only to text columns, where
they are exactly equivalent (pandas' quirk included: mapping an all-missing text column yields
float64); anything else gets the original call. tests/test_use_model.py compares the outputs
with the pipeline's on real data.
"""
from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np
import pandas as pd



def _is_text(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) and series.dtype.na_value is not pd.NA


#: Up to this many rows, text cleaning runs over plain Python lists (pandas' per-call overhead on
#: string arrays was most of a REST request's time).
FEW_ROWS = 64


def _few(frame: pd.DataFrame, clean: Any) -> pd.DataFrame:
    """``clean(value)`` on every cell of a few-row text frame, keeping each column's dtype (the
    frame itself when nothing changes, as for most requests)."""
    columns = frame.to_dict(orient="list")
    changed = {}
    for name, values in columns.items():
        cleaned = [clean(v) for v in values]
        if any(a is not b and a != b for a, b in zip(values, cleaned)):
            changed[name] = pd.Series(cleaned, index=frame.index, dtype=frame[name].dtype)
    if not changed:
        return frame
    return frame.assign(**changed) if all(isinstance(c, str) for c in changed) else \
        pd.DataFrame({c: changed.get(c, frame[c]) for c in frame.columns}, index=frame.index)


def _strip(frame: pd.DataFrame, **kw: Any) -> pd.DataFrame:
    """``frame.map(str.strip, na_action="ignore")`` computed once per distinct value."""
    if not all(_is_text(frame[c]) for c in frame.columns):
        return frame.map(**kw)
    if len(frame) <= FEW_ROWS and frame.notna().any().all():  # an all-missing column becomes float64 below
        return _few(frame, lambda v: v.strip() if isinstance(v, str) else v)
    out = {}
    for i, col in enumerate(frame.columns):
        series = frame.iloc[:, i]
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        if len(series) and (codes < 0).all():
            out[i] = pd.Series(np.nan, index=frame.index, dtype="float64")  # as DataFrame.map returns it
            continue
        stripped = np.array([str.strip(u) for u in uniques] + [np.nan], dtype=object)
        out[i] = pd.Series(stripped[codes], index=frame.index, dtype=series.dtype)
    result = pd.DataFrame(out, index=frame.index)
    result.columns = frame.columns
    return result


def _tokens(frame: pd.DataFrame, *, to_replace: list[str], value: Any) -> pd.DataFrame:
    """``frame.replace(to_replace=tokens, value=NaN)`` as a single ``isin`` pass."""
    text = all(_is_text(frame[c]) or (frame[c].dtype == "float64" and frame[c].isna().all()) for c in frame.columns)
    if not text:
        return frame.replace(to_replace=to_replace, value=value)
    if len(frame) <= FEW_ROWS and all(_is_text(frame[c]) for c in frame.columns):
        tokens = set(to_replace)
        return _few(frame, lambda v: np.nan if isinstance(v, str) and v in tokens else v)
    return frame.mask(frame.isin(to_replace))


def _apply(frame: pd.DataFrame, calls: list[tuple[Any, dict[str, Any]]]) -> pd.DataFrame:
    """The cleaning calls on ``frame``, skipping those that cannot change a few-row frame's values."""
    for i, (func, kw) in enumerate(calls):
        if len(frame) <= FEW_ROWS and _no_op(frame, func, kw, calls[i + 1] if i + 1 < len(calls) else None):
            continue
        func, kw = _substitute(func, kw)
        frame = func(frame, **kw)
    return frame


def _no_op(frame: pd.DataFrame, func: Any, kw: dict[str, Any], following: tuple[Any, dict] | None) -> bool:
    """to_numeric on numbers, and convert_dtypes right before astype(str) on text, give the values back."""
    if func is pd.DataFrame.apply and kw.get("func") is pd.to_numeric:
        return all(dtype.kind in "iuf" for dtype in frame.dtypes)
    if func is pd.DataFrame.convert_dtypes and not kw and following is not None:
        after, after_kw = following
        return after is pd.DataFrame.astype and after_kw == {"dtype": "str"} and \
            all(_is_text(frame.iloc[:, i]) for i in range(frame.shape[1]))
    return False


def _substitute(func: Any, kw: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    if func is pd.DataFrame.map and kw.get("func") is str.strip and kw.get("na_action") == "ignore" and len(kw) == 2:
        return _strip, kw
    if (func is pd.DataFrame.replace and set(kw) == {"to_replace", "value"} and isinstance(kw["to_replace"], list)
            and all(isinstance(t, str) for t in kw["to_replace"])
            and isinstance(kw["value"], float) and math.isnan(kw["value"])):
        return _tokens, kw
    return func, kw


class _Cleaner:
    """The leading stateless steps of a column's pipeline (what its encoder is fed), called directly.

    Calling the wrapped pandas functions (rather than ``Pipeline.transform``) works on any subset of
    a shared entry's columns and skips sklearn's per-call validation.
    """

    def __init__(self, steps: list[Any]) -> None:
        self.steps = [(step.func, step.kw_args or {}) for step in steps]

    def transform(self, frame: pd.DataFrame) -> Any:
        return _apply(frame, self.steps)


def cleaner_of(pipe: Any) -> _Cleaner | None:
    from sklearn.preprocessing import FunctionTransformer
    steps = []
    for _, step in getattr(pipe, "steps", None) or []:
        if not isinstance(step, FunctionTransformer) or step.func is None:
            break
        steps.append(step)
    return _Cleaner(steps) if steps else None


def column_cleaning(ct: Any) -> list[tuple[Any, Any, list, list[str]]]:
    """Per used entry of a fitted featurizer: (cleaning signature, the fitted steps after the cleaning
    as a Pipeline or None, the cleaning calls [(func, kwargs)], the entry's columns), in output order.

    Entries whose cleaning calls are the same share a signature (the funcs and a repr of their kwargs).
    """
    if ct in _ENTRIES:  # kept per fitted featurizer, so the sliced pipelines (and their tables) persist
        return _ENTRIES[ct]
    out = []
    for entry, pipe, cols in ct.transformers_:
        if isinstance(pipe, str) or entry == "remainder" or not len(cols):
            continue
        cleaner = cleaner_of(pipe)
        calls = cleaner.steps if cleaner is not None else []
        signature = tuple((func, repr(sorted(kw.items()))) for func, kw in calls)
        rest = pipe[len(calls):] if len(calls) < len(pipe.steps) else None
        out.append((signature, rest, calls, [str(c) for c in cols]))
    _ENTRIES[ct] = out
    return out


def _clean_groups(entries: list, X: pd.DataFrame) -> dict[Any, pd.DataFrame]:
    """{cleaning signature: the cleaned frame of every column whose entry has that cleaning}."""
    cleaned: dict[Any, pd.DataFrame] = {}
    for signature, _, calls, _ in entries:
        if signature in cleaned:
            continue
        group = [c for sig, _, _, cols in entries if sig == signature for c in cols]
        cleaned[signature] = _apply(X[list(dict.fromkeys(group))], calls)
    return cleaned


def clean_columns(model: Any, X: pd.DataFrame) -> dict[str, pd.Series]:
    """{column: its values after the model's cleaning calls} for the columns of ``X`` the model reads."""
    ct = model.named_steps.get("features") if hasattr(model, "named_steps") else None
    if ct is None or not hasattr(ct, "transformers_"):
        return {}
    entries = [e for e in column_cleaning(ct) if all(c in X.columns for c in e[3])]
    out = {}
    for frame in _clean_groups(entries, X).values():
        for i, col in enumerate(frame.columns):
            out[str(col)] = frame.iloc[:, i]
    return out


#: Up to this many rows, categorical entries are looked up in their level tables (see :func:`level_table`).
TABLE_MAX_ROWS = 1000
_UNSEEN = "\x00unseen\x00"
_ENTRIES: "weakref.WeakKeyDictionary[Any, list]" = weakref.WeakKeyDictionary()
_TABLES: "weakref.WeakKeyDictionary[Any, tuple[dict[str, int], np.ndarray]]" = weakref.WeakKeyDictionary()


def level_table(rest: Any, col: str) -> tuple[list[str], np.ndarray] | None:
    """The fitted steps' own output for every training level of a categorical entry, then for a
    missing value, then for an unseen level (rows in that order), or None when the entry is not a
    per-value encoding (text, dates). Each row is exactly what ``rest.transform`` gives that value."""
    from scipy import sparse
    kinds = {type(s).__name__ for _, s in rest.steps}
    if kinds & {"FeatureUnion", "TfidfVectorizer", "DatetimeEncoder", "FunctionTransformer"}:
        return None
    encoder = next((s for _, s in rest.steps if hasattr(s, "categories_")), None)
    if encoder is None:
        return None
    levels = [str(v) for v in encoder.categories_[0] if not (isinstance(v, float) and v != v)]
    probe = pd.DataFrame({col: pd.Series([*levels, np.nan, _UNSEEN], dtype=object)})
    table = rest.transform(probe)
    return levels, (table.toarray() if sparse.issparse(table) else np.asarray(table, dtype=np.float64))


def _lookup(rest: Any, col: str, values: pd.Series) -> np.ndarray | None:
    """``rest.transform`` of one cleaned column, by table lookup (None: not a per-value encoding)."""
    if rest not in _TABLES:
        made = level_table(rest, col)
        _TABLES[rest] = (None, None) if made is None else ({v: i for i, v in enumerate(made[0])}, made[1])
    index, table = _TABLES[rest]
    if index is None:
        return None
    missing, unseen = len(index), len(index) + 1
    rows = [missing if v is None or v != v else index.get(str(v), unseen) for v in values.tolist()]
    return table[rows]


def featurize(model: Any, X: pd.DataFrame, cleaned: dict[str, pd.Series] | None = None) -> Any:
    """What ``model[:-1].transform(X)`` returns (features, then any dense/scale steps).

    ``cleaned``: :func:`clean_columns` of this same ``X``, when the caller has it already (the REST
    server cleans once for the check and the prediction).
    """
    from scipy import sparse
    from sklearn.utils import check_array
    ct = model.named_steps.get("features") if hasattr(model, "named_steps") else None
    if ct is None or not hasattr(ct, "sparse_output_"):
        return model[:-1].transform(X)
    entries = column_cleaning(ct)
    groups = _clean_groups(entries, X) if cleaned is None else None
    outputs = []
    for signature, rest, _, cols in entries:
        part = groups[signature][cols] if groups is not None else pd.DataFrame({c: cleaned[c] for c in cols})
        looked_up = _lookup(rest, cols[0], part.iloc[:, 0]) if len(X) <= TABLE_MAX_ROWS and len(cols) == 1 \
            and rest is not None else None
        outputs.append(looked_up if looked_up is not None else rest.transform(part) if rest is not None else part)
    if ct.sparse_output_:
        Xt = sparse.hstack([check_array(o, accept_sparse=True, ensure_all_finite=False) for o in outputs]).tocsr()
    else:
        Xt = np.hstack([o.toarray() if sparse.issparse(o) else np.asarray(o) for o in outputs])
    for _, step in model.steps[1:-1]:
        Xt = step.transform(Xt)
    return Xt
