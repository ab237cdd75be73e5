"""Read a user's table (CSV/TSV, Parquet, Excel, JSON lines) into a DataFrame, or say clearly why not.

Every problem with the file becomes an :class:`AutoMLInputError` naming the problem and the fix; no
pandas traceback reaches the user. Cells are read as raw as possible: only an empty CSV field is
missing at read time, so tokens such as ``NA`` or ``?`` survive for :func:`roles.clean_frame` to
count and replace (it reports per column what it changed). Column names are kept exactly as written.
"""
from __future__ import annotations

import difflib
import io
import json
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Iterable

import numpy as np
import pandas as pd

from automl_core.io import limits
from automl_core.io.csvfile import (SAMPLE_BYTES, CsvSettings, column_name, read_csv, reject_binary_text, sniff,
                                 unique_names)
from automl_core.errors import AutoMLInputError

Source = str | Path | bytes | bytearray | IO[bytes]

TEXT_EXTENSIONS = {".csv", ".tsv", ".txt"}
EXCEL_EXTENSIONS = {".xlsx", ".xlsm", ".xls"}
JSON_EXTENSIONS = {".jsonl", ".ndjson", ".json"}
SUPPORTED = ".csv, .tsv, .txt, .parquet, .xlsx, .xls, .jsonl, .ndjson, .json"
__all__ = ["CsvSettings", "missing_column_error", "read_table", "sniff_csv", "validate_training_frame"]


def read_table(
    source: Source,
    *,
    name: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    header: bool = True,
    skip_rows: int = 0,
    sheet: str | int | None = None,
) -> pd.DataFrame:
    """Read a table from a path, bytes or a binary file object.

    Args:
        source: a path, or the file's bytes / a binary file object (then ``name`` gives the extension).
        name: the file name, used for its extension and in messages; defaults to the path's name.
        delimiter: CSV delimiter; sniffed among ``, ; TAB |`` when None.
        encoding: text encoding; sniffed when None (BOM, UTF-8, else cp1252/latin-1).
        header: whether the first (non-skipped) row holds column names; if False columns are
            named ``column_1``, ``column_2``, ...
        skip_rows: lines (CSV) or rows (Excel) to skip before the header.
        sheet: Excel sheet name or 0-based index (first sheet when None).

    Returns:
        The table with string column names. For text files ``df.attrs["read_settings"]`` holds
        the delimiter, encoding (and how it was chosen) and header flag that were used.

    Raises:
        AutoMLInputError: missing/empty/binary file, unsupported extension, header without data
            rows, duplicate column names, ragged rows (with the line number), unreadable content,
            a file over the size limit or too large for memory (see :mod:`automl_core.io.limits`).
    """
    data, label = _load_bytes(source, name)
    ext = _extension(label, data)
    _check_memory(data, label, ext)
    if ext in TEXT_EXTENSIONS:
        settings = sniff(data, label, delimiter=delimiter, encoding=encoding)
        df, settings = read_csv(data, label, settings, header=header, skip_rows=skip_rows)
        df = _tidy(df, label)
        df.attrs["read_settings"] = {
            "format": "csv", "delimiter": settings.delimiter, "encoding": settings.encoding,
            "encoding_note": settings.encoding_note, "header": header,
        }
    elif ext == ".parquet":
        df = _read_parquet(data, label)
    elif ext in EXCEL_EXTENSIONS:
        df = _read_excel(data, label, ext, header=header, skip_rows=skip_rows, sheet=sheet)
    else:  # JSON
        df = _read_json(data, label, encoding)
    if df.shape[1] == 0:
        raise AutoMLInputError(f"'{label}' has no columns", "upload a table with a header row and data rows")
    if len(df) == 0:
        raise AutoMLInputError(
            f"'{label}' has a header row but no data rows", "upload a file that contains data below the header"
        )
    if not df.notna().to_numpy().any():
        raise AutoMLInputError(f"every cell of '{label}' is empty", "upload a file that contains values")
    return df


