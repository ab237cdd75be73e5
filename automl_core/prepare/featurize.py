"""Featurization: raw columns (with their roles) -> one numeric matrix.

The fitted featurizer is pickled inside the exported ``model.joblib`` and must load and predict in a
fresh Python that has only public packages installed (see DESIGN.md, "Exported models"). Therefore
the object built here is made *only* of scikit-learn / skrub estimators and of public pandas/numpy
callables wrapped in ``FunctionTransformer`` (they pickle by reference to pandas/numpy). Nothing
defined in this repository -- no class, function or lambda -- ends up inside it.

Layout: one ``ColumnTransformer`` with one entry per raw column (entry name: its transform and the
column's position, never the column's name). Each entry is a ``Pipeline`` whose first steps clean the raw values (disguised missing tokens,
stray whitespace, numbers stored as strings, dtype drift between fit and predict) and whose last
steps encode them. One entry per column makes every output feature attributable to its raw column
through ``ColumnTransformer.output_indices_``.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (FunctionTransformer, OneHotEncoder, OrdinalEncoder,
                                   StandardScaler, TargetEncoder)
from sklearn.feature_extraction.text import TfidfVectorizer

from automl_core.errors import AutoMLInputError
from automl_core.prepare.schema import ColumnInfo, Role, Task

__all__ = ["build_featurizer", "feature_to_column", "featurization_summary", "TRANSFORMS",
           "ONEHOT_MAX_CATEGORIES", "ONEHOT_MIN_FREQUENCY"]

#: Values allowed in a per-column ``mode`` dict.
TRANSFORMS = ("numeric", "onehot", "target", "ordinal", "datetime", "text", "drop")
#: Width caps: one-hot keeps at most 30 columns per raw column (rarer levels pooled into one
#: "infrequent" column); TF-IDF is capped by ``text_max_features`` per text column.
ONEHOT_MAX_CATEGORIES = 30
ONEHOT_MIN_FREQUENCY = 5
#: A numeric column gets a missing-value indicator only when this many training values are missing:
#: an indicator set on one or two rows is an identifier of those rows, which models overfit (one
#: all-missing penguin made a logistic regression 99.99 % sure of the wrong species).
INDICATOR_MIN_MISSING = 5
MISSING_LABEL = "(missing)"

# Disguised missing values, compared after stripping whitespace. Exact matching (not regex) keeps
# cleaning vectorised: a regex DataFrame.replace costs ~1.5 us per cell, 3-5x slower.
MISSING_TOKENS = ["", "?", "??", "???", "NA", "na", "N/A", "n/a", "N/a", "NaN", "nan", "NAN", "null",
                  "NULL", "Null", "None", "none", "NONE", "nil", "NIL", "#N/A", "#NA", "-", "--"]
_TRUE = [v for w in ("true", "t", "yes", "y", "on") for v in (w, w.capitalize(), w.upper())] + ["1", "1.0"]
_FALSE = [v for w in ("false", "f", "no", "n", "off") for v in (w, w.capitalize(), w.upper())] + ["0", "0.0"]

_DROP_REASONS = {
    Role.ID: "identifier: (nearly) unique per row, carries no generalisable signal",
    Role.CONSTANT: "constant: a single value, carries no signal",
    Role.EMPTY: "empty: all values missing",
}
_DROP_CODES = {"role": "", "off": "minimal featurization (mode 'off') skips {role} columns",
               "override": "dropped by per-column override"}


def _ft(fn: Any, /, **kw_args: Any) -> FunctionTransformer:
    """A stateless step calling a *public* pandas/numpy callable (pickles by reference)."""
    return FunctionTransformer(func=fn, kw_args=kw_args or None, feature_names_out="one-to-one",
                               validate=False)


def _clean_strings() -> list[tuple[str, Any]]:
    """Steps turning any raw column into stripped strings, with NaN for every kind of missing.

    ``convert_dtypes`` first, so integral floats become Int64 ("3", not "3.0": an integer-coded
    category that arrives as float at predict time because of one NaN still matches its training
    level); then ``astype("str")`` so a column that arrives with another dtype than at fit
    (all-NaN float, bool vs "True") ends up in the same representation (pandas keeps NaN as NaN).
    """
    return [("clean_dtypes", _ft(pd.DataFrame.convert_dtypes)),
            ("clean_as_str", _ft(pd.DataFrame.astype, dtype="str")),
            ("clean_strip", _ft(pd.DataFrame.map, func=str.strip, na_action="ignore")),
            ("clean_tokens", _ft(pd.DataFrame.replace, to_replace=MISSING_TOKENS, value=np.nan))]


def _clean_numbers() -> list[tuple[str, Any]]:
    """Steps turning any raw column into float64: unparsable strings ("?", "N/A") and inf become NaN.

    inf arrives from files ("inf", "1e999"); imputers and scalers refuse it, so it is missing here.
    """
    return [("clean_to_numeric", _ft(pd.DataFrame.apply, func=pd.to_numeric, errors="coerce")),
            ("clean_as_float", _ft(pd.DataFrame.astype, dtype="float64")),
            ("clean_inf", _ft(pd.DataFrame.replace, to_replace=[np.inf, -np.inf], value=np.nan))]


def _numeric(indicator: bool, scale: bool) -> list[tuple[str, Any]]:
    steps = _clean_numbers() + [("impute", SimpleImputer(strategy="median", add_indicator=indicator,
                                                          keep_empty_features=True))]
    return steps + ([("scale", StandardScaler())] if scale else [])


_BOOL_MAP = [("to_bool", _ft(pd.DataFrame.replace, to_replace=_TRUE + _FALSE,
                              value=["1"] * len(_TRUE) + ["0"] * len(_FALSE)))]


def _boolean() -> list[tuple[str, Any]]:
    # True/"yes"/"Y"/1/1.0 all map to "1" (and the false-likes to "0") so dtype drift cannot create
    # new levels. One-hot with drop="if_binary" then yields a single 0/1 column, and still behaves
    # if intake called a two-label column (e.g. male/female) boolean.
    return _clean_strings() + _BOOL_MAP + [
        ("impute", SimpleImputer(strategy="most_frequent", add_indicator=True)),
        ("encode", OneHotEncoder(drop="if_binary", handle_unknown="ignore", dtype=np.float64))]


def _onehot() -> list[tuple[str, Any]]:
    return _clean_strings() + [
        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LABEL)),
        ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=ONEHOT_MIN_FREQUENCY,
                                 max_categories=ONEHOT_MAX_CATEGORIES, dtype=np.float64))]


def _ordinal(boolean: bool = False) -> list[tuple[str, Any]]:
    return _clean_strings() + (_BOOL_MAP if boolean else []) + [
        ("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                  encoded_missing_value=-2, dtype=np.float64))]


def _target(task: Task, seed: int, scale: bool) -> list[tuple[str, Any]]:
    # TargetEncoder rather than skrub's StringEncoder: 1 column (K for multiclass) instead of 30
    # SVD components, fast on millions of rows, cross-fits in fit_transform so the training matrix
    # does not leak the target, treats NaN as a level and maps unseen levels to the target mean.
    target_type = {Task.BINARY: "binary", Task.MULTICLASS: "multiclass"}.get(task, "continuous")
    # The cv splitter carries the seed (TargetEncoder.random_state is deprecated in sklearn 1.9).
    cv = (StratifiedKFold if task.is_classification else KFold)(5, shuffle=True, random_state=seed)
    steps = _clean_strings() + [("encode", TargetEncoder(target_type=target_type, cv=cv))]
    return steps + ([("scale", StandardScaler())] if scale else [])


def _datetime(fmt: str | None, numeric_source: bool, scale: bool) -> list[tuple[str, Any]]:
    # Parsed like roles.parse_datetime_column: the recorded format, else format="mixed" (pandas'
    # fast per-value parser). datetime64 input (e.g. Parquet) passes through to_datetime whatever the
    # format, so it is never turned into text; only strings are stripped (a regex replace touches
    # string cells only) and yyyymmdd integers are turned into digits. utc=True: one dtype always.
    from skrub import DatetimeEncoder  # here, not at the top: importing skrub costs every run seconds
    digits = [("clean_dtypes", _ft(pd.DataFrame.convert_dtypes)),
              ("clean_as_str", _ft(pd.DataFrame.astype, dtype="str"))] if numeric_source else []
    steps = digits + [
        ("clean_strip", _ft(pd.DataFrame.replace, to_replace=r"^\s+|\s+$", value="", regex=True)),
        ("clean_tokens", _ft(pd.DataFrame.replace, to_replace=MISSING_TOKENS, value=np.nan)),
        ("parse", _ft(pd.DataFrame.apply, func=pd.to_datetime, errors="coerce", utc=True,
                      format=fmt or "mixed")),
        # skrub leaves out time parts (hour) when the training values are all date-only
        ("encode", DatetimeEncoder(resolution="hour", add_weekday=True)),
        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))]
    return steps + ([("scale", StandardScaler())] if scale else [])


def _text(max_features: int) -> list[tuple[str, Any]]:
    # TfidfVectorizer wants a 1-D array of strings without NaN: impute "" then numpy.ravel.
    n_word = max_features // 2
    tfidf = dict(sublinear_tf=True, strip_accents="unicode", dtype=np.float32)
    return _clean_strings() + [
        ("impute", SimpleImputer(strategy="constant", fill_value="")),
        ("clean_ravel", _ft(np.ravel)),
        ("tfidf", FeatureUnion([
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), max_features=n_word, **tfidf)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4),
                                     max_features=max_features - n_word, **tfidf))]))]


def _text_embedded() -> list[tuple[str, Any]]:
    """Sentence embeddings of one text column (``prepare.embeddings``): cleaned, missing as "", one Series."""
    from automl_core.prepare.embeddings import text_encoder
    return _clean_strings() + [("clean_fill", _ft(pd.DataFrame.fillna, value="")),
                               ("clean_squeeze", _ft(pd.DataFrame.squeeze, axis=1)), ("embed", text_encoder())]


def _text_searched(settings: dict[str, Any]) -> list[tuple[str, Any]]:
    """A text family's TF-IDF (``models.text_families.text_settings``): word n-grams, optionally
    character n-grams within word boundaries, each capped at ``max_terms`` terms; or embeddings."""
    if settings.get("kind") == "embedding":
        return _text_embedded()
    tfidf = dict(sublinear_tf=True, strip_accents="unicode", dtype=np.float32, min_df=int(settings["min_df"]),
                 max_features=int(settings["max_terms"]))
    low, high = (int(n) for n in (settings["words"] + "-" + settings["words"]).split("-")[:2])
    parts = [("word", TfidfVectorizer(analyzer="word", ngram_range=(low, high), **tfidf))]
    if settings["chars"] != "none":
        low, high = (int(n) for n in settings["chars"].split("-"))
        parts.append(("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(low, high), **tfidf)))
    return _clean_strings() + [("impute", SimpleImputer(strategy="constant", fill_value="")),
                               ("clean_ravel", _ft(np.ravel)), ("tfidf", FeatureUnion(parts))]


def _auto_kind(role: Role, mode: str) -> tuple[str, str]:
    """(transform kind, drop code) for a role under mode 'auto' or 'off'."""
    if role.dropped:
        return "drop", "role"
    if mode == "off":
        return {Role.NUMERIC: ("numeric_min", ""), Role.BOOLEAN: ("ordinal_bool", ""),
                Role.DATETIME: ("drop", "off"), Role.TEXT: ("drop", "off")}.get(role, ("ordinal", ""))
    return {Role.NUMERIC: "numeric", Role.BOOLEAN: "boolean", Role.CATEGORICAL: "onehot",
            Role.HIGH_CARDINALITY: "target", Role.DATETIME: "datetime", Role.TEXT: "text"}[role], ""


def _is_number_dtype(dtype: str) -> bool:
    return dtype.lower().lstrip("u").startswith(("int", "float"))


def _exact(names: list[str]) -> str:
    """A pattern matching exactly these column names."""
    return r"\A(?:" + "|".join(re.escape(n) for n in names) + r")\Z"


def _validate(columns: list[ColumnInfo], mode: str | dict[str, str], text_max_features: int) -> None:
    names = [c.name for c in columns]
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
    if dupes:
        raise AutoMLInputError(f"Duplicate feature column names: {dupes!r}", "give every column a unique name")
    if isinstance(mode, dict):
        for col, kind in mode.items():
            if col not in names:
                raise AutoMLInputError(f"Featurization override names unknown column {col!r}",
                                       "use one of the feature columns: " + ", ".join(map(repr, names[:20]))
                                       + (f" (and {len(names) - 20:,} more)" if len(names) > 20 else ""))
            if kind not in TRANSFORMS:
                raise AutoMLInputError(f"Featurization override {kind!r} for column {col!r} is not "
                                       f"allowed", f"use one of {', '.join(TRANSFORMS)}")
    elif mode not in ("auto", "off"):
        raise AutoMLInputError(f"Featurization mode {mode!r} is not allowed",
                               "use 'auto', 'off' or a dict of per-column transforms")
    if int(text_max_features) < 2:
        raise AutoMLInputError(f"text_max_features={text_max_features} is too small", "use at least 2")


def build_featurizer(columns: list[ColumnInfo], *, mode: str | dict[str, str] = "auto",
                     scale: bool = False, task: Task = Task.BINARY, seed: int = 0,
                     text_max_features: int = 2000, text: dict[str, Any] | None = None) -> ColumnTransformer:
    """Build the (unfitted) featurizer for the given feature columns (target excluded).

    ``mode``: "auto" (full featurization), "off" (numeric median imputation + ordinal codes only;
    datetime/text dropped) or a dict {column: one of TRANSFORMS} overriding "auto" per column.
    ``scale`` adds StandardScaler to dense numeric-like outputs (for linear / kNN models).
    ``task`` sets the target encoder's target type; ``seed`` its cross-fitting shuffle.
    ``text``: a text family's TF-IDF settings (``models.text_families.text_settings``) for the text
    columns instead of the bounded block; with ``text_only`` set, the other columns are dropped.
    Fit with ``fit(X, y)`` (y is needed when any column is target-encoded); X is the raw frame.
    """
    _validate(columns, mode, text_max_features)
    task = Task(task)
    overrides = dict(mode) if isinstance(mode, dict) else {}
    if text is not None and text.get("text_only"):
        overrides = {c.name: "drop" for c in columns if c.role != Role.TEXT and c.name not in overrides} | overrides
    base_mode = "auto" if isinstance(mode, dict) else mode
    # Numeric columns share one entry: per-column pipelines cost ~10 ms each per fit, which adds
    # up over dozens of columns and ten folds.
    grouped: dict[str, list[str]] = {"numeric": [], "numeric_plain": [], "numeric_min": []}
    entries: list[tuple[str, Any, Any]] = []
    dropped: dict[str, list[str]] = {}  # drop code -> columns
    for i, col in enumerate(columns):
        if col.name in overrides:
            kind = overrides[col.name]
            code = "override" if kind == "drop" else ""
        else:
            kind, code = _auto_kind(col.role, base_mode)
        # Entry names are the engine's own (kind + position), never the column's name: sklearn turns
        # them into keyword arguments (a column called "self" or "remainder" broke named_transformers_)
        # and forbids "__". The raw column stays reachable through each entry's column list.
        name = f"{kind}_{i}"
        if kind == "drop":
            dropped.setdefault(code, []).append(col.name)
            continue
        if kind in grouped:
            if kind == "numeric" and col.n_missing < INDICATOR_MIN_MISSING:
                kind = "numeric_plain"
            grouped[kind].append(col.name)
            continue
        steps = {
                 "boolean": _boolean, "onehot": _onehot, "ordinal": _ordinal,
                 "ordinal_bool": lambda: _ordinal(boolean=True),
                 "target": lambda: _target(task, seed, scale),
                 "datetime": lambda: _datetime(col.datetime_format, _is_number_dtype(col.dtype), scale),
                 "text": lambda: _text(int(text_max_features)) if text is None else _text_searched(text)}[kind]()
        entries.append((name, Pipeline(steps), [col.name]))
    if grouped["numeric_plain"]:
        entries.insert(0, ("numeric_plain", Pipeline(_numeric(False, scale)), grouped["numeric_plain"]))
    if grouped["numeric"]:
        entries.insert(0, ("numeric", Pipeline(_numeric(True, scale)), grouped["numeric"]))
    if grouped["numeric_min"]:
        entries.insert(0, ("numeric_min", Pipeline(_numeric(False, False)), grouped["numeric_min"]))
    # Dropped columns stay as explicit "drop" entries so the reason survives clone() and pickling:
    # one per reason, not per column (on 784 pixel columns, 300 constant ones, per-column selectors
    # were two thirds of every fit), and a selector (not a list) so the columns need not even be
    # present at fit or predict.
    entries += [(f"drop_{code}|drop:{code}", "drop", make_column_selector(pattern=_exact(names)))
                for code, names in dropped.items()]
    if all(e[1] == "drop" for e in entries):
        raise AutoMLInputError(f"None of the {len(columns)} feature columns can be used (all are "
                               "ids, constant, empty or dropped)", "add informative columns or change "
                               "the column roles / featurization overrides")
    # sparse_threshold: stay sparse only when TF-IDF / one-hot make the matrix mostly zeros.
    return ColumnTransformer(entries, remainder="drop", sparse_threshold=0.3)


def _column_transformer(fitted: Any) -> ColumnTransformer:
    """Accept the featurizer itself or a fitted model Pipeline whose first step is it."""
    if isinstance(fitted, Pipeline):
        from ..models.families import bag_folds
        folds = bag_folds(fitted)  # a bag of fold models: the first fold's featurizer stands for all
        fitted = (folds[0] if folds else fitted).steps[0][1]
    if not isinstance(fitted, ColumnTransformer) or not hasattr(fitted, "transformers_"):
        raise TypeError("expected a fitted featurizer from build_featurizer (or a Pipeline starting with one)")
    return fitted


def feature_to_column(fitted_featurizer: Any, columns: list[ColumnInfo]) -> dict[str, str]:
    """Map every output feature name (``get_feature_names_out``) to the raw column it comes from."""
    ct = _column_transformer(fitted_featurizer)
    known = {c.name for c in columns}
    names = ct.get_feature_names_out()
    out: dict[str, str] = {}
    for name, trans, cols in ct.transformers_:
        if isinstance(trans, str) or name not in ct.output_indices_:  # "drop" entries, remainder
            continue
        unknown = [c for c in cols if c not in known]
        if unknown:
            raise ValueError(f"featurizer column {unknown[0]!r} is not among the given columns")
        members = set(cols)
        for feature in names[ct.output_indices_[name]]:
            out[str(feature)] = cols[0] if len(cols) == 1 else _grouped_source(str(feature), name, members)
    return out


def _grouped_source(feature: str, entry: str, cols: set[str]) -> str:
    """The raw column of a feature from a shared numeric entry: the column itself, or its indicator."""
    rest = feature[len(entry) + 2:]  # strip "<entry>__"
    return rest[len("missingindicator_"):] if rest not in cols and rest.startswith("missingindicator_") else rest


def _describe(step_name: str, step: Any) -> str:
    """Words for one fitted step ("" for pure cleaning steps)."""
    if step_name.startswith("clean"):
        return ""
    if isinstance(step, SimpleImputer):
        what = f"{step.strategy.replace('_', '-')} imputation"
        if step.strategy == "constant":
            what = "missing as empty text" if step.fill_value == "" else f"missing as {step.fill_value!r}"
        if step.indicator_ is not None and len(step.indicator_.features_):
            what += " + missing indicator"
        return what
    if isinstance(step, OneHotEncoder):
        pooled = " (rare levels pooled)" if getattr(step, "infrequent_categories_", None) and any(
            c is not None for c in step.infrequent_categories_) else ""
        return ("one-hot (0/1)" if step.drop is not None else "one-hot") + pooled
    if isinstance(step, OrdinalEncoder):
        return "ordinal codes (unknown -1, missing -2)"
    if isinstance(step, TargetEncoder):
        return f"cross-fitted target encoding ({step.target_type_})"
    if isinstance(step, StandardScaler):
        return "standard scaling"
    if type(step).__name__ == "DatetimeEncoder":  # by name: skrub is imported only where dates are encoded
        parts = [str(n).split("_")[-1] for n in step.get_feature_names_out()]
        return "calendar parts (" + ", ".join(p.replace("seconds", "total seconds") for p in parts) + ")"
    if isinstance(step, FeatureUnion):
        return " + ".join(f"TF-IDF {t.analyzer} {t.ngram_range[0]}-{t.ngram_range[1]}-grams "
                          f"({len(t.vocabulary_)} terms)" for _, t in step.transformer_list)
    if step_name == "embed":
        return f"sentence embeddings ({step.n_components_} dimensions, all-MiniLM-L6-v2)"
    return {"parse": "parse datetime (UTC)", "to_bool": "true/false-like values to 1/0"}.get(step_name, step_name)


def featurization_summary(fitted_featurizer: Any, columns: list[ColumnInfo]) -> list[dict[str, Any]]:
    """One row per raw column: column, role, transforms (words), n_features_out, reason."""
    ct = _column_transformer(fitted_featurizer)
    kept = {col: (name, trans) for name, trans, cols in ct.transformers_
            if not isinstance(trans, str) and name != "remainder" for col in cols}
    counts: dict[str, int] = {}
    for source in feature_to_column(ct, columns).values():
        counts[source] = counts.get(source, 0) + 1
    drops: dict[str, str] = {}  # column -> drop code
    for name, trans, sel in ct.transformers:
        if trans == "drop" and isinstance(sel, make_column_selector):
            pattern = re.compile(sel.pattern)
            drops.update({c.name: name.rsplit("|drop:", 1)[1] for c in columns if pattern.search(c.name)})
    rows = []
    for col in columns:
        row = {"column": col.name, "role": col.role.value, "transforms": "dropped",
               "n_features_out": 0, "reason": ""}
        if col.name in kept:
            name, pipe = kept[col.name]
            words = [_describe(n, s) for n, s in pipe.steps]
            if name in ("numeric", "numeric_plain", "numeric_min") and counts.get(col.name, 0) < 2:
                words = [w.replace(" + missing indicator", "") for w in words]  # no missing values here
            row.update(transforms=" → ".join(w for w in words if w), n_features_out=counts.get(col.name, 0))
        else:
            code = drops.get(col.name, "role")
            reason = (_DROP_REASONS.get(col.role, "dropped") if code == "role"
                      else _DROP_CODES[code].format(role=col.role.value))
            row["reason"] = reason + (f" ({col.reason})" if col.reason else "")
        rows.append(row)
    return rows
