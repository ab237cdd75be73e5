"""Column profiles computed by DuckDB straight from a dataset's parquet file.

Parquet is columnar, so each per-column query reads only that column: a few small scans per
column stay fast on 100 MB files without loading the table into pandas.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb

from ._codec import quote_ident, quote_literal, to_jsonable

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}
# Types whose values DuckDB can group, order and hand back as plain Python values.
_NATIVE_TYPES = {"VARCHAR", "BOOLEAN"}
_TEMPORAL_PREFIXES = ("DATE", "TIMESTAMP", "TIME")


#: Wide tables get the first this-many columns profiled: every query re-reads the file's footer,
#: whose size grows with the column count (10,000 columns: ~60 ms a query, 30,000 queries).
MAX_PROFILED_COLUMNS = 200


def profile_parquet(cur: duckdb.DuckDBPyConnection, path: Path, dtypes: dict[str, str],
                    bins: int = 20, top: int = 5, missing_tokens: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Profile the columns of the parquet file at ``path`` (the first MAX_PROFILED_COLUMNS of them).

    Args:
        cur: a DuckDB cursor.
        path: the parquet file.
        dtypes: pandas dtype per column name, reported as ``dtype``.
        bins: histogram bins for numeric columns.
        top: how many most frequent values to report.
        missing_tokens: lower-case texts that mean "missing" (``na``, ``?``...). Text cells holding one,
            surrounding spaces ignored, count as missing and are left out of the values, as the
            engine's cleaning does: one reading of a column on every page.

    Returns:
        One dict per column: name, dtype, sql_type, n_missing (disguised ones included), n_disguised,
        missing_pct, n_distinct, min, max, mean (numeric only), top_values [(value, count)], histogram
        [(left, right, count)] (numeric only; for other columns the top values are the distribution).
    """
    src = str(path)
    described = cur.execute("DESCRIBE SELECT * FROM read_parquet(?)", [src]).fetchall()
    if len(described) > MAX_PROFILED_COLUMNS:
        return _profile_first_columns(cur, path, described, dtypes, bins, top, missing_tokens)
    return [_profile_column(cur, src, name, sql_type, dtypes.get(name, ""), bins, top, sorted(missing_tokens))
            for name, sql_type, *_ in described]


def _profile_first_columns(cur: duckdb.DuckDBPyConnection, path: Path, described: list, dtypes: dict[str, str],
                           bins: int, top: int, missing_tokens: frozenset[str]) -> list[dict[str, Any]]:
    """Profile a wide file's first columns from one read of them, through a parquet file of just those."""
    import tempfile

    import pyarrow.parquet as pq

    names = [d[0] for d in described[:MAX_PROFILED_COLUMNS]]
    with tempfile.TemporaryDirectory(prefix="automl-profile-") as tmp:
        subset = Path(tmp) / "columns.parquet"
        pq.write_table(pq.read_table(path, columns=names), subset)
        return profile_parquet(cur, subset, dtypes, bins, top, missing_tokens)


def _is_numeric(sql_type: str) -> bool:
    return sql_type in _INTEGER_TYPES or sql_type in _FLOAT_TYPES or sql_type.startswith("DECIMAL")