def sniff_csv(
    source: Source, *, name: str | None = None, delimiter: str | None = None, encoding: str | None = None
) -> CsvSettings:
    """Detect a delimited text file's encoding, delimiter and whether its first row is a header.

    Args:
        source: path, bytes or binary file object (only the first 256 KB are looked at).
        name: file name for messages (and ``.tsv`` prefers a tab delimiter).
        delimiter, encoding: keep these as given instead of detecting them.

    Returns:
        The detected :class:`CsvSettings`.

    Raises:
        AutoMLInputError: missing or empty file, or binary content that is not text.
    """
    data, label = _load_bytes(source, name, limit=SAMPLE_BYTES)
    return sniff(data, label, delimiter=delimiter, encoding=encoding, truncated=len(data) > SAMPLE_BYTES)


def validate_training_frame(df: pd.DataFrame, target: str) -> None:
    """Check that ``df`` can be trained on to predict ``target``.

    Raises:
        AutoMLInputError: only one column, no rows, the target is absent (close names are
            suggested), or no usable feature column besides the target.
    """
    if df.shape[1] < 2:
        only = df.columns[0] if df.shape[1] else "none"
        raise AutoMLInputError(f"the table has only one column ({only!r}), so there is nothing to learn from",
                               "check the delimiter (comma, semicolon, tab or pipe) or add feature columns")
    if len(df) == 0:
        raise AutoMLInputError("the table has no rows", "upload a file with data rows")
    if target not in df.columns:
        raise missing_column_error(target, df.columns, what="target column")
    features = [c for c in df.columns if c != target and not df[c].isna().all()]
    if not features:
        raise AutoMLInputError(f"no feature columns left besides the target {target!r} (the others are empty)",
                               "add columns with values that can predict the target")


def missing_column_error(column: str, columns: Iterable[object], *, what: str = "column") -> AutoMLInputError:
    """Build the error for an absent column, naming the closest existing column names."""
    names = [str(c) for c in columns]
    folded = {n.strip().casefold(): n for n in names}
    close = [folded[column.strip().casefold()]] if column.strip().casefold() in folded else []
    close += [c for c in difflib.get_close_matches(column, names, n=3, cutoff=0.6) if c not in close]
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else (
        f"choose one of: {', '.join(repr(n) for n in names[:10])}{' ...' if len(names) > 10 else ''}")
    return AutoMLInputError(f"{what} {column!r} is not in the table", hint)


