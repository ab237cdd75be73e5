"""Tests for the DuckDB experiment store (storage/). Every test uses its own tmp_path store."""
from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import storage
from automl_core.errors import AutoMLInputError
from automl_core.search.results import Event, TrialResult
from automl_core.prepare.schema import ColumnInfo, Role
from shared_data import DATASETS as DATA
from storage import Store, migrations
from storage._codec import dumps, to_jsonable

REPO = Path(__file__).resolve().parents[1]
WEIRD = ['a "quoted" col', "with space", "new\nline", "emoji 😀", 'x""y', "semi;colon --", "Ünïcødé"]


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "store.duckdb")
    yield s
    s.close()


def _trial(i: int, **kw) -> TrialResult:
    base = dict(trial_id=i, family="lightgbm", params={"n_estimators": 10 * i}, status="ok",
                score=0.5 + i / 100, metrics={"roc_auc": 0.5 + i / 100, "accuracy": 0.9},
                fit_seconds=1.5, predict_seconds=0.1, started_at=float(i), finished_at=i + 1.0)
    return TrialResult(**{**base, **kw})


def _run_python(code: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ opening, paths, migrations

def test_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOML_STORE", str(tmp_path / "runs"))
    s = Store()
    assert s.path == (tmp_path / "runs" / "store.duckdb").resolve() and s.root == s.path.parent
    s.close()
    monkeypatch.setenv("AUTOML_STORE", str(tmp_path / "mine.duckdb"))
    with Store() as s:
        assert s.path.name == "mine.duckdb" and s.path.is_file()
    monkeypatch.delenv("AUTOML_STORE")
    monkeypatch.chdir(tmp_path)
    with Store() as s:
        assert s.path == (tmp_path / ".automl" / "store.duckdb").resolve()
    with Store(tmp_path / "runs") as s:  # an existing folder
        assert s.path == (tmp_path / "runs" / "store.duckdb").resolve()


def test_same_process_shares_one_connection(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "s.duckdb"), Store(tmp_path / "s.duckdb")
    assert a._handle is b._handle
    eid = a.create_experiment("x", dataset_id=None, task="binary", metric="roc_auc", config={})
    assert b.get_experiment(eid)["name"] == "x"
    a.close()
    a.close()  # idempotent
    assert b.get_experiment(eid) is not None  # b still works
    with pytest.raises(RuntimeError, match="closed"):
        a.list_experiments()
    b.close()


def _versions(s: Store) -> list[int]:
    with s._read() as cur:
        return [r[0] for r in cur.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]


def test_migrations_from_empty_file_and_idempotent_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    duckdb.connect(str(path)).close()  # an existing, empty DuckDB file
    with Store(path) as s:
        assert _versions(s) == list(range(1, migrations.latest_version() + 1))
        eid = s.create_experiment("keep", dataset_id=None, task="regression", metric="rmse", config={"a": 1})
    for _ in range(2):
        with Store(path) as s:
            assert _versions(s) == list(range(1, migrations.latest_version() + 1))
            assert s.get_experiment(eid)["config"] == {"a": 1}


def test_older_file_gets_missing_steps_and_newer_file_is_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as s:  # written at the current version
        eid = s.create_experiment("old", dataset_id=None, task="binary", metric="roc_auc", config={})
    real = list(migrations.MIGRATIONS)
    step = migrations.Migration("add a tag", ("ALTER TABLE experiments ADD COLUMN tag VARCHAR DEFAULT 'x'",))
    monkeypatch.setattr(migrations, "MIGRATIONS", real + [step])
    with Store(path) as s:  # the file is now "older": the missing step is applied
        assert _versions(s)[-1] == len(real) + 1
        assert s.get_experiment(eid)["tag"] == "x"
    monkeypatch.setattr(migrations, "MIGRATIONS", real)
    with pytest.raises(AutoMLInputError, match="newer than this version") as err:
        Store(path)
    assert "\n" not in str(err.value) and "--store" in str(err.value)
    assert all(key[1] != str(path.resolve()) for key in storage._connection._REGISTRY)  # not left open


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    bad = migrations.Migration("broken", ("ALTER TABLE experiments ADD COLUMN good INTEGER",
                                          "THIS IS NOT SQL"))
    monkeypatch.setattr(migrations, "MIGRATIONS", list(migrations.MIGRATIONS) + [bad])
    with pytest.raises(duckdb.Error):
        Store(path)
    monkeypatch.undo()
    with Store(path) as s:
        assert _versions(s)[-1] == migrations.latest_version()
        with s._read() as cur:
            cols = [r[0] for r in cur.execute("DESCRIBE experiments").fetchall()]
        assert "good" not in cols


# ------------------------------------------------------------------ datasets

def _weird_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        WEIRD[0]: ["a", None, "c", "a"] * 5,
        WEIRD[1]: rng.normal(size=20),
        WEIRD[2]: list(range(20)),
        WEIRD[3]: ["😀", "ü", 'q"uote', "x\ny"] * 5,
        WEIRD[4]: [1.5, np.nan, 2.5, 3.5] * 5,
        WEIRD[5]: pd.date_range("2024-01-01", periods=20, freq="D"),
        WEIRD[6]: [True, False] * 10,
    })
    assert str(df[WEIRD[0]].dtype) == "str"  # pandas 3 default string dtype
    return df


