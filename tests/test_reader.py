"""Reading user tables: every shared dataset, every supported format, and bad files with clear messages."""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_core.errors import AutoMLInputError
from automl_core.io.reader import CsvSettings, read_table, sniff_csv, validate_training_frame


from shared_data import DATASETS, needs_data


def _manifest() -> list[dict[str, str]]:
    if not (DATASETS / "MANIFEST.tsv").exists():
        return []
    with open(DATASETS / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        return [row for row in csv.DictReader(fh, delimiter="\t") if row["file"].endswith(".csv")]


def _error(path_or_bytes, **kwargs) -> str:
    with pytest.raises(AutoMLInputError) as info:
        read_table(path_or_bytes, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Fix:" in message  # one line, problem and fix
    return message


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------ real datasets
@needs_data
@pytest.mark.parametrize("row", _manifest(), ids=lambda r: r["file"])
def test_reads_every_manifest_csv(row: dict[str, str]) -> None:
    df = read_table(DATASETS / row["file"])
    assert df.shape == (int(row["rows"]), int(row["cols"]))
    assert all(isinstance(c, str) for c in df.columns)
    assert df.attrs["read_settings"]["encoding"] == "utf-8"


@needs_data
def test_column_names_kept_exactly() -> None:
    oj = read_table(DATASETS / "oj_sales_train.csv")
    assert "Large HH" in oj.columns  # the space is kept
    bc = read_table(DATASETS / "breast_cancer_wisconsin.csv")
    assert "mean radius" in bc.columns


@needs_data
def test_penguins_na_tokens_survive_reading_for_clean_frame_to_count() -> None:
    df = read_table(DATASETS / "penguins.csv")
    assert (df["sex"] == "NA").sum() == 11


# ------------------------------------------------------------------------------ formats
def test_latin1_file_falls_back_to_cp1252_and_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path, "latin.csv", "name,city\nJosé,Montréal\nRené,Québec\n".encode("latin-1"))
    df = read_table(path)
    assert df["name"].tolist() == ["José", "René"]
    assert df.attrs["read_settings"]["encoding"] == "cp1252"
    assert sniff_csv(path).encoding == "cp1252"


def test_non_utf8_byte_far_into_the_file_is_still_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "late.csv", b"a,b\n" + b"x,1\n" * 100_000 + "é,2\n".encode("latin-1"))
    df = read_table(path)
    assert df["a"].iloc[-1] == "é" and df.attrs["read_settings"]["encoding"] == "cp1252"


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "bom.csv", "\ufeffname,val\nx,1\ny,2\n".encode("utf-8"))
    df = read_table(path)
    assert list(df.columns) == ["name", "val"]
    assert sniff_csv(path).encoding == "utf-8-sig"


def test_utf16_with_bom(tmp_path: Path) -> None:
    df = read_table(_write(tmp_path, "u16.csv", "name,val\nx,1\ny,2\n".encode("utf-16")))
    assert list(df.columns) == ["name", "val"] and df["val"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("name", "data", "delimiter"),
    [
        ("semi.csv", b"a;b;c\n1,5;2;x\n3,5;4;y\n", ";"),
        ("tabs.tsv", b"a\tb\n1\t2\n3\t4\n", "\t"),
        ("tabs.txt", b"a\tb\n1\t2\n3\t4\n", "\t"),
        ("pipe.csv", b"a|b\n1|2\n3|4\n", "|"),
        ("comma.csv", b'a,b\n"x;y",2\n"z;w",4\n', ","),
    ],
)
def test_delimiter_is_sniffed(tmp_path: Path, name: str, data: bytes, delimiter: str) -> None:
    path = _write(tmp_path, name, data)
    settings = sniff_csv(path)
    assert settings.delimiter == delimiter
    df = read_table(path)
    assert df.attrs["read_settings"]["delimiter"] == delimiter and len(df) == 2 and df.shape[1] >= 2


def test_explicit_delimiter_and_header_false_and_skip_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", b"exported by tool\n1;2\n3;4\n")
    df = read_table(path, delimiter=";", header=False, skip_rows=1)
    assert list(df.columns) == ["column_1", "column_2"] and df["column_2"].tolist() == [2, 4]


