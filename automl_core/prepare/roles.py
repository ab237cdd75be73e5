"""Clean disguised missing values and decide each column's modelling role.

Role rules, applied in this order (the reason on each :class:`ColumnInfo` says which fired, with numbers):

1. EMPTY: every value is missing.
2. CONSTANT: exactly one distinct non-missing value.
3. BOOLEAN: bool dtype, or exactly two distinct values forming a yes/no pair (yes/no, true/false,
   y/n, t/f, 0/1 -- numbers or strings, any case). Numeric 0/1 columns are BOOLEAN too: it is the
   same information and tells the featurizer not to scale them.
4. DATETIME: datetime dtype; or strings of which >= 95% of a sample of 2,000 non-missing values parse
   with one format (``datetime_format`` is recorded; formats such as ``2011-01-01``, ``1/31/2012``,
   ``Jan 1 2000``, ``2019-03-23 20:21:09``), or with mixed formats when the values hold digits;
   or integers that are all valid 8-digit ``yyyymmdd`` dates (e.g. 19580329, format ``%Y%m%d``).
5. Numbers: ID when integer-valued, >= 20 values, all unique, and either the name looks like an id
   (``id``, ``*_id``, ``PassengerId``, ``userID``, ``PID``) or the values are consecutive (max - min + 1 <=
   1.01 x count, like a row number) and the name does not mention year/date/time. An integer column
   named like an id that is not unique is a code: CATEGORICAL (<= 25 levels) or HIGH_CARDINALITY.
   Everything else numeric is NUMERIC.
6. Strings: ID when >= 20 values, >= 95% unique, short (mean length < 30) and mostly without spaces
   (< 10% of values contain one); TEXT when >= 50% unique and long (mean >= 3 words or mean length
   > 30); CATEGORICAL when <= 25 distinct values; else HIGH_CARDINALITY.

Statistics that are slow on a million rows (lengths, word counts, date parsing) use a fixed-seed
sample of 2,000 non-missing values; counts of missing and distinct values use the whole column.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from automl_core.errors import AutoMLInputError
from automl_core.io.reader import missing_column_error
from automl_core.prepare.schema import ColumnInfo, Role

MISSING_TOKENS = frozenset({"", "?", "na", "n/a", "nan", "null", "none", "-", "--"})  # compared casefolded
MAX_CATEGORICAL_LEVELS = 25
DATE_SHARE = 0.95
SAMPLE_SIZE = 2000
MIN_ROWS_FOR_ID = 20
BOOLEAN_PAIRS = ({"yes", "no"}, {"true", "false"}, {"y", "n"}, {"t", "f"}, {"0", "1"})
# Tried in order; the first that parses >= 95% of the sample is recorded as the column's format.
DATE_FORMATS = (
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S.%f",
    "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%y",
    "%d.%m.%Y", "%d.%m.%Y %H:%M", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%b %d %Y", "%B %d %Y", "%d %b %Y",
    "%d %B %Y", "%d-%b-%Y", "%b %d, %Y", "%B %d, %Y", "%Y-%m", "%Y%m%d", "ISO8601",
)
_ID_NAME = re.compile(r"^id$|(^|[_\s.\-])id$|^id[_\s.\-]", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9]I[dD]$")  # PassengerId, userID; case-sensitive so "paid" is no id
_ABBREVIATED_ID = re.compile(r"^[A-Z]ID$")  # PID (a parcel id), UID, SID; one capital so "PAID" is no id
_TIME_NAME = re.compile(r"year|date|time|month|day|week|hour", re.IGNORECASE)


@dataclass(frozen=True)
class CleaningReport:
    """What :func:`clean_frame` changed, per column.

    Attributes:
        missing_tokens: column -> {raw token as found (e.g. " ?"): count} turned into missing values.
        stripped: column -> number of cells whose surrounding whitespace was removed.
        converted_to_numeric: columns of strings that became numbers after cleaning.
    """

    missing_tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    stripped: dict[str, int] = field(default_factory=dict)
    converted_to_numeric: tuple[str, ...] = ()

    def summary(self) -> list[str]:
        """One sentence per changed column, for display."""
        lines = []
        for col, tokens in self.missing_tokens.items():
            parts = ", ".join(f"{tok!r} x{n:,}" for tok, n in tokens.items())
            lines.append(f"{col!r}: {sum(tokens.values()):,} missing-value tokens replaced ({parts})")
        lines += [f"{col!r}: read as numbers after cleaning" for col in self.converted_to_numeric]
        return lines


def clean_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, CleaningReport]:
    """Strip whitespace in string cells, turn missing-value tokens into NaN, and numeric strings into numbers.

    Tokens (any case, surrounding spaces ignored): ``?``, ``NA``, ``N/A``, ``NaN``, ``null``,
    ``None``, ``-``, ``--`` and empty or whitespace-only strings. A string column whose remaining
    values all parse as numbers becomes int64 (no missing, all whole) or float64.

    Args:
        df: the table as read; not modified.

    Returns:
        The cleaned copy and a :class:`CleaningReport`. Column names are untouched.
    """
    out = df.copy()
    tokens: dict[str, dict[str, int]] = {}
    stripped: dict[str, int] = {}
    converted: list[str] = []
    for i, col in enumerate(df.columns):
        s = df.iloc[:, i]
        if not _is_text(s):
            continue
        clean, found, n_stripped, is_numeric = _clean_column(s)
        if found:
            tokens[str(col)] = found
        if n_stripped:
            stripped[str(col)] = n_stripped
        if is_numeric:
            converted.append(str(col))
        out.isetitem(i, clean)  # positional: safe even if a caller's frame has duplicate names
    return out, CleaningReport(tokens, stripped, tuple(converted))


def infer_roles(
    df: pd.DataFrame,
    *,
    overrides: dict[str, Role | str] | None = None,
    exclude: Iterable[str] = (),
    target: str | None = None,
    report: CleaningReport | None = None,
) -> list[ColumnInfo]:
    """Decide the role of every column (see the module docstring for the rules).

    Call it on the output of :func:`clean_frame`. The target column is left out of the result, as
    are the ``exclude`` columns; columns keep their table order.

    Args:
        df: the cleaned table.
        overrides: column -> role chosen by the user; it wins and is marked ``overridden=True``.
        exclude: columns to leave out.
        target: the column to predict (left out).
        report: the cleaning report, to fill each column's ``missing_tokens``.

    Returns:
        One :class:`ColumnInfo` per remaining column.

    Raises:
        AutoMLInputError: an override or exclusion names an unknown column, or an unknown role.
    """
    columns = [str(c) for c in df.columns]
    overrides = dict(overrides or {})
    excluded = set(exclude)
    for name in list(overrides) + sorted(excluded):
        if name not in columns:
            raise missing_column_error(name, columns)
    infos = []
    for i, name in enumerate(columns):
        if name == target or name in excluded:
            continue
        s = df.iloc[:, i]
        role, reason, fmt = _infer_one(name, s)
        n_missing = int(s.isna().sum())
        if n_missing and role is not Role.EMPTY:  # the counts above are of the non-missing rows: say so
            tokens = (report.missing_tokens if report else {}).get(name, {})
            disguised = ", ".join(f"{t!r} x{k:,}" for t, k in tokens.items())
            reason += f"; {n_missing:,} missing ({n_missing / len(s):.0%}{', ' + disguised if disguised else ''})"
        overridden = name in overrides
        if overridden:
            new_role = _parse_role(overrides[name], name)
            reason = f"set by the user (inferred {role.value}: {reason})"
            if new_role is Role.DATETIME and fmt is None:
                fmt = _date_format(s)
            role, fmt = new_role, fmt if new_role is Role.DATETIME else None
        infos.append(ColumnInfo(
            name=name, role=role, dtype=str(s.dtype), n_missing=n_missing,
            n_unique=int(s.nunique(dropna=True)), reason=reason,
            missing_tokens=dict((report.missing_tokens if report else {}).get(name, {})),
            datetime_format=fmt, overridden=overridden,
        ))
    return infos


def parse_datetime_column(series: pd.Series, fmt: str | None) -> pd.Series:
    """Parse a column the way :func:`infer_roles` recognised it; unparseable values become NaT.

    Times with different UTC offsets in one column (an export spanning a daylight-saving change:
    ``...T10:00:00+01:00`` and ``...T10:00:00+02:00``) come back in UTC; see :func:`utc_offsets`.

    Args:
        series: strings, yyyymmdd integers or datetimes.
        fmt: the recorded ``datetime_format`` (``None``: let pandas guess each value).
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    if pd.api.types.is_numeric_dtype(series):
        series = series.astype("Int64").astype("str")  # yyyymmdd integers: parse their digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" is expected for mixed formats
        return pd.to_datetime(series, format=fmt or "mixed", errors="coerce", utc=len(utc_offsets(series)) > 1)