def test_weird_column_names_survive(store: Store) -> None:
    df = _weird_frame()
    ds = store.add_dataset("weird", df, source="upload.csv")
    back = store.load_dataset(ds)
    pd.testing.assert_frame_equal(back, df)
    profile = store.profile_dataset(ds)
    assert [p["name"] for p in profile] == WEIRD
    by = {p["name"]: p for p in profile}
    assert by[WEIRD[0]]["n_missing"] == 5 and by[WEIRD[0]]["missing_pct"] == pytest.approx(25.0)
    assert by[WEIRD[0]]["n_distinct"] == 2 and by[WEIRD[0]]["top_values"][0] == ("a", 10)
    assert by[WEIRD[3]]["n_distinct"] == 4 and ("x\ny", 5) in by[WEIRD[3]]["top_values"]
    assert by[WEIRD[4]]["n_missing"] == 5 and by[WEIRD[4]]["n_distinct"] == 3
    assert by[WEIRD[2]]["min"] == 0 and by[WEIRD[2]]["max"] == 19 and by[WEIRD[2]]["mean"] == pytest.approx(9.5)
    assert sum(c for _, _, c in by[WEIRD[1]]["histogram"]) == 20
    assert by[WEIRD[5]]["min"].startswith("2024-01-01") and by[WEIRD[5]]["histogram"] == []
    meta = store.get_dataset(ds)
    assert [c["name"] for c in meta["schema"]] == WEIRD and meta["n_rows"] == 20 and meta["n_cols"] == 7
    assert meta["profile"] == profile and meta["source"] == "upload.csv"


def test_add_dataset_dedup_and_listing(store: Store) -> None:
    df = _weird_frame()
    a = store.add_dataset("t", df)
    assert store.add_dataset("t", df.copy()) == a  # same content, same name
    b = store.add_dataset("other name", df)
    changed = df.copy()
    changed.loc[3, WEIRD[1]] = 99.0
    c = store.add_dataset("t", changed)
    assert len({a, b, c}) == 3
    listing = store.list_datasets()
    assert list(listing["dataset_id"]) == [c, b, a]  # newest first
    assert listing.set_index("dataset_id").loc[a, "fingerprint"] == listing.set_index("dataset_id").loc[b, "fingerprint"]
    assert listing.set_index("dataset_id").loc[c, "fingerprint"] != listing.set_index("dataset_id").loc[a, "fingerprint"]
    assert str(listing["created_at"].dt.tz) == "UTC"
    assert sorted(p.name for p in (store.root / "datasets").iterdir()) == sorted(f"{i}.parquet" for i in (a, b, c))
    with pytest.raises(AutoMLInputError, match="duplicate column"):
        store.add_dataset("dupes", pd.DataFrame([[1, 2]], columns=["x", "x"]))
    with pytest.raises(KeyError):
        store.load_dataset("ds-missing")
    assert store.get_dataset("ds-missing") is None