def test_sniff_csv_returns_frozen_settings(tmp_path: Path) -> None:
    settings = sniff_csv(_write(tmp_path, "n.csv", b"1,2,3\n4,5,6\n"))
    assert settings == CsvSettings(",", "utf-8", False, settings.encoding_note)
    assert settings.delimiter_name == "comma"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.delimiter = ";"  # type: ignore[misc]
    assert sniff_csv(_write(tmp_path, "h.csv", b"a,b\n1,2\n")).header is True


def test_parquet_xlsx_jsonl_and_json_array(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    _write(tmp_path, "t.jsonl", b'{"a": 1, "b": "x"}\n\n{"a": 2, "b": "y"}\n')
    _write(tmp_path, "t.ndjson", b'{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    _write(tmp_path, "t.json", b'[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]')
    for name in ("t.parquet", "t.xlsx", "t.jsonl", "t.ndjson", "t.json"):
        df = read_table(tmp_path / name)
        assert list(df.columns) == ["a", "b"], name
        assert df["a"].tolist() == [1, 2] and df["b"].tolist() == ["x", "y"], name


def test_excel_sheet_choice_and_unknown_sheet(tmp_path: Path) -> None:
    with pd.ExcelWriter(tmp_path / "two.xlsx") as writer:
        pd.DataFrame({"a": [1]}).to_excel(writer, sheet_name="first", index=False)
        pd.DataFrame({"q": [1, 2], "r": [3, 4]}).to_excel(writer, sheet_name="second", index=False)
    assert list(read_table(tmp_path / "two.xlsx", sheet="second").columns) == ["q", "r"]
    assert list(read_table(tmp_path / "two.xlsx", sheet=1).columns) == ["q", "r"]
    message = _error(tmp_path / "two.xlsx", sheet="nope")
    assert "sheet 'nope'" in message and "'second'" in message


def test_bytes_and_file_objects_use_the_name_for_the_format(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"a": [1, 2]}).to_parquet(buffer)
    assert read_table(buffer.getvalue(), name="up.parquet")["a"].tolist() == [1, 2]
    assert read_table(io.BytesIO(b"a;b\n1;2\n"), name="up.csv").shape == (1, 2)
    assert read_table(buffer.getvalue())["a"].tolist() == [1, 2]  # no name: recognised by content


def test_column_name_with_quote_and_newline_is_kept_and_messages_stay_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "q.csv", b'"we said ""hi""","multi\nline",plain\n1,2,3\n4,5,6\n')
    df = read_table(path)
    assert list(df.columns) == ['we said "hi"', "multi\nline", "plain"]
    with pytest.raises(AutoMLInputError) as info:
        validate_training_frame(df, "multi line")
    assert "\n" not in str(info.value) and "multi line" in str(info.value)


def test_control_characters_in_a_column_name_are_kept(tmp_path: Path) -> None:
    df = read_table(_write(tmp_path, "c.csv", b"a\x01b,c\n1,2\n"))
    assert list(df.columns) == ["a\x01b", "c"]


def test_question_mark_tokens_are_left_for_cleaning(tmp_path: Path) -> None:
    df = read_table(_write(tmp_path, "q.csv", b"a,b\n1, ?\n2,?\n3,x\n"))
    assert df["b"].tolist() == [" ?", "?", "x"]


def test_short_rows_are_padded_with_missing_values(tmp_path: Path) -> None:
    df = read_table(_write(tmp_path, "short.csv", b"a,b,c\n1,2\n4,5,6\n"))
    assert df["c"].isna().tolist() == [True, False]


# ------------------------------------------------------------------------------ bad files
def test_missing_file(tmp_path: Path) -> None:
    assert "file not found" in _error(tmp_path / "nope.csv")