UTC_OFFSET = r"(Z|[+-]\d{2}:?\d{2})\s*$"  # "Z" or "+02:00" ending a time string


def utc_offsets(series: pd.Series) -> list[str]:
    """The distinct UTC offsets written in a column of time strings ("Z", "+02:00"), sorted; [] for none.

    pandas refuses to parse a column whose offsets differ unless told to convert to UTC, so callers
    parse with ``utc=True`` when this holds two or more, and say so.
    """
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return []
    found = series.dropna().astype("string").str.extract(UTC_OFFSET, expand=False).dropna()
    return sorted(found.unique())


def mixed_offset_note(name: str, offsets: list[str]) -> str:
    """The note a run records for a time column whose values carry different UTC offsets."""
    shown = ", ".join(offsets[:4]) + (" ..." if len(offsets) > 4 else "")
    return f"column {name!r} mixes UTC offsets ({shown}): its times were converted to UTC"


# ------------------------------------------------------------------------------------ the rules
def _infer_one(name: str, s: pd.Series) -> tuple[Role, str, str | None]:
    """Return (role, reason, datetime format) for one column."""
    n = len(s)
    values = s.dropna()
    n_values = len(values)
    if n_values == 0:
        return Role.EMPTY, f"all {n:,} values are missing", None
    n_unique = int(values.nunique())
    if n_unique == 1:
        return Role.CONSTANT, f"one distinct value ({values.iloc[0]!r}) in {n_values:,} non-missing rows", None
    if pd.api.types.is_bool_dtype(s):
        return Role.BOOLEAN, "true/false values", None
    if n_unique == 2:
        pair = {str(v).casefold() for v in values.unique()}
        pair = {"0", "1"} if pair == {"0.0", "1.0"} else pair
        if pair in BOOLEAN_PAIRS:
            return Role.BOOLEAN, f"two values forming a yes/no pair ({', '.join(sorted(pair))})", None
    if pd.api.types.is_datetime64_any_dtype(s):
        return Role.DATETIME, "already a date/time column", None
    if pd.api.types.is_numeric_dtype(s):
        return _numeric_role(name, values, n_unique)
    if not _is_text(s):  # categorical dtype, mixed objects: judge by their text
        values = values.astype("str")
    fmt, share = _date_match(values)
    if share >= DATE_SHARE:
        how = f"format {fmt}" if fmt else "mixed formats"
        return Role.DATETIME, f"{share:.0%} of a {min(n_values, SAMPLE_SIZE):,}-value sample parse as dates ({how})", fmt
    return _string_role(values, n_unique)