# ---------------------------------------------------------------------------------------- loading
def _load_bytes(source: Source, name: str | None, limit: int | None = None) -> tuple[bytes, str]:
    """Return the file's bytes (or its first ``limit`` bytes, and one more to tell it was cut)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        label = name or path.name
        if not path.exists():
            raise AutoMLInputError(f"file not found: {str(path)!r}", "check the path and the file name")
        if path.is_dir():
            raise AutoMLInputError(f"{str(path)!r} is a folder, not a file", "give the path of a data file")
        if limit is None:
            limits.check_file_size(path.stat().st_size, label)
            if path.suffix.lower() in TEXT_EXTENSIONS:  # before a byte is read: text needs no metadata
                limits.check_memory(path.stat().st_size * limits.TEXT_FACTOR, label, "estimated from its size")
        with path.open("rb") as fh:
            data = fh.read() if limit is None else fh.read(limit + 1)
    elif isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), name or "uploaded file"
    elif hasattr(source, "read"):
        raw = source.read()
        if isinstance(raw, str):  # a text-mode handle: accept it rather than failing on a detail
            raw = raw.encode("utf-8")
        data, label = bytes(raw), name or str(getattr(source, "name", "uploaded file"))
    else:
        raise AutoMLInputError(
            f"cannot read a {type(source).__name__} as a table", "pass a file path, bytes or a binary file object"
        )
    if limit is None:
        limits.check_file_size(len(data), label)
    if re.fullmatch(rb"\s*", data):  # no stripped copy of a big file
        raise AutoMLInputError(f"'{label}' is empty", "upload a file that contains a header row and data rows")
    return data, label


def _extension(label: str, data: bytes) -> str:
    """The format to read: from the file name, or from the content when there is no extension."""
    ext = Path(label).suffix.lower()
    if ext in TEXT_EXTENSIONS | EXCEL_EXTENSIONS | JSON_EXTENSIONS | {".parquet"}:
        return ext
    if ext:
        raise AutoMLInputError(f"unsupported file type '{ext}' ({label!r})", f"save the table as one of {SUPPORTED}")
    # No extension (e.g. raw bytes without a name): look at the content.
    if data.startswith(b"PAR1"):
        return ".parquet"
    if data.startswith(b"PK\x03\x04"):
        return ".xlsx"
    return ".json" if data.lstrip()[:1] in (b"[", b"{") else ".csv"


def _check_memory(data: bytes, label: str, ext: str) -> None:
    """Refuse a file that would not fit in memory once read, judged from its size or metadata."""
    if ext == ".parquet":
        estimate, how = _parquet_memory(data)
    elif ext in EXCEL_EXTENSIONS:
        estimate, how = _excel_memory(data)
    elif ext in JSON_EXTENSIONS:
        estimate, how = len(data) * limits.JSON_FACTOR, "estimated from its size"
    else:
        estimate, how = len(data) * limits.TEXT_FACTOR, "estimated from its size"
    limits.check_memory(estimate, label, how)


def _parquet_memory(data: bytes) -> tuple[float, str]:
    """Bytes the decoded table takes: rows x width per column, strings judged by their statistics.

    The metadata's row count is what matters: a compressed bomb is small on disk and huge decoded.
    """
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
    except Exception:  # unreadable: _read_parquet says so
        return float(len(data)), "estimated from its size"
    rows, width = meta.num_rows, 0.0
    for i in range(meta.num_columns):
        column = meta.schema.column(i)
        if column.physical_type in ("BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"):
            longest, stored = 0, 0
            for g in range(meta.num_row_groups):
                chunk = meta.row_group(g).column(i)
                stored += chunk.total_uncompressed_size
                stats = chunk.statistics
                if stats is not None and stats.has_min_max:
                    longest = max(longest, len(str(stats.min)), len(str(stats.max)))
            width += 16 + max(longest, stored / max(rows, 1))
        else:
            width += 8
    return len(data) + 2 * rows * width, f"{rows:,} rows x {meta.num_columns:,} columns"


def _excel_memory(data: bytes) -> tuple[float, str]:
    """Bytes openpyxl needs: the workbook's unpacked XML times a factor for its cell objects."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            unpacked = sum(i.file_size for i in book.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return float(len(data)), "estimated from its size"
    return unpacked * limits.EXCEL_FACTOR, f"{limits.size_text(unpacked)} once unpacked"


# ----------------------------------------------------------------------------------------- formats
def _read_parquet(data: bytes, label: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(io.BytesIO(data)).read()  # read_table refuses repeated names
        limits.check_columns(table.num_columns, label)
        unique_names([str(c) for c in table.column_names], label)  # pandas would mangle or refuse them
        df = table.to_pandas()
    except AutoMLInputError:
        raise
    except Exception as exc:  # pyarrow raises many types; all mean "not a readable parquet file"
        raise AutoMLInputError(
            f"'{label}' is not a readable Parquet file ({type(exc).__name__})", "check the file or export it again"
        ) from None
    return _tidy(df, label)


def _read_excel(
    data: bytes, label: str, ext: str, *, header: bool, skip_rows: int, sheet: str | int | None
) -> pd.DataFrame:
    if ext == ".xls":
        raise AutoMLInputError(
            f"'{label}' is an old-style .xls workbook, which is not supported", "save it as .xlsx or CSV"
        )
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine="openpyxl")
    except Exception as exc:  # openpyxl/zipfile errors: not a workbook
        raise AutoMLInputError(
            f"'{label}' is not a readable Excel workbook ({type(exc).__name__})", "save it again as .xlsx or CSV"
        ) from None
    sheets = book.sheet_names
    chosen = 0 if sheet is None else sheet
    if chosen not in (sheets if isinstance(chosen, str) else range(len(sheets))):
        raise AutoMLInputError(f"sheet {chosen!r} is not in '{label}'",
                               f"choose one of: {', '.join(map(repr, sheets))}")
    raw = book.parse(chosen, header=None, skiprows=skip_rows)
    if raw.empty:
        raise AutoMLInputError(f"sheet {chosen!r} of '{label}' is empty", "choose the sheet that holds the table")
    limits.check_columns(raw.shape[1], label)
    if not header:
        raw.columns = [f"column_{i + 1}" for i in range(raw.shape[1])]
        return _tidy(raw, label)
    names = [column_name(v, i) for i, v in enumerate(raw.iloc[0].tolist())]
    # Re-read with the header so pandas infers column types without the header row mixed in.
    df = book.parse(chosen, header=0, skiprows=skip_rows)
    df.columns = names
    return _tidy(df, label)


