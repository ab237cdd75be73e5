"""Dataset helpers for the Data page: samples shipped with scikit-learn, parsing uploads, profiles.

No streamlit here: these are plain functions the page calls (and tests can call directly).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from automl_core.errors import AutoMLInputError
from automl_core.io.reader import read_table, sniff_csv
from automl_core.prepare.roles import clean_frame, infer_roles
from automl_core.prepare.schema import ColumnInfo, Role


@dataclass(frozen=True)
class Sample:
    loader: str   # function name in sklearn.datasets
    label: str
    target: str
    about: str


#: Sample datasets that ship inside scikit-learn (no download needed).
SAMPLES: dict[str, Sample] = {s.label: s for s in (
    Sample("load_breast_cancer", "Breast cancer (binary classification)", "target",
           "569 tumours, 30 measurements; predict malignant (0) or benign (1)."),
    Sample("load_iris", "Iris flowers (multiclass classification)", "target",
           "150 flowers, 4 measurements; predict the species (0, 1, 2)."),
    Sample("load_wine", "Wine cultivars (multiclass classification)", "target",
           "178 wines, 13 chemical measurements; predict the cultivar (0, 1, 2)."),
    Sample("load_diabetes", "Diabetes progression (regression)", "target",
           "442 patients, 10 baseline variables; predict disease progression after one year."),
)}

TEXT_FORMATS = (".csv", ".tsv", ".txt")
UPLOAD_TYPES = ["csv", "tsv", "txt", "parquet", "xlsx", "xls", "jsonl", "ndjson", "json"]
DELIMITER_LABELS = {",": "Comma ( , )", ";": "Semicolon ( ; )", "\t": "Tab", "|": "Pipe ( | )"}
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16")


def load_sample(label: str) -> pd.DataFrame:
    """A bundled scikit-learn dataset as one frame, the target in a column named ``target``."""
    from sklearn import datasets

    sample = SAMPLES[label]
    bunch = getattr(datasets, sample.loader)(as_frame=True)
    return bunch.frame


def is_text(name: str) -> bool:
    return name.lower().endswith(TEXT_FORMATS)


def sniff(data: bytes, name: str) -> dict[str, Any]:
    """Detected parse settings of a text upload: delimiter, encoding, header (and how encoding was found).

    Raises:
        AutoMLInputError: empty or binary file.
    """
    s = sniff_csv(data, name=name)
    return {"delimiter": s.delimiter, "encoding": s.encoding, "header": s.header,
            "encoding_note": s.encoding_note}


def parse(data: bytes, name: str, settings: dict[str, Any]) -> pd.DataFrame:
    """Read an upload with the user's parse settings and check it can be used for training.

    Raises:
        AutoMLInputError: unreadable file, or a table with a single column (nothing to learn from;
            usually a wrong delimiter).
    """
    kwargs: dict[str, Any] = {}
    if is_text(name):
        kwargs = dict(delimiter=settings.get("delimiter"), encoding=settings.get("encoding"),
                      header=bool(settings.get("header", True)), skip_rows=int(settings.get("skip_rows") or 0))
    elif name.lower().endswith((".xlsx", ".xls", ".xlsm")):
        kwargs = dict(header=bool(settings.get("header", True)), skip_rows=int(settings.get("skip_rows") or 0))
    df = read_table(data, name=name, **kwargs)
    if df.shape[1] < 2:
        hint = ("the file may use another delimiter: pick it under Parse settings"
                if is_text(name) else "upload a table with the target column and at least one feature column")
        raise AutoMLInputError(f"'{name}' has only one column ({str(df.columns[0])[:60]!r}), so there is "
                               "nothing to predict it from", hint)
    return df


def columns_for(df: pd.DataFrame) -> list[ColumnInfo]:
    """Inferred roles of every column (target not yet known), for the schema editor."""
    cleaned, report = clean_frame(df)
    return infer_roles(cleaned, report=report)


def schema_frame(columns: list[dict[str, Any]], roles: dict[str, str], excluded: list[str]) -> pd.DataFrame:
    """The schema editor's table: include, column, role (user override or inferred), why."""
    rows = [{"include": c["name"] not in excluded, "column": c["name"],
             "role": roles.get(c["name"], c["role"]), "inferred": c["role"], "why": c.get("reason", "")}
            for c in columns]
    return pd.DataFrame(rows, columns=["include", "column", "role", "inferred", "why"])


ROLE_OPTIONS = [r.value for r in Role]


def profile_frame(profile: list[dict[str, Any]], roles: dict[str, str]) -> pd.DataFrame:
    """The DuckDB profile as a display table (histogram counts as a list for a bar-chart column)."""
    rows = []
    for p in profile:
        top = ", ".join(f"{_short(v)} ({n:,})" for v, n in p.get("top_values", [])[:3])
        rows.append({
            "column": p["name"], "role": roles.get(p["name"], ""), "type": p.get("dtype") or p.get("sql_type"),
            "missing %": round(float(p.get("missing_pct") or 0.0), 2), "distinct": p.get("n_distinct"),
            "min": _short(p.get("min")), "max": _short(p.get("max")),
            "mean": _short(p.get("mean")),
            "top values": top,
            "histogram": [int(c) for *_, c in p.get("histogram", [])] or [int(n) for _, n in p.get("top_values", [])],
        })
    return pd.DataFrame(rows)


def disguised_note(profile: list[dict[str, Any]]) -> str:
    """A sentence naming the columns whose missing count includes texts like 'NA' or '?' ('' if none)."""
    found = [f"{p['name']} {p['n_disguised']:,}" for p in profile if p.get("n_disguised")]
    if not found:
        return ""
    more = f" and {len(found) - 8} more" if len(found) > 8 else ""
    return ("Missing % counts texts such as 'NA', '?' or 'null' as missing, as training does: "
            + ", ".join(found[:8]) + more + ".")


def _short(value: Any, width: int = 24) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
