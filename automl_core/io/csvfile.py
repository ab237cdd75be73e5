"""Delimited text files: sniff the encoding, delimiter and header, then parse with pandas, or say why not.

Used by :mod:`automl_core.io.reader`; works on the file's bytes. Only an empty field is missing at read
time (tokens such as ``NA`` survive for :func:`roles.clean_frame` to count), column names are kept
exactly as written, and every problem becomes an :class:`AutoMLInputError` with the line number
where that helps.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from ..errors import AutoMLInputError
from .limits import MAX_COLUMNS, check_columns

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024
FORMATS_FIX = "upload a CSV, TSV, Parquet, Excel or JSON file"
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_DELIMITER_WORDS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# File signatures of formats people rename to .csv by mistake; named so the message can say what it is.
_MAGIC = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"%PDF": "a PDF document", b"PK\x03\x04": "a zip archive (or an Excel .xlsx file)",
    b"\x1f\x8b": "a gzip archive", b"PAR1": "a Parquet file", b"\xd0\xcf\x11\xe0": "an old Office file (.xls/.doc)",
    b"SQLite format 3": "a SQLite database", b"\x7fELF": "a program binary",
}
# The csv module refuses fields over 128 KB by default; a 1 MB cell is odd but legal (pandas reads it).
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


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


def sniff(data: bytes, label: str, *, delimiter: str | None = None, encoding: str | None = None,
          truncated: bool = False) -> CsvSettings:
    """Detect encoding, delimiter and header from the first :data:`SAMPLE_BYTES` of ``data``.

    ``truncated`` says ``data`` is only the start of a longer file (its last line may be cut).
    """
    sample = data[:SAMPLE_BYTES]
    if encoding is None:
        reject_binary(sample, label)
        encoding, note = _sniff_encoding(sample, label)
    else:
        note = "given by the user"
    try:
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample)
    except LookupError:
        raise AutoMLInputError(f"unknown text encoding '{encoding}'", "use e.g. utf-8 or cp1252") from None
    reject_binary_text(text, label)
    lines = text.splitlines()
    if (truncated or len(data) > len(sample)) and len(lines) > 1:
        lines = lines[:-1]  # the last line of a truncated sample may be cut in half
    preferred = "\t" if label.lower().endswith(".tsv") else ","
    if delimiter is None:
        delimiter = _sniff_delimiter(lines[:200], preferred)
    return CsvSettings(delimiter, encoding, _sniff_header(lines[:50], delimiter), note)


def read_csv(data: bytes, label: str, settings: CsvSettings, *, header: bool,
             skip_rows: int) -> tuple[pd.DataFrame, CsvSettings]:
    """The table and the settings finally used (the encoding may fall back to cp1252)."""
    opts = dict(
        sep=settings.delimiter, encoding=settings.encoding, skiprows=skip_rows, index_col=False,
        # Only empty fields are missing at read time; clean_frame handles NA/?/null tokens and reports them.
        keep_default_na=False, na_values=[""], skip_blank_lines=True, low_memory=False,
    )
    _check_header_width(data, label, settings, skip_rows)
    try:
        first = pd.read_csv(io.BytesIO(data), header=None, nrows=1, dtype=str, **opts)
    except pd.errors.EmptyDataError:
        raise AutoMLInputError(f"'{label}' has no rows after skipping {skip_rows}", "lower skip_rows") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise _csv_error(exc, data, label, settings, skip_rows) from None
    check_columns(first.shape[1], label)
    if header:
        names = unique_names([column_name(v, i) for i, v in enumerate(first.iloc[0].tolist())], label)
        # pandas silently drops extra fields when *every* row has them, so check the first rows here.
        long_row = _long_record(data[:SAMPLE_BYTES], settings, skip_rows + 1, len(names), max_records=1000)
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
        return read_csv(data, label, CsvSettings(settings.delimiter, "cp1252", settings.header,
                                                 "not valid UTF-8 past the start; read as cp1252"),
                        header=header, skip_rows=skip_rows)
    except (pd.errors.ParserError, ValueError) as exc:
        raise _csv_error(exc, data, label, settings, skip_rows) from None
    return df, settings


def _check_header_width(data: bytes, label: str, settings: CsvSettings, skip_rows: int) -> None:
    """Refuse an absurdly wide header before pandas builds a column per field (100,000 take 10 s)."""
    if data[:SAMPLE_BYTES].count(settings.delimiter.encode()) <= MAX_COLUMNS:
        return
    text = io.TextIOWrapper(io.BytesIO(data), encoding=settings.encoding, errors="replace", newline="")
    try:
        for i, row in enumerate(csv.reader(text, delimiter=settings.delimiter)):
            if i >= skip_rows:
                check_columns(len(row), label)
                return
    except csv.Error:
        pass  # malformed quoting: pandas reports it


def unique_names(names: list[str], label: str) -> list[str]:
    """``names`` if no name repeats; else an error naming the repeated ones."""
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        shown = ", ".join(repr(d[:80]) for d in dupes[:10]) + (" ..." if len(dupes) > 10 else "")
        raise AutoMLInputError(f"'{label}' has duplicate column names: {shown}",
                               "rename the columns so each name is used once")
    return names


def reject_binary(sample: bytes, label: str) -> None:
    """Refuse known binary formats by their signature before trying to decode them as text."""
    for magic, what in _MAGIC.items():
        if sample.startswith(magic):
            raise AutoMLInputError(f"'{label}' is not a text table: it looks like {what}", FORMATS_FIX)


def reject_binary_text(text: str, label: str) -> None:
    # Control characters (other than tab/newline) are rare in real text and everywhere in binary data.
    n_control = sum(1 for ch in text[:20000] if ch < " " and ch not in "\t\r\n" or ch == "\ufffd")
    if n_control > max(2, 0.01 * min(len(text), 20000)):
        raise AutoMLInputError(f"'{label}' does not look like a text table (it contains binary data)",
                               "upload a CSV, TSV, Parquet, Excel or JSON file, or set the right encoding")


# ------------------------------------------------------------------------------------- sniffing
def _sniff_encoding(sample: bytes, label: str) -> tuple[str, str]:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "UTF-8 byte-order mark found"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "UTF-16 byte-order mark found"
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16, f"no byte-order mark, but every other byte is zero: {utf16.upper()}"
    if b"\x00" in sample:
        raise AutoMLInputError(f"'{label}' does not look like a text table (it contains binary data)", FORMATS_FIX)
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


def _utf16_without_bom(sample: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when the zero bytes sit in every odd/even position (ASCII-heavy UTF-16)."""
    head = sample[:4096 - 4096 % 2]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    for zeros, other, name in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.05 * len(other):
            return name
    return None


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
    try:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    except csv.Error:  # malformed quoting: assume a header, pandas reports the problem when reading
        return True
    if len(rows) < 2 or not rows[0]:
        return True
    numeric = sum(bool(_NUMBER.match(f.strip())) for f in rows[0])
    return numeric * 2 < len(rows[0])


# -------------------------------------------------------------------------------------- parsing
def column_name(value: object, i: int) -> str:
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
    first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return AutoMLInputError(f"'{label}' could not be read as a {settings.delimiter_name}-delimited file: {first_line}",
                            "check the delimiter and quoting, or save the file again as CSV")
