"""Conversions at the store's edge: JSON text, UTC timestamps and quoted SQL identifiers.

JSON columns are plain VARCHAR holding ``json.dumps`` output. Values arriving from a search are
often numpy scalars or NaN, which ``json`` either rejects or writes as the non-standard ``NaN``;
:func:`dumps` turns them into plain numbers and ``null`` so every stored document is valid JSON.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

UTC = dt.timezone.utc


def to_jsonable(obj: Any) -> Any:
    """Return ``obj`` as plain JSON values: NaN/inf become None, numpy scalars plain numbers.

    Anything unknown is stored as its ``str`` rather than raised: losing a trial because one
    parameter is an odd object would be worse than keeping its text.
    """
    if isinstance(obj, Enum):  # before str/int: Role and Task are str subclasses
        return to_jsonable(obj.value)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, decimal.Decimal):
        return to_jsonable(float(obj))
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    return str(obj)


def dumps(obj: Any) -> str:
    """Serialize to strict JSON text (see :func:`to_jsonable`)."""
    return json.dumps(to_jsonable(obj), ensure_ascii=False, allow_nan=False)


def loads(text: str | None, default: Any = None) -> Any:
    """Parse stored JSON text; ``None`` (SQL NULL) gives ``default``."""
    return default if text is None else json.loads(text)


def utcnow() -> dt.datetime:
    """The current time as a timezone-aware UTC datetime (stored in TIMESTAMPTZ columns)."""
    return dt.datetime.now(UTC)


def as_utc(value: Any) -> Any:
    """Present a timestamp read from DuckDB in UTC.

    DuckDB hands TIMESTAMPTZ values back in the machine's local zone; converting here means
    callers always see UTC whatever the server's TZ is.
    """
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def frame_as_utc(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Convert the named timestamp columns of ``df`` to UTC (in place) and return it."""
    for col in columns:
        if col in df.columns and isinstance(df[col].dtype, pd.DatetimeTZDtype):
            df[col] = df[col].dt.tz_convert("UTC")
    return df


def quote_ident(name: str) -> str:
    """Quote a SQL identifier built from user data (a column name): double any inner quote."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote a SQL string literal: double any inner single quote."""
    return "'" + str(text).replace("'", "''") + "'"