def _read_json(data: bytes, label: str, encoding: str | None) -> pd.DataFrame:
    try:
        text = data.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AutoMLInputError(f"'{label}' is not valid UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    reject_binary_text(text, label)
    stripped = text.lstrip()
    if stripped.startswith("["):
        records = _json_loads(stripped, label, "fix the JSON or save the table as CSV")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise AutoMLInputError(f"'{label}' is a JSON array but not of records (objects)",
                                   'use [{"col": value, ...}, ...] or one object per line')
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            record = _json_loads(line, label, "write one JSON object per line (JSON lines)", lineno)
            if not isinstance(record, dict):
                raise AutoMLInputError(f"'{label}' line {lineno} is not a JSON object",
                                       'write one object per line, like {"col": value}')
            records.append(record)
    if records:
        limits.check_columns(len(records[0]), label)
    return _tidy(pd.DataFrame.from_records(records), label)


def _json_loads(text: str, label: str, fix: str, lineno: int | None = None) -> Any:
    where = f"'{label}'" + (f" line {lineno}" if lineno else "")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = "" if lineno else f" at line {exc.lineno}"
        raise AutoMLInputError(f"{where} is not valid JSON ({exc.msg}{at})", fix) from None
    except RecursionError:  # [[[[...]]]] thousands deep: Python's parser gives up
        raise AutoMLInputError(f"{where} is nested too deeply to be a table",
                               "give one flat object per record (a column per key)") from None


def _tidy(df: pd.DataFrame, label: str) -> pd.DataFrame:
    """String column names, each used once, and cells every later step can handle.

    Parquet and JSON can hold what CSV cannot: lists and objects (kept as their JSON text), a
    column mixing numbers and strings (all as strings, which is what a CSV would give), and
    decimals (as floats).
    """
    df.columns = unique_names([str(c) for c in df.columns], label)
    for i in range(df.shape[1]):
        column = df.iloc[:, i]
        if column.dtype == object:
            df.isetitem(i, _plain_cells(column))
    return df


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _plain_cells(column: pd.Series) -> pd.Series:
    present = column.dropna()
    kinds = {type(v) for v in present}
    if not kinds or kinds <= {str}:
        return column
    if kinds <= {int} and not all(_INT64_MIN <= v <= _INT64_MAX for v in present):
        return column.map(str, na_action="ignore").astype("str")  # past int64: digits kept exactly
    if kinds <= {Decimal, int, float} and Decimal in kinds:
        return pd.to_numeric(column.map(lambda v: float(v) if isinstance(v, Decimal) else v, na_action="ignore"))

    def text(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (dict, list, tuple)):
            return json.dumps(value, ensure_ascii=False, default=str)
        return str(value)

    if len(kinds) == 1 and not kinds & {dict, list, tuple, np.ndarray}:
        return column  # one plain type (e.g. all bool, all date objects): leave it to pandas
    return column.map(text, na_action="ignore").astype("str")


def load_table(data: Any, what: str = "data") -> pd.DataFrame:
    """A table given as a DataFrame (checked not to be empty) or as a file path / upload (read)."""
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise AutoMLInputError(f"The {what} table is empty", "give a table with a header and rows")
        table = data.copy(deep=False) if data.attrs else data
    else:
        table = read_table(data)
    # pandas deep-copies attrs into every frame and column it derives: on 10,000 columns the reader's
    # small settings dict cost a minute of copying over one run. Nothing downstream reads them.
    table.attrs = {}
    return table