@pytest.mark.parametrize("data", [b"", b"  \n\n"], ids=["zero-bytes", "whitespace"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    assert "is empty" in _error(_write(tmp_path, "e.csv", data))


def test_header_only(tmp_path: Path) -> None:
    assert "header row but no data rows" in _error(_write(tmp_path, "h.csv", b"a,b,c\n"))


def test_random_bytes(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert "does not look like a text table" in _error(_write(tmp_path, "r.csv", data))


def test_png_renamed_csv(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "img.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4))
    assert "PNG image" in message


def test_zip_renamed_csv(tmp_path: Path) -> None:
    assert "zip archive" in _error(_write(tmp_path, "z.csv", b"PK\x03\x04" + bytes(200)))


def test_unsupported_extension(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "notes.doc", b"hello"))
    assert "unsupported file type '.doc'" in message and ".csv" in message


def test_duplicate_column_names_are_named(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "d.csv", b"a,b,a,c,c\n1,2,3,4,5\n"))
    assert "duplicate column names" in message and "'a'" in message and "'c'" in message


def test_ragged_row_gives_the_line_number(tmp_path: Path) -> None:
    # The quoted newline makes the file line (5) differ from the record number (4).
    data = b'a,b,c\n"x\ny",2,3\n4,5,6\n7,8,9,10\n11,12,13\n'
    message = _error(_write(tmp_path, "rag.csv", data))
    assert "ragged rows" in message and "line 5" in message and "4 fields" in message


def test_ragged_when_every_row_has_an_extra_field(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "rag.csv", b"a,b\n1,2,3\n4,5,6\n"))
    assert "ragged rows" in message and "line 2" in message


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0junk", ".xls workbook"),
        ("fake.xlsx", b"not a workbook", "not a readable Excel workbook"),
        ("fake.parquet", b"not parquet", "not a readable Parquet file"),
        ("bad.jsonl", b'{"a": 1}\n{"a": 2\n', "line 2 is not valid JSON"),
        ("list.jsonl", b'{"a": 1}\n[1, 2]\n', "line 2 is not a JSON object"),
        ("bad.json", b'[{"a": 1},', "not valid JSON"),
        ("empty.json", b"[]", "no columns"),
    ],
)
def test_broken_binary_and_json_files(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    assert expected in _error(_write(tmp_path, name, data))


def test_unknown_encoding_given(tmp_path: Path) -> None:
    assert "unknown text encoding" in _error(_write(tmp_path, "a.csv", b"a,b\n1,2\n"), encoding="klingon")


# ------------------------------------------------------------------------------ training frame checks
def test_validate_training_frame_single_column() -> None:
    with pytest.raises(AutoMLInputError, match="only one column"):
        validate_training_frame(pd.DataFrame({"a;b": ["1;2"]}), "a;b")


def test_validate_training_frame_suggests_close_target_names() -> None:
    df = pd.DataFrame({"Survived": [0, 1], "Age": [1.0, 2.0]})
    with pytest.raises(AutoMLInputError) as info:
        validate_training_frame(df, "survived")
    assert "'survived' is not in the table" in str(info.value) and "'Survived'" in str(info.value)


def test_validate_training_frame_no_features_left() -> None:
    df = pd.DataFrame({"y": [0, 1], "empty": [np.nan, np.nan]})
    with pytest.raises(AutoMLInputError, match="no feature columns"):
        validate_training_frame(df, "y")


def test_validate_training_frame_counts_a_mostly_missing_feature_but_not_an_empty_one(shared) -> None:
    """The line the 'no feature columns' rule draws, on Titanic: Age with one value left is a feature
    (the run can learn from it), an all-missing column is not. Fails if the rule counted a column with
    any missing value as empty, or an empty one as usable."""
    df = pd.read_csv(shared / "titanic.csv", usecols=["Survived", "Age"]).assign(empty=np.nan)
    df.loc[1:, "Age"] = np.nan
    assert validate_training_frame(df, "Survived") is None  # accepted: Age keeps one value
    with pytest.raises(AutoMLInputError, match="no feature columns left besides the target 'Survived'"):
        validate_training_frame(df.drop(columns="Age"), "Survived")
    with pytest.raises(AutoMLInputError, match="no feature columns"):
        validate_training_frame(df.assign(Age=np.nan), "Survived")
