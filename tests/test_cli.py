"""The command line as a person uses it: real files in, exit codes and one-line messages out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, store: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOML_STORE": str(store)}
    return subprocess.run([sys.executable, "-m", "automl_core", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def store_experiments(store: Path) -> int:
    if not store.exists():
        return 0
    from storage import Store
    s = Store(store)
    try:
        return len(s.list_experiments())
    finally:
        s.close()


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


BAD_INPUTS = {
    "empty file": ("empty.csv", "", "empty"),
    "header only": ("header.csv", "a,b,y\n", "no data rows"),
    "single column": ("one.csv", "y\n1\n2\n3\n4\n", "column"),
    "target absent": ("absent.csv", "a,b,c\n1,2,3\n4,5,6\n", "'y'"),
    "target all missing": ("allmissing.csv", "a,y\n" + "".join(f"{i},\n" for i in range(30)), "missing"),
    "target constant": ("constant.csv", "a,y\n" + "".join(f"{i},1\n" for i in range(30)), "one"),
    "class with a single row": ("single.csv", "a,y\n" + "".join(f"{i},{'b' if i == 0 else 'a' if i % 2 else 'c'}\n" for i in range(30)), "'b'"),
    "binary garbage": ("garbage.csv", bytes(range(256)) * 20, "binary"),
    "duplicate column names": ("dups.csv", "a,a,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(30)), "duplicate"),
    "all features constant": ("allconst.csv", "a,b,y\n" + "".join(f"1,x,{i % 2}\n" for i in range(30)), "constant"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path):
    name, content, words = BAD_INPUTS[case]
    path = write(tmp_path, name, content)
    store = tmp_path / "store.duckdb"
    result = cli("train", str(path), "--target", "y", "--time-budget", "5", store=store)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert words.lower() in lines[0].lower()
    assert "fix" in lines[0].lower()
    assert store_experiments(store) == 0


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_non_utf8_file_trains(tmp_path, shared):
    df = pd.read_csv(shared / "german_credit.csv").head(300)
    df.iloc[:, 0] = df.iloc[:, 0].astype(str) + "é"
    path = tmp_path / "latin1.csv"
    df.to_csv(path, index=False, encoding="latin-1")
    result = cli("train", str(path), "--target", "class", "--max-trials", "2", "--json", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["task"] == "binary"


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_quoted_and_newline_column_names_train_and_predict(tmp_path, shared):
    df = pd.read_csv(shared / "iris.csv")
    df.columns = ['sepal "length"', "sepal\nwidth", "pétale 🌸", "petal width", "target"]
    path = tmp_path / "odd.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "model"
    result = cli("train", str(path), "--target", "target", "--max-trials", "2", "--out", str(out), "--json",
                 store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    preds = tmp_path / "preds.csv"
    result = cli("predict", "--model", str(out / "model.joblib"), str(path), "--out", str(preds), store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(preds)
    assert {"prediction", "proba_0", "proba_1", "proba_2"} <= set(got.columns)
    assert (got["prediction"] == df["target"]).mean() > 0.9


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_train_json_contract_list_show_and_predict_checks(tmp_path, shared):
    store = tmp_path / "s.duckdb"
    out = tmp_path / "model"
    result = cli("train", str(shared / "mpg.csv"), "--target", "mpg", "--time-budget", "15", "--test-size", "0.2",
                 "--out", str(out), "--json", store=store)
    assert result.returncode == 0, result.stderr
    assert "trial" in result.stdout  # progress lines while training
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("experiment_id", "task", "metric", "best_model", "validation_score", "test_score", "n_trials",
                "wall_seconds", "model_path"):
        assert key in summary
    assert summary["task"] == "regression" and summary["test_score"] < 5
    # the budget covers search, ensembles and the refit; the +10 % goal is measured in bench/bench_engine.py
    # (a timed test on 2 shared cores only catches gross overruns)
    assert summary["fit_seconds"] <= 15 * 1.5
    assert summary["fit_seconds"] <= summary["wall_seconds"]  # the whole command, data checks and explanations too
    listed = cli("list", store=store)
    assert summary["experiment_id"] in listed.stdout
    shown = cli("show", summary["experiment_id"], "--json", store=store)
    assert json.loads(shown.stdout)["status"] == "completed"
    assert cli("show", "exp-nope", store=store).returncode == 2
    # predict: a missing column is exit 2 naming it; extra columns and order don't matter
    df = pd.read_csv(shared / "mpg.csv")
    missing = write(tmp_path, "missing.csv", df.drop(columns=["weight"]).to_csv(index=False))
    result = cli("predict", "--model", str(out / "model.joblib"), str(missing), "--out", str(tmp_path / "p.csv"), store=store)
    assert result.returncode == 2 and "weight" in result.stderr
    shuffled = write(tmp_path, "shuffled.csv", df[list(reversed(df.columns))].assign(extra=1).to_csv(index=False))
    result = cli("predict", "--model", str(out / "model.joblib"), str(shuffled), "--out", str(tmp_path / "p.csv"), store=store)
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(df)
    # a tampered model file is refused before unpickling
    (out / "model.joblib").write_bytes((out / "model.joblib").read_bytes() + b"x")
    result = cli("predict", "--model", str(out / "model.joblib"), str(shuffled), "--out", str(tmp_path / "p.csv"), store=store)
    assert result.returncode == 2 and "fingerprint" in result.stderr