def _numeric_role(name: str, values: pd.Series, n_unique: int) -> tuple[Role, str, str | None]:
    n_values = len(values)
    integral = _is_integral(values)
    if integral and _looks_like_yyyymmdd(values):
        return Role.DATETIME, "integers that are all valid yyyymmdd dates (e.g. " f"{int(values.iloc[0])})", "%Y%m%d"
    if integral and n_values >= MIN_ROWS_FOR_ID:
        unique_share = n_unique / n_values
        if _ID_NAME.search(name) or _CAMEL_ID.search(name) or _ABBREVIATED_ID.search(name):
            if unique_share >= 0.95:
                return Role.ID, f"named like an id and {unique_share:.0%} of {n_values:,} values are unique", None
            role = Role.CATEGORICAL if n_unique <= MAX_CATEGORICAL_LEVELS else Role.HIGH_CARDINALITY
            return role, f"an integer code named like an id with {n_unique:,} distinct values", None
        span = float(values.max()) - float(values.min()) + 1
        if n_unique == n_values and span <= 1.01 * n_values and not _TIME_NAME.search(name):
            return Role.ID, f"all {n_values:,} integers unique and consecutive ({int(values.min())}..{int(values.max())}), like a row number", None
    return Role.NUMERIC, f"numbers with {n_unique:,} distinct values", None