def test_fingerprint_is_stable_across_processes(store: Store, tmp_path: Path) -> None:
    df = _weird_frame()
    df.to_parquet(tmp_path / "f.parquet")
    ours = storage._datasets.fingerprint(df)
    out = _run_python("""
        import sys, pandas as pd
        from storage._datasets import fingerprint
        print(fingerprint(pd.read_parquet(sys.argv[1])))
    """, str(tmp_path / "f.parquet"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ours


def test_set_dataset_columns(store: Store) -> None:
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "a"]})
    cols = [ColumnInfo("x", Role.NUMERIC, "int64", 0, 3), ColumnInfo("y", Role.CATEGORICAL, "str", 0, 2)]
    ds = store.add_dataset("t", df, columns=cols[:1])
    assert [ColumnInfo.from_dict(c) for c in store.get_dataset(ds)["columns"]] == cols[:1]
    store.set_dataset_columns(ds, cols)
    assert [ColumnInfo.from_dict(c) for c in store.get_dataset(ds)["columns"]] == cols
    with pytest.raises(KeyError):
        store.set_dataset_columns("ds-nope", cols)


def test_profile_reads_disguised_missing_values_as_the_engine_does(store: Store) -> None:
    """Profile, roles and guardrails give one reading: penguins' "NA" cells are missing everywhere."""
    from automl_core.io.reader import read_table
    from automl_core.prepare.roles import clean_frame, infer_roles

    raw = read_table(DATA / "penguins.csv")
    cleaned, report = clean_frame(raw)
    roles = {c.name: c for c in infer_roles(cleaned, report=report)}
    profile = {p["name"]: p for p in store.profile_dataset(store.add_dataset("penguins", raw))}
    for name, info in roles.items():
        p = profile[name]
        assert p["n_missing"] == info.n_missing, name
        assert p["n_distinct"] == info.n_unique, name
        assert p["n_disguised"] == sum(info.missing_tokens.values()), name
        assert all(str(v).strip().lower() != "na" for v, _ in p["top_values"]), name
    assert profile["sex"]["n_missing"] == 11 and profile["sex"]["missing_pct"] == pytest.approx(100 * 11 / len(raw))
    # numbers written as text among "NA" are profiled as numbers, as the cleaning reads them
    assert profile["bill_length_mm"]["mean"] == pytest.approx(cleaned["bill_length_mm"].mean())
    assert profile["bill_length_mm"]["histogram"]


def test_profile_bank_marketing_matches_pandas(store: Store) -> None:
    df = pd.read_csv(DATA / "bank_marketing_train.csv")
    rng = np.random.default_rng(1)
    for col, frac in [("age", 0.1), ("job", 0.05), ("euribor3m", 0.2)]:  # the file has no gaps: add some
        df.loc[rng.random(len(df)) < frac, col] = np.nan
    ds = store.add_dataset("bank", df)
    profile = store.profile_dataset(ds)
    assert [p["name"] for p in profile] == list(df.columns)
    for p in profile:
        s = df[p["name"]]
        assert p["missing_pct"] == pytest.approx(100 * s.isna().mean()), p["name"]
        assert p["n_distinct"] == s.nunique(), p["name"]
        counts = s.value_counts()
        assert p["top_values"][0][1] == counts.iloc[0], p["name"]
        assert len(p["top_values"]) == min(5, s.nunique())
        if pd.api.types.is_numeric_dtype(s):
            assert p["min"] == pytest.approx(s.min()) and p["max"] == pytest.approx(s.max())
            assert p["mean"] == pytest.approx(s.mean())
            assert sum(c for _, _, c in p["histogram"]) == s.notna().sum()
            assert len(p["histogram"]) <= 20
        else:
            assert p["mean"] is None and p["histogram"] == []
    assert store.profile_dataset(ds) == profile  # cached: same answer
    assert store.get_dataset(ds)["profile"] == profile


def test_profile_float_nan_inf_and_empty(store: Store) -> None:
    df = pd.DataFrame({"f": [1.0, np.nan, np.inf, 3.0, 3.0], "empty": [np.nan] * 5,
                       "const": [7, 7, 7, 7, 7], "s": pd.Series([None] * 5, dtype="str")})
    by = {p["name"]: p for p in store.profile_dataset(store.add_dataset("t", df))}
    assert by["f"]["n_missing"] == 1 and by["f"]["n_distinct"] == 3 == df["f"].nunique()
    assert by["f"]["max"] == 3.0  # inf kept out of min/max/mean/histogram
    assert by["empty"]["missing_pct"] == 100.0 and by["empty"]["histogram"] == [] and by["empty"]["min"] is None
    assert by["const"]["histogram"] == [(6.5, 7.5, 5)]
    assert by["s"]["n_missing"] == 5 and by["s"]["top_values"] == []


