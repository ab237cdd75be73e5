"""Read a user's table (CSV/TSV, Parquet, Excel, JSON lines) into a DataFrame, or say clearly why not.

Every problem with the file becomes an :class:`AutoMLInputError` naming the problem and the fix; no
pandas traceback reaches the user. Cells are read as raw as possible: only an empty CSV field is
missing at read time, so tokens such as ``NA`` or ``?`` survive for :func:`roles.clean_frame` to
count and replace (it reports per column what it changed). Column names are kept exactly as written.
"""
from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

import pandas as pd

from automl_core.errors import AutoMLInputError

Source = str | Path | bytes | bytearray | IO[bytes]

TEXT_EXTENSIONS = {".csv", ".tsv", ".txt"}
EXCEL_EXTENSIONS = {".xlsx", ".xlsm", ".xls"}
JSON_EXTENSIONS = {".jsonl", ".ndjson", ".json"}
SUPPORTED = ".csv, .tsv, .txt, .parquet, .xlsx, .xls, .jsonl, .ndjson, .json"
DELIMITERS = (",", ";", "\t", "|")
_FORMATS_FIX = "upload a CSV, TSV, Parquet, Excel or JSON file"
_SAMPLE_BYTES = 256 * 1024
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_DELIMITER_WORDS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# File signatures of formats people rename to .csv by mistake; named so the message can say what it is.
_MAGIC = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"%PDF": "a PDF document", b"PK\x03\x04": "a zip archive (or an Excel .xlsx file)",
    b"\x1f\x8b": "a gzip archive", b"PAR1": "a Parquet file", b"\xd0\xcf\x11\xe0": "an old Office file (.xls/.doc)",
    b"SQLite format 3": "a SQLite database", b"\x7fELF": "a program binary",
}