def _string_role(values: pd.Series, n_unique: int) -> tuple[Role, str, str | None]:
    n_values = len(values)
    unique_share = n_unique / n_values
    sample = _sample(values)
    lengths = sample.str.len()
    mean_len = float(lengths.mean())
    mean_words = float(sample.str.split().str.len().mean())
    with_space = float(sample.str.contains(r"\s", regex=True).mean())
    if n_values >= MIN_ROWS_FOR_ID and unique_share >= 0.95 and mean_len < 30 and with_space < 0.10:
        return Role.ID, f"{unique_share:.0%} of {n_values:,} values unique, short (mean {mean_len:.0f} characters) and without spaces", None
    if unique_share >= 0.5 and (mean_words >= 3 or mean_len > 30):
        return Role.TEXT, f"free text: {unique_share:.0%} unique, mean {mean_words:.1f} words / {mean_len:.0f} characters", None
    if n_unique <= MAX_CATEGORICAL_LEVELS:
        return Role.CATEGORICAL, f"{n_unique:,} distinct values (at most {MAX_CATEGORICAL_LEVELS}) in {n_values:,} rows", None
    return Role.HIGH_CARDINALITY, f"{n_unique:,} distinct values (more than {MAX_CATEGORICAL_LEVELS}) in {n_values:,} rows", None