# ------------------------------------------------------------------ experiments, trials, events

def test_experiment_lifecycle(store: Store) -> None:
    ds = store.add_dataset("d", pd.DataFrame({"x": [1, 2], "y": [0, 1]}))
    eid = store.create_experiment("first", dataset_id=ds, task="binary", metric="roc_auc",
                                  config={"time_budget": 60, "seed": np.int64(0)})
    assert re.fullmatch(r"exp-\d{8}-\d{6}-[0-9a-f]{4}", eid)
    exp = store.get_experiment(eid)
    assert exp["status"] == "queued" and exp["config"] == {"time_budget": 60, "seed": 0}
    assert exp["created_at"].tzinfo is not None and exp["started_at"] is None
    store.set_status(eid, "running")
    assert store.get_experiment(eid)["started_at"] is not None
    cb = store.callback(eid)
    cb(Event("experiment_started", 0.0, {"n_rows": 2}))
    for i in range(3):
        cb(Event("trial_started", i, {"trial_id": i}))
        cb(Event("trial_finished", i + 0.5, {"trial_id": i}, trial=_trial(i)))
    cb(Event("new_best", 3.0, {"score": np.float32(0.52), "nan": float("nan")}))
    store.finish_experiment(eid, status="completed", best_trial_id=2, best_model="lightgbm",
                            best_score=0.52, test_score=float("nan"), model_path="m/model.joblib",
                            summary={"n_trials": 3})
    exp = store.get_experiment(eid)
    assert exp["status"] == "completed" and exp["finished_at"] >= exp["started_at"]
    assert exp["best_score"] == 0.52 and exp["test_score"] is None and exp["summary"] == {"n_trials": 3}
    assert exp["dataset_name"] == "d" and exp["n_trials"] == 3
    store.update_experiment(eid, name="renamed", summary={"note": "hi"}, config={"seed": 1})
    exp = store.get_experiment(eid)
    assert exp["name"] == "renamed" and exp["summary"] == {"n_trials": 3, "note": "hi"}
    assert exp["config"] == {"time_budget": 60, "seed": 1}
    other = store.create_experiment("second", dataset_id=None, task="regression", metric="rmse", config={})
    listing = store.list_experiments()
    assert list(listing["experiment_id"]) == [other, eid]
    row = listing.set_index("experiment_id").loc[eid]
    assert row["dataset_name"] == "d" and row["n_trials"] == 3 and row["status"] == "completed"
    assert list(store.list_experiments(dataset_id=ds)["experiment_id"]) == [eid]
    events = store.events(eid)
    assert list(events["kind"])[:2] == ["new_best", "trial_finished"] and len(events) == 8
    assert events.iloc[0]["payload"] == {"score": pytest.approx(0.52), "nan": None}
    assert events.iloc[1]["trial_id"] == 2 and "params" not in events.iloc[1]["payload"]
    assert len(store.events(eid, limit=2)) == 2


def test_experiment_validation(store: Store) -> None:
    eid = store.create_experiment("x", dataset_id=None, task="binary", metric="roc_auc", config={})
    with pytest.raises(ValueError, match="status"):
        store.set_status(eid, "done")
    with pytest.raises(ValueError, match="status"):
        store.finish_experiment(eid, status="running", best_trial_id=None, best_model=None,
                                best_score=None, test_score=None, model_path=None, summary={})
    with pytest.raises(ValueError, match="status; allowed"):
        store.update_experiment(eid, status="completed")
    with pytest.raises(ValueError, match="owner"):
        store.update_experiment(eid, owner="me", name="y")
    assert store.get_experiment(eid)["name"] == "x"  # nothing half-applied
    with pytest.raises(ValueError, match="must be a dict"):
        store.update_experiment(eid, summary=[1])
    with pytest.raises(KeyError):
        store.set_status("exp-nope", "running")
    with pytest.raises(KeyError):
        store.update_experiment("exp-nope", name="z")
    assert store.get_experiment("exp-nope") is None
    store.set_status(eid, "failed", error="boom")
    exp = store.get_experiment(eid)
    assert exp["status"] == "failed" and exp["error"] == "boom" and exp["finished_at"] is not None