def _profile_column(cur: duckdb.DuckDBPyConnection, src: str, name: str, sql_type: str,
                    dtype: str, bins: int, top: int, missing_tokens: list[str]) -> dict[str, Any]:
    col = quote_ident(name)
    numeric = _is_numeric(sql_type)
    n_disguised = 0
    if sql_type == "VARCHAR":
        # Trimmed and with the missing tokens nulled, the values are the ones the engine's cleaning keeps.
        tokens = ", ".join(quote_literal(t) for t in missing_tokens) or "NULL"
        n_disguised = int(cur.execute(f"SELECT count(*) FILTER (WHERE lower(trim({col})) IN ({tokens})) "
                                      "FROM read_parquet(?)", [src]).fetchone()[0])
        col = f"CASE WHEN lower(trim({col})) IN ({tokens}) THEN NULL ELSE trim({col}) END"
        # Numbers written as text with "NA" among them are numbers once cleaned, so profile them as numbers.
        n_values, n_numbers = cur.execute(f"SELECT count({col}), count(TRY_CAST({col} AS DOUBLE)) "
                                          "FROM read_parquet(?)", [src]).fetchone()
        if n_values and n_values == n_numbers:
            col, numeric = f"TRY_CAST({col} AS DOUBLE)", True
    if numeric:
        # NaN is a value to DuckDB but missing to pandas: count it as missing, keep it out of stats.
        valid = "x IS NOT NULL AND NOT isnan(x)"
        inner = f"SELECT {col} AS v, CAST({col} AS DOUBLE) AS x FROM read_parquet(?)"
        stats_sql = (f"SELECT count(*), count(*) FILTER (WHERE NOT ({valid})), "
                     f"count(DISTINCT v) FILTER (WHERE {valid}), "
                     "min(x) FILTER (WHERE isfinite(x)), max(x) FILTER (WHERE isfinite(x)), "
                     f"avg(x) FILTER (WHERE isfinite(x)) FROM ({inner})")
    else:
        # Dates and nested types are compared as text so results are JSON-able.
        native = sql_type in _NATIVE_TYPES or sql_type.startswith(_TEMPORAL_PREFIXES)
        expr = col if native else f"CAST({col} AS VARCHAR)"
        inner = f"SELECT {expr} AS v, NULL AS x FROM read_parquet(?)"
        valid = "v IS NOT NULL"
        stats_sql = (f"SELECT count(*), count(*) FILTER (WHERE v IS NULL), count(DISTINCT v), "
                     f"CAST(min(v) AS VARCHAR), CAST(max(v) AS VARCHAR), NULL FROM ({inner})")
    n, n_missing, n_distinct, lo, hi, mean = cur.execute(stats_sql, [src]).fetchone()
    shown = "v" if numeric or sql_type in _NATIVE_TYPES else "CAST(v AS VARCHAR)"
    top_sql = (f"SELECT {shown}, count(*) AS n FROM ({inner}) WHERE {valid} GROUP BY v ORDER BY n DESC, v LIMIT ?")
    top_values = [(to_jsonable(v), int(c)) for v, c in cur.execute(top_sql, [src, top]).fetchall()]
    integer = sql_type in _INTEGER_TYPES
    if integer and lo is not None:
        lo, hi = int(lo), int(hi)
    return {
        "name": name, "dtype": dtype, "sql_type": sql_type,
        "n_missing": int(n_missing), "n_disguised": n_disguised, "missing_pct": 100.0 * n_missing / n if n else 0.0,
        "n_distinct": int(n_distinct), "min": to_jsonable(lo), "max": to_jsonable(hi),
        "mean": to_jsonable(mean),
        "top_values": top_values,
        "histogram": _histogram(cur, src, col, lo, hi, bins, integer) if numeric else [],
    }


def _histogram(cur: duckdb.DuckDBPyConnection, src: str, col: str, lo: float | None,
               hi: float | None, bins: int, integer: bool) -> list[tuple[float, float, int]]:
    """Equal-width bins over the finite values; one bin per value for small integer ranges."""
    if lo is None or hi is None:
        return []
    if integer and hi - lo + 1 <= bins:
        # e.g. a 0..7 count column: 8 bins centred on the integers read better than 20 slivers.
        start, width, n_bins = lo - 0.5, 1.0, int(hi - lo + 1)
    elif lo == hi:
        start, width, n_bins = float(lo), 0.0, 1
    else:
        start, width, n_bins = float(lo), (float(hi) - float(lo)) / bins, bins
    counts = [0] * n_bins
    sql = (f"SELECT CASE WHEN ? = 0 THEN 0 ELSE LEAST(CAST(floor((x - ?) / ?) AS BIGINT), ?) END AS b, "
           f"count(*) FROM (SELECT CAST({col} AS DOUBLE) AS x FROM read_parquet(?)) "
           "WHERE isfinite(x) GROUP BY b")
    for b, c in cur.execute(sql, [width, start, width or 1.0, n_bins - 1, src]).fetchall():
        counts[max(0, min(int(b), n_bins - 1))] += int(c)
    edges = [start + i * width for i in range(n_bins + 1)] if width else [start, start]
    return [(_clean(edges[i]), _clean(edges[i + 1]), counts[i]) for i in range(n_bins)]


def _clean(x: float) -> float:
    """Round float noise off bin edges (0.30000000000000004 -> 0.3) for display."""
    return float(f"{x:.12g}") if math.isfinite(x) else x