def _date_match(values: pd.Series) -> tuple[str | None, float]:
    """The first format that parses most of a sample, and the share it parses."""
    sample = _sample(values.astype("str"))
    # Cheap rejections first: dates are short and contain digits ("mon"/"may" parse in dateutil).
    if float(sample.str.len().mean()) > 40 or float(sample.str.contains(r"\d", regex=True).mean()) < DATE_SHARE:
        return None, 0.0
    # Parse each distinct value once and weight it by its count: categorical codes stay cheap.
    counts = sample.value_counts()
    distinct = pd.Series(counts.index.astype("str"))
    weights = counts.to_numpy() / counts.sum()

    def share_of(fmt: str) -> float:
        # utc=True: values with different UTC offsets parse (to UTC) instead of raising; only the share counts
        return float(weights[pd.to_datetime(distinct, format=fmt, errors="coerce", utc=True).notna().to_numpy()].sum())

    best: tuple[str | None, float] = (None, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in DATE_FORMATS:
            share = share_of(fmt)
            if share >= DATE_SHARE:
                return fmt, share
            best = max(best, (fmt, share), key=lambda t: t[1])
        share = share_of("mixed")
    return (None, share) if share >= DATE_SHARE else best


def _date_format(s: pd.Series) -> str | None:
    """Best-effort format for a column the user declared DATETIME."""
    values = s.dropna()
    if len(values) == 0 or pd.api.types.is_datetime64_any_dtype(s):
        return None
    if pd.api.types.is_numeric_dtype(s):
        return "%Y%m%d" if _is_integral(values) and _looks_like_yyyymmdd(values) else None
    fmt, share = _date_match(values)
    return fmt if share >= DATE_SHARE else None


def _looks_like_yyyymmdd(values: pd.Series) -> bool:
    if values.min() < 10000101 or values.max() > 99991231:
        return False
    sample = _sample(values).astype("int64").astype("str")
    return bool(pd.to_datetime(sample, format="%Y%m%d", errors="coerce").notna().all())


def _parse_role(value: Role | str, column: str) -> Role:
    if isinstance(value, Role):
        return value
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise AutoMLInputError(f"unknown role {value!r} for column {column!r}", f"use one of: {names}") from None


# ------------------------------------------------------------------------------------- helpers
def _clean_column(s: pd.Series) -> tuple[pd.Series, dict[str, int], int, bool]:
    """Clean one text column; returns (column, {token: count}, cells stripped, became numeric).

    Works on the distinct values (pd.factorize) and maps back by code, so a million-row column
    with a few hundred levels costs a few hundred string operations.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    raw = pd.Series(np.asarray(uniques, dtype=object), dtype="str")
    clean = raw.str.strip()
    n_stripped = int(counts[(clean != raw).to_numpy()].sum())
    is_token = clean.str.lower().isin(MISSING_TOKENS).to_numpy()
    found = {str(raw.iloc[j]): int(counts[j]) for j in np.flatnonzero(is_token)}
    clean = clean.mask(is_token)
    numeric = _as_numbers(clean)
    is_numeric = numeric is not None
    # Position len(uniques) holds the missing value that NaN cells (code -1) map to.
    table = np.append((numeric if is_numeric else clean).to_numpy(dtype=object), np.nan)
    values = table[np.where(codes < 0, len(uniques), codes)]
    if not is_numeric:
        return pd.Series(values, index=s.index, dtype="str", name=s.name), found, n_stripped, False
    # int64 only when nothing is missing (it cannot hold NaN); from ints, so big integers stay exact.
    dtype = "int64" if numeric.dtype.kind == "i" and (codes >= 0).all() else "float64"
    return pd.Series(values, index=s.index, name=s.name).astype(dtype), found, n_stripped, True


def _is_text(s: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        return True
    if s.dtype == object:
        return bool(s.dropna().map(lambda v: isinstance(v, str)).all())
    return False


def _is_integral(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values):
        return True
    if pd.api.types.is_float_dtype(values):
        arr = values.to_numpy(dtype="float64")
        return bool(np.isfinite(arr).all() and (arr == np.round(arr)).all())
    return False


def _as_numbers(clean: pd.Series) -> pd.Series | None:
    """The column as int64/float64 if every non-missing value parses as a number, else None."""
    present = clean.notna()
    if not present.any():
        return None
    # Coercing a whole text column is slow (~50 ms per 30k rows); a sample rules most columns out.
    if pd.to_numeric(_sample(clean[present]), errors="coerce").isna().any():
        return None
    if _has_huge_integers(clean[present]):
        return None  # 25-digit integers are identifiers or codes; as floats they would collapse
    numbers = pd.to_numeric(clean, errors="coerce")
    if numbers.notna().sum() != present.sum():
        return None
    if not present.all() or not _fits_int64(numbers):
        # int64 cannot hold NaN (float keeps sklearn-friendly NaN), nor integers past 2**63,
        # which pandas keeps as Python ints or uint64 and astype("int64") would silently wrap.
        return numbers.astype("float64")
    if pd.api.types.is_integer_dtype(numbers):
        return numbers.astype("int64")  # straight from the digits: no float rounding of big ints
    return numbers.astype("int64") if _is_integral(numbers) else numbers.astype("float64")


def _has_huge_integers(values: pd.Series) -> bool:
    """Whether some value is an integer written with more digits than int64 holds."""
    long = values[values.str.len() >= 19]
    digits = long[long.str.fullmatch(r"[-+]?\d+")]
    return any(abs(int(v)) > np.iinfo("int64").max for v in digits)


def _fits_int64(numbers: pd.Series) -> bool:
    """Whether ``astype("int64")`` keeps the values (to_numeric gives floats or uint64 past 2**63)."""
    if numbers.dtype == object:
        return False
    if numbers.dtype.kind == "u":
        return bool(numbers.max() <= np.iinfo("int64").max)
    if numbers.dtype.kind == "f":
        return bool(numbers.abs().max() < 2.0**63)
    return True


def _sample(values: pd.Series) -> pd.Series:
    return values.sample(SAMPLE_SIZE, random_state=0) if len(values) > SAMPLE_SIZE else values