def test_trials_upsert_params_and_metric_columns(store: Store) -> None:
    eid = store.create_experiment("x", dataset_id=None, task="binary", metric="roc_auc", config={})
    store.add_trial(eid, _trial(0, params={"lr": np.float64(0.1), "depth": np.int32(3), "arr": np.arange(2)}))
    store.add_trial(eid, _trial(1, status="failed", score=float("nan"), metrics={}, error="oops"))
    store.add_trial(eid, _trial(0, params={"lr": 0.2}, metrics={"roc_auc": 0.7, "score": 1.0}))  # upsert
    t = store.trials(eid)
    assert list(t["trial_id"]) == [0, 1]
    assert t.loc[0, "params"] == {"lr": 0.2} and t.loc[0, "roc_auc"] == 0.7 and t.loc[0, "metric_score"] == 1.0
    assert t.loc[1, "status"] == "failed" and t.loc[1, "error"] == "oops"
    assert math.isnan(t.loc[1, "score"]) and math.isnan(t.loc[1, "roc_auc"])
    expected = ["trial_id", "family", "params", "status", "score", "fit_seconds", "predict_seconds",
                "started_at", "finished_at", "error", "note"]
    assert list(t.columns[:len(expected)]) == expected
    empty = store.trials("exp-none")
    assert empty.empty and list(empty.columns) == expected


def test_json_handles_numpy_nan_and_odd_values() -> None:
    value = {"a": np.float32(1.5), "b": np.nan, "c": [np.int64(2), float("inf")], "d": np.array([1, 2]),
             "e": pd.Timestamp("2024-01-01", tz="UTC"), "f": pd.NaT, "g": Role.NUMERIC, 3: object}
    assert to_jsonable(value) == {"a": 1.5, "b": None, "c": [2, None], "d": [1, 2],
                                  "e": "2024-01-01T00:00:00+00:00", "f": None, "g": "numeric",
                                  "3": str(object)}
    assert "NaN" not in dumps(value)