@dataclass(frozen=True)
class CsvSettings:
    """How a delimited text file will be parsed; a UI can show these and let the user edit them.

    ``encoding_note`` says how the encoding was chosen (BOM found, valid UTF-8, or the fallback).
    """

    delimiter: str
    encoding: str
    header: bool
    encoding_note: str = ""

    @property
    def delimiter_name(self) -> str:
        return _DELIMITER_WORDS.get(self.delimiter, repr(self.delimiter))


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
            rows, duplicate column names, ragged rows (with the line number), unreadable content.
    """
    data, label = _load_bytes(source, name)
    ext = _extension(label, data)
    if ext in TEXT_EXTENSIONS:
        settings = sniff_csv(data, name=label, delimiter=delimiter, encoding=encoding)
        df, settings = _read_csv(data, label, settings, header=header, skip_rows=skip_rows)
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
    data, label = _load_bytes(source, name, limit=_SAMPLE_BYTES)
    sample = data[:_SAMPLE_BYTES]
    if encoding is None:
        _reject_binary(sample, label)
        encoding, note = _sniff_encoding(sample, label)
    else:
        note = "given by the user"
    try:
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample)
    except LookupError:
        raise AutoMLInputError(f"unknown text encoding '{encoding}'", "use e.g. utf-8 or cp1252") from None
    _reject_binary_text(text, label)
    lines = text.splitlines()
    if len(data) > len(sample) and len(lines) > 1:
        lines = lines[:-1]  # the last line of a truncated sample may be cut in half
    preferred = "\t" if label.lower().endswith(".tsv") else ","
    if delimiter is None:
        delimiter = _sniff_delimiter(lines[:200], preferred)
    return CsvSettings(delimiter, encoding, _sniff_header(lines[:50], delimiter), note)


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


def _reject_binary(sample: bytes, label: str) -> None:
    """Refuse known binary formats by their signature before trying to decode them as text."""
    for magic, what in _MAGIC.items():
        if sample.startswith(magic):
            raise AutoMLInputError(f"'{label}' is not a text table: it looks like {what}", _FORMATS_FIX)


def _reject_binary_text(text: str, label: str) -> None:
    # Control characters (other than tab/newline) are rare in real text and everywhere in binary data.
    n_control = sum(1 for ch in text[:20000] if ch < " " and ch not in "\t\r\n" or ch == "\ufffd")
    if n_control > max(2, 0.01 * min(len(text), 20000)):
        raise AutoMLInputError(f"'{label}' does not look like a text table (it contains binary data)",
                               "upload a CSV, TSV, Parquet, Excel or JSON file, or set the right encoding")


def _sniff_encoding(sample: bytes, label: str) -> tuple[str, str]:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "UTF-8 byte-order mark found"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "UTF-16 byte-order mark found"
    if b"\x00" in sample:
        raise AutoMLInputError(f"'{label}' does not look like a text table (it contains binary data)",
                               _FORMATS_FIX)
    try:
        # Incremental decoding so a multi-byte character cut at the sample's end is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8", "valid UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252", "not valid UTF-8; read as Windows-1252 (cp1252)"
    except UnicodeDecodeError:
        return "latin-1", "not valid UTF-8 or cp1252; read as Latin-1"


def _sniff_delimiter(lines: list[str], preferred: str) -> str:
    """Pick the delimiter that splits the most lines into the same number (> 1) of fields."""
    text = "\n".join(lines)
    best, best_score = preferred, (0.0, 0, 0)
    for delim in sorted(DELIMITERS, key=lambda d: d != preferred):
        try:
            counts = [len(row) for row in csv.reader(io.StringIO(text), delimiter=delim) if row]
        except csv.Error:
            continue
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        score = (round(counts.count(mode) / len(counts), 2), counts[0] == mode, mode)
        if score > best_score:
            best, best_score = delim, score
    return best


def _sniff_header(lines: list[str], delimiter: str) -> bool:
    """Guess whether the first row is a header: it is unless most of its fields are numbers."""
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    if len(rows) < 2 or not rows[0]:
        return True
    numeric = sum(bool(_NUMBER.match(f.strip())) for f in rows[0])
    return numeric * 2 < len(rows[0])


# ----------------------------------------------------------------------------------------- formats
def _read_csv(
    data: bytes, label: str, settings: CsvSettings, *, header: bool, skip_rows: int
) -> tuple[pd.DataFrame, CsvSettings]:
    """The table and the settings finally used (the encoding may fall back to cp1252)."""
    opts = dict(
        sep=settings.delimiter, encoding=settings.encoding, skiprows=skip_rows, index_col=False,
        # Only empty fields are missing at read time; clean_frame handles NA/?/null tokens and reports them.
        keep_default_na=False, na_values=[""], skip_blank_lines=True, low_memory=False,
    )
    try:
        first = pd.read_csv(io.BytesIO(data), header=None, nrows=1, dtype=str, **opts)
    except pd.errors.EmptyDataError:
        raise AutoMLInputError(f"'{label}' has no rows after skipping {skip_rows}", "lower skip_rows") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise _csv_error(exc, data, label, settings, skip_rows) from None
    if header:
        names = _unique_names([_column_name(v, i) for i, v in enumerate(first.iloc[0].tolist())], label)
        # pandas silently drops extra fields when *every* row has them, so check the first rows here.
        long_row = _long_record(data[:_SAMPLE_BYTES], settings, skip_rows + 1, len(names), max_records=1000)
        if long_row:
            raise _ragged_error(label, *long_row, len(names))
    else:
        names = [f"column_{i + 1}" for i in range(first.shape[1])]
    try:
        df = pd.read_csv(io.BytesIO(data), header=None, names=names, **{**opts, "skiprows": skip_rows + header})
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=names), settings
    except UnicodeDecodeError as exc:
        if settings.encoding != "utf-8":
            raise _csv_error(exc, data, label, settings, skip_rows) from None
        # The sample was valid UTF-8 but a later byte is not: the file is most likely cp1252.
        return _read_csv(data, label, CsvSettings(settings.delimiter, "cp1252", settings.header,
                                                  "not valid UTF-8 past the start; read as cp1252"),
                         header=header, skip_rows=skip_rows)
    except (pd.errors.ParserError, ValueError) as exc:
        raise _csv_error(exc, data, label, settings, skip_rows) from None
    return df, settings


def _column_name(value: object, i: int) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return f"Unnamed: {i}"  # same naming as pandas for an empty header cell
    return str(value)


def _long_record(
    data: bytes, settings: CsvSettings, first_record: int, expected: int, max_records: int | None = None
) -> tuple[int, int] | None:
    """(file line, field count) of the first record with more than ``expected`` fields, if any.

    The csv module respects quotes, so the line is the physical one even after quoted newlines.
    """
    text = io.TextIOWrapper(io.BytesIO(data), encoding=settings.encoding, errors="replace", newline="")
    reader = csv.reader(text, delimiter=settings.delimiter)
    try:
        for i, row in enumerate(reader):
            if i >= first_record and len(row) > expected:
                return reader.line_num, len(row)
            if max_records is not None and i > max_records:
                break
    except csv.Error:
        pass  # malformed quoting: pandas reports it
    return None


def _ragged_error(label: str, line: int, got: int, expected: int) -> AutoMLInputError:
    return AutoMLInputError(f"'{label}' has ragged rows: line {line} has {got} fields but the header has {expected}",
                            "fix that line (often an unquoted delimiter inside a value, or the wrong delimiter chosen)")


def _csv_error(exc: Exception, data: bytes, label: str, settings: CsvSettings, skip_rows: int) -> AutoMLInputError:
    """Turn a pandas parsing error into a one-line message; find the physical line for ragged rows."""
    if isinstance(exc, UnicodeDecodeError):
        return AutoMLInputError(f"'{label}' cannot be decoded as {settings.encoding} (byte {exc.start})",
                                "choose the file's encoding (e.g. cp1252 or latin-1)")
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if match:
        expected = int(match.group(1))
        found = _long_record(data, settings, skip_rows, expected)
        line, got = found or (int(match.group(2)) + skip_rows, int(match.group(3)))
        return _ragged_error(label, line, got, expected)
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return AutoMLInputError(f"'{label}' could not be read as a {settings.delimiter_name}-delimited file: {first_line}",
                            "check the delimiter and quoting, or save the file again as CSV")


def _read_parquet(data: bytes, label: str) -> pd.DataFrame:
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises many types; all mean "not a readable parquet file"
        raise AutoMLInputError(
            f"'{label}' is not a readable Parquet file ({type(exc).__name__})", "check the file or export it again"
        ) from None
    return _string_columns(df, label)


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
    if not header:
        raw.columns = [f"column_{i + 1}" for i in range(raw.shape[1])]
        return raw
    names = [_column_name(v, i) for i, v in enumerate(raw.iloc[0].tolist())]
    # Re-read with the header so pandas infers column types without the header row mixed in.
    df = book.parse(chosen, header=0, skiprows=skip_rows)
    df.columns = names
    return _string_columns(df, label)


def _read_json(data: bytes, label: str, encoding: str | None) -> pd.DataFrame:
    try:
        text = data.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AutoMLInputError(f"'{label}' is not valid UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    _reject_binary_text(text, label)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise AutoMLInputError(f"'{label}' is not valid JSON: {exc.msg} at line {exc.lineno}",
                                   "fix the JSON or save the table as CSV") from None
        if not all(isinstance(r, dict) for r in records):
            raise AutoMLInputError(f"'{label}' is a JSON array but not of records (objects)",
                                   'use [{"col": value, ...}, ...] or one object per line')
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AutoMLInputError(f"'{label}' line {lineno} is not valid JSON ({exc.msg})",
                                       "write one JSON object per line (JSON lines)") from None
            if not isinstance(record, dict):
                raise AutoMLInputError(f"'{label}' line {lineno} is not a JSON object",
                                       'write one object per line, like {"col": value}')
            records.append(record)
    return _string_columns(pd.DataFrame.from_records(records), label)


def _string_columns(df: pd.DataFrame, label: str) -> pd.DataFrame:
    df.columns = _unique_names([str(c) for c in df.columns], label)
    return df


def _unique_names(names: list[str], label: str) -> list[str]:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AutoMLInputError(f"'{label}' has duplicate column names: {', '.join(repr(d) for d in dupes)}",
                               "rename the columns so each name is used once")
    return names