def test_background_writer_with_concurrent_readers(store: Store) -> None:
    eid = store.create_experiment("x", dataset_id=None, task="binary", metric="roc_auc", config={})
    cb = store.callback(eid)
    errors: list[BaseException] = []

    def train() -> None:
        try:
            for i in range(150):
                cb(Event("trial_finished", float(i), {"trial_id": i}, trial=_trial(i)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = threading.Thread(target=train)
    worker.start()
    seen = 0
    while worker.is_alive():
        n = len(store.trials(eid))
        assert n >= seen  # readers see a growing, consistent table
        seen = n
        store.events(eid, limit=5)
        store.list_experiments()
    worker.join()
    assert not errors
    assert len(store.trials(eid)) == 150 and len(store.events(eid, limit=1000)) == 150


def test_mark_interrupted_after_a_dead_process(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    out = _run_python("""
        import sys
        from storage import Store
        from automl_core.search.results import TrialResult
        s = Store(sys.argv[1])
        a = s.create_experiment("a", dataset_id=None, task="binary", metric="roc_auc", config={})
        b = s.create_experiment("b", dataset_id=None, task="binary", metric="roc_auc", config={})
        c = s.create_experiment("c", dataset_id=None, task="binary", metric="roc_auc", config={})
        s.set_status(a, "running")
        s.add_trial(a, TrialResult(trial_id=0, family="lr", params={}, status="ok", score=0.7))
        s.set_status(c, "completed")
        print(a, b, c)
        s.close()
    """, str(path))
    assert out.returncode == 0, out.stderr
    a, b, c = out.stdout.split()
    with Store(path) as s:
        mine = s.create_experiment("mine", dataset_id=None, task="binary", metric="roc_auc", config={})
        s.set_status(mine, "running")
        assert s.mark_interrupted() == sorted([a, b])
        assert s.mark_interrupted() == []
        status = s.list_experiments().set_index("experiment_id")["status"].to_dict()
        assert status == {a: "interrupted", b: "interrupted", c: "completed", mine: "running"}
        assert len(s.trials(a)) == 1 and s.get_experiment(a)["finished_at"] is not None


# ------------------------------------------------------------------ artifacts and delete

def test_artifacts_and_verification(store: Store, tmp_path_factory: pytest.TempPathFactory) -> None:
    eid = store.create_experiment("x", dataset_id=None, task="binary", metric="roc_auc", config={})
    folder = store.artifact_dir(eid)
    assert folder == store.root / "artifacts" / eid and folder.is_dir()
    model = folder / "model.joblib"
    model.write_bytes(b"model bytes")
    digest = store.register_artifact(eid, model, "model")
    assert len(digest) == 64
    store.register_artifact(eid, f"artifacts/{eid}/model.joblib", "model")  # relative to root: same row
    outside = tmp_path_factory.mktemp("elsewhere") / "model.json"  # e.g. the CLI's --out folder
    outside.write_text("{}")
    store.register_artifact(eid, outside, "metadata")
    arts = store.artifacts(eid)
    assert sorted(arts["path"]) == sorted([f"artifacts/{eid}/model.joblib", str(outside.resolve())])
    assert arts.set_index("kind").loc["model", "size_bytes"] == len(b"model bytes")
    assert store.verify_artifact(eid, model) and store.verify_artifact(eid, outside)
    model.write_bytes(b"tampered")
    assert not store.verify_artifact(eid, model)
    assert not store.verify_artifact(eid, folder / "never-registered.bin")
    model.unlink()
    assert not store.verify_artifact(eid, model)


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "x\\y", "", "exp.1", "/abs"])
def test_artifact_path_traversal_is_refused(store: Store, bad: str) -> None:
    with pytest.raises(ValueError, match="Invalid experiment id"):
        store.artifact_dir(bad)
    with pytest.raises(ValueError, match="Invalid experiment id"):
        store.delete_experiment(bad)
    assert not (store.root.parent / "x").exists()


def test_delete_experiment_removes_rows_and_files(store: Store) -> None:
    keep = store.create_experiment("keep", dataset_id=None, task="binary", metric="roc_auc", config={})
    eid = store.create_experiment("gone", dataset_id=None, task="binary", metric="roc_auc", config={})
    for e in (keep, eid):
        store.callback(e)(Event("trial_finished", 1.0, {}, trial=_trial(0)))
        f = store.artifact_dir(e) / "model.joblib"
        f.write_bytes(b"m")
        store.register_artifact(e, f, "model")
    store.delete_experiment(eid)
    assert store.get_experiment(eid) is None and store.trials(eid).empty
    assert store.events(eid).empty and store.artifacts(eid).empty
    assert not (store.root / "artifacts" / eid).exists()
    assert len(store.trials(keep)) == 1 and (store.root / "artifacts" / keep / "model.joblib").exists()


# ------------------------------------------------------------------ processes: lock and crash

def test_second_process_gets_store_locked_error(store: Store) -> None:
    code = """
        import sys
        from storage import Store
        from automl_core.errors import StoreLockedError
        try:
            Store(sys.argv[1])
        except StoreLockedError as exc:
            print("LOCKED", exc)
            sys.exit(0)
        print("OPENED")
        sys.exit(1)
    """
    out = _run_python(code, str(store.path))
    assert out.returncode == 0, out.stdout + out.stderr
    line = out.stdout.strip()
    assert line.startswith("LOCKED The store ") and str(store.path) in line
    assert "in use by another process (probably a running studio)" in line
    assert "Fix: pass --store with another path, or stop the studio." in line
    assert "Traceback" not in out.stderr
    store.close()  # closing releases the file for other processes
    out = _run_python(code, str(store.path))
    assert out.returncode == 1 and out.stdout.strip() == "OPENED"


def test_sigkill_while_writing_keeps_the_file_and_committed_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    code = """
        import sys
        from storage import Store
        from automl_core.search.results import Event, TrialResult
        s = Store(sys.argv[1])
        eid = s.create_experiment("crash", dataset_id=None, task="binary", metric="roc_auc", config={})
        s.set_status(eid, "running")
        print(eid, flush=True)
        cb = s.callback(eid)
        i = 0
        while True:
            t = TrialResult(trial_id=i, family="lgbm", params={"i": i, "pad": "x" * 5000},
                            status="ok", score=i / 1000, metrics={"auc": i / 1000})
            cb(Event("trial_finished", float(i), {"i": i}, trial=t))
            print(i, flush=True)   # printed only after both writes committed
            i += 1
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        eid = proc.stdout.readline().strip()
        assert eid.startswith("exp-"), proc.stderr.read() if proc.poll() is not None else eid
        last = -1
        while last < 300:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            last = int(line)
        os.kill(proc.pid, signal.SIGKILL)  # mid-loop: very likely inside a write
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Store(path) as s:
        t = s.trials(eid)
        n = len(t)
        assert n >= last + 1  # everything reported as committed is there
        assert list(t["trial_id"]) == list(range(n))  # no gaps, no torn rows
        assert all(p["i"] == i and len(p["pad"]) == 5000 for i, p in zip(t["trial_id"], t["params"]))
        assert list(t["auc"]) == pytest.approx([i / 1000 for i in range(n)])
        assert len(s.events(eid, limit=10_000)) in (n, n - 1)  # the trial is written before its event
        assert s.mark_interrupted() == [eid]
        s.add_trial(eid, TrialResult(trial_id=n, family="lgbm", params={}, status="ok", score=1.0))
    with Store(path) as s:  # and the reopened file takes new writes that survive a clean close
        assert len(s.trials(eid)) == n + 1


_WRITER = """
    import sys
    from storage import Store
    from automl_core.search.results import Event, TrialResult
    s = Store(sys.argv[1])
    # A small checkpoint threshold: kills also land while the WAL is folded into the file.
    s._live().conn.execute("SET checkpoint_threshold = '256KB'")
    eid = sys.argv[2]
    if s.get_experiment(eid) is None:
        eid = s.create_experiment("crash", dataset_id=None, task="binary", metric="roc_auc", config={"round": 0})
    print(eid, flush=True)
    cb = s.callback(eid)
    i = int(s.trials(eid)["trial_id"].max() + 1) if len(s.trials(eid)) else 0
    while True:
        t = TrialResult(trial_id=i, family="lgbm", params={"i": i, "pad": "x" * 20000},
                        status="ok", score=i / 1000, metrics={"auc": i / 1000})
        cb(Event("trial_finished", float(i), {"i": i}, trial=t))
        s.update_experiment(eid, summary={f"k{i % 50}": i})
        print(i, flush=True)   # printed only after the writes committed
        i += 1
"""


@pytest.mark.slow
def test_repeated_sigkill_mid_write_never_corrupts_the_file(tmp_path: Path) -> None:
    """Kill a writer again and again at varying points (inside inserts, updates and checkpoints);
    each time the file reopens, every table reads, and every row reported committed is intact."""
    import random

    path = tmp_path / "s.duckdb"
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    eid, committed, reported = "none", -1, set()
    for round_ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WRITER), str(path), eid], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            eid = proc.stdout.readline().strip()
            assert eid.startswith("exp-"), proc.stderr.read() if proc.poll() is not None else eid
            target = committed + rng.randint(5, 60)
            while committed < target:
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                committed = int(line)
                reported.add(committed)
            time.sleep(rng.random() * 0.05)  # somewhere inside the next writes
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
        with Store(path) as s:
            with s._read() as cur:
                for table in ("experiments", "trials", "events", "datasets", "artifacts"):
                    cur.execute(f"SELECT count(*) FROM {table}").fetchone()
            t = s.trials(eid)
            assert len(t) >= committed + 1, f"round {round_}: lost committed trials"
            assert list(t["trial_id"]) == list(range(len(t)))
            assert all(p["i"] == i and len(p["pad"]) == 20000 for i, p in zip(t["trial_id"], t["params"]))
            summary = s.get_experiment(eid)["summary"]
            # every update reported committed is there (a trial whose summary update the kill cut off was
            # never reported, and the next writer goes on after that trial)
            assert all(summary[f"k{i % 50}"] >= i for i in reported if i > committed - 50)
            s._live().conn.execute("CHECKPOINT")  # the reopened file folds its WAL cleanly
