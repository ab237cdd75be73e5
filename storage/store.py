"""The experiment store: datasets, experiments, trials, events and artifacts in one DuckDB file.

Who writes: only the process holding the file (the studio server, or a CLI run); inside it any
thread, each write serialized and in its own transaction (see ``_connection``). What is immutable:
dataset files and their fingerprints. Trials are upserted, so a re-sent trial replaces its row.
"""
from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from . import _connection
from ._artifacts import ArtifactsMixin, check_id
from ._codec import as_utc, dumps, frame_as_utc, loads, utcnow
from ._datasets import DatasetsMixin

if TYPE_CHECKING:
    from automl_core.search.results import Event, TrialResult

STATUSES = ("queued", "running", "completed", "stopped", "failed", "interrupted", "cancelled")
TERMINAL = ("completed", "stopped", "failed", "interrupted", "cancelled")  # cancelled: before it started
_TIMESTAMPS = ["created_at", "started_at", "finished_at"]
# update_experiment: JSON fields are merged key by key, the others replaced.
_JSON_FIELDS = {"config", "summary"}
_PLAIN_FIELDS = {"name", "dataset_id", "task", "metric", "error", "best_trial_id", "best_model",
                 "best_score", "test_score", "model_path"}
_TRIAL_COLUMNS = ["trial_id", "family", "params", "status", "score", "fit_seconds",
                  "predict_seconds", "started_at", "finished_at", "error", "note"]


def resolve_store_path(path: str | Path | None = None) -> Path:
    """The DuckDB file for ``path``: default ``$AUTOML_STORE``, else ``./.automl/store.duckdb``.

    A directory, or a name without the ``.duckdb`` suffix, is taken as the store folder and the
    file is ``<folder>/store.duckdb`` (so ``--store runs/`` works).
    """
    if path is None:
        path = os.environ.get("AUTOML_STORE") or Path(".automl") / "store.duckdb"
    p = Path(path).expanduser()
    if p.is_dir() or p.suffix != ".duckdb":
        p = p / "store.duckdb"
    return p.resolve()


class Store(DatasetsMixin, ArtifactsMixin):
    """A DuckDB experiment store. Cheap to construct: instances on one file share a connection."""

    root: Path
    path: Path

    def __init__(self, path: str | Path | None = None) -> None:
        """Open (creating and migrating if needed) the store.

        Raises:
            StoreLockedError: another process holds the file.
            AutoMLInputError: the file was written by a newer version of AutoML Studio.
        """
        self.path = resolve_store_path(path)
        self.root = self.path.parent
        self.root.mkdir(parents=True, exist_ok=True)
        self._handle: _connection.Handle | None = _connection.acquire(self.path)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release this instance; the file is unlocked when the last Store on it closes."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            _connection.release(handle)

    def _live(self) -> _connection.Handle:
        if self._handle is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._handle

    @contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._live().read() as cur:
            yield cur

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._live().write() as cur:
            yield cur

    # ----------------------------------------------------------------- experiments

    def create_experiment(self, name: str, *, dataset_id: str | None, task: str, metric: str,
                          config: dict[str, Any]) -> str:
        """Record a new experiment with status ``queued``; returns ``exp-<yyyymmdd-HHMMSS>-<4 hex>``."""
        with self._write() as cur:
            while True:  # 4 hex digits can collide within one second: retry until free
                now = utcnow()
                experiment_id = f"exp-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
                if not cur.execute("SELECT 1 FROM experiments WHERE experiment_id = ?",
                                   [experiment_id]).fetchone():
                    break
            cur.execute(
                "INSERT INTO experiments (experiment_id, name, dataset_id, task, metric, status, "
                "config, summary, owner, created_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, '{}', ?, ?)",
                [experiment_id, name, dataset_id, task, metric, dumps(config),
                 _connection.process_token(), now])
        return experiment_id

    def _update(self, cur: duckdb.DuckDBPyConnection, experiment_id: str,
                values: dict[str, Any]) -> None:
        """UPDATE one experiment row; column names come from the code's whitelists, never the caller."""
        sets = ", ".join(f"{k} = ?" for k in values)
        n = cur.execute(f"UPDATE experiments SET {sets} WHERE experiment_id = ?",
                        [*values.values(), experiment_id]).fetchone()[0]
        if not n:
            raise KeyError(f"No experiment {experiment_id!r} in the store {self.root}")

    def set_status(self, experiment_id: str, status: str, error: str = "") -> None:
        """Move an experiment to ``status``.

        ``running`` sets started_at (each time: a resumed run restarts the clock), clears
        finished_at and error, and takes ownership for this process; terminal statuses set
        finished_at. ``error`` is stored when given.
        """
        if status not in STATUSES:
            raise ValueError(f"The 'status' parameter must be one of {', '.join(STATUSES)}. Got {status!r}.")
        values: dict[str, Any] = {"status": status}
        now = utcnow()
        if status == "running":
            values.update(started_at=now, finished_at=None, error="", owner=_connection.process_token())
        elif status in TERMINAL:
            values["finished_at"] = now
        if error:
            values["error"] = error
        with self._write() as cur:
            self._update(cur, experiment_id, values)

    def finish_experiment(self, experiment_id: str, *, status: str, best_trial_id: int | None,
                          best_model: str | None, best_score: float | None, test_score: float | None,
                          model_path: str | None, summary: dict[str, Any]) -> None:
        """Record the outcome in one transaction; ``summary`` is merged into the stored one."""
        if status not in TERMINAL:
            raise ValueError(f"The 'status' parameter must be one of {', '.join(TERMINAL)}. Got {status!r}.")
        with self._write() as cur:
            merged = {**self._json_field(cur, experiment_id, "summary"), **summary}
            self._update(cur, experiment_id, {
                "status": status, "finished_at": utcnow(), "best_trial_id": best_trial_id,
                "best_model": best_model, "best_score": _finite(best_score),
                "test_score": _finite(test_score),
                "model_path": None if model_path is None else str(model_path), "summary": dumps(merged)})

    def update_experiment(self, experiment_id: str, **fields: Any) -> None:
        """Change experiment fields. ``config``/``summary`` dicts are merged into the stored ones.

        Allowed: config, summary, name, dataset_id, task, metric, error, best_trial_id, best_model,
        best_score, test_score, model_path. Use :meth:`set_status` for the status.

        Raises:
            ValueError: an unknown field. KeyError: unknown experiment.
        """
        unknown = sorted(set(fields) - _JSON_FIELDS - _PLAIN_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(_JSON_FIELDS | _PLAIN_FIELDS))
            raise ValueError(f"Cannot update experiment field(s) {', '.join(unknown)}; allowed: {allowed}")
        if not fields:
            return
        with self._write() as cur:
            values: dict[str, Any] = {}
            for key, value in fields.items():
                if key in _JSON_FIELDS:
                    if not isinstance(value, dict):
                        raise ValueError(f"The {key!r} field must be a dict. Got {type(value).__name__}.")
                    values[key] = dumps({**self._json_field(cur, experiment_id, key), **value})
                else:
                    values[key] = _finite(value) if isinstance(value, float) else value
            self._update(cur, experiment_id, values)

    def _json_field(self, cur: duckdb.DuckDBPyConnection, experiment_id: str, key: str) -> dict[str, Any]:
        assert key in _JSON_FIELDS  # interpolated below: only whitelisted names
        row = cur.execute(f"SELECT {key} FROM experiments WHERE experiment_id = ?", [experiment_id]).fetchone()
        if row is None:
            raise KeyError(f"No experiment {experiment_id!r} in the store {self.root}")
        return loads(row[0], {})

    def list_experiments(self, dataset_id: str | None = None) -> pd.DataFrame:
        """Experiments (optionally of one dataset), newest first, with dataset_name and n_trials."""
        with self._read() as cur:
            df = cur.execute(
                "SELECT e.experiment_id, e.name, e.dataset_id, d.name AS dataset_name, e.task, e.metric, "
                "e.status, e.best_model, e.best_score, e.test_score, "
                "(SELECT count(*) FROM trials t WHERE t.experiment_id = e.experiment_id) AS n_trials, "
                "e.created_at, e.started_at, e.finished_at "
                "FROM experiments e LEFT JOIN datasets d ON d.dataset_id = e.dataset_id "
                "WHERE ?::VARCHAR IS NULL OR e.dataset_id = ? "
                "ORDER BY e.created_at DESC, e.experiment_id DESC", [dataset_id, dataset_id]).df()
        return frame_as_utc(df, _TIMESTAMPS)

    def get_experiment(self, experiment_id: str) -> dict[str, Any] | None:
        """Every column of the experiment (config and summary parsed), plus dataset_name and n_trials."""
        with self._read() as cur:
            rel = cur.execute(
                "SELECT e.*, d.name AS dataset_name, "
                "(SELECT count(*) FROM trials t WHERE t.experiment_id = e.experiment_id) AS n_trials "
                "FROM experiments e LEFT JOIN datasets d ON d.dataset_id = e.dataset_id "
                "WHERE e.experiment_id = ?", [experiment_id])
            row = rel.fetchone()
            names = [d[0] for d in rel.description]
        if row is None:
            return None
        exp = dict(zip(names, row))
        exp["config"], exp["summary"] = loads(exp["config"], {}), loads(exp["summary"], {})
        for key in _TIMESTAMPS:
            exp[key] = as_utc(exp[key])
        return exp

    def delete_experiment(self, experiment_id: str) -> None:
        """Delete the experiment's rows (trials, events, artifacts) and its artifact folder."""
        check_id(experiment_id)
        with self._write() as cur:
            for table in ("trials", "events", "artifacts", "experiments"):
                cur.execute(f"DELETE FROM {table} WHERE experiment_id = ?", [experiment_id])
        # After the commit: if the process dies in between, the rows are gone and the folder is
        # only an orphan, never rows pointing at missing files.
        shutil.rmtree(self.root / "artifacts" / experiment_id, ignore_errors=True)

    def mark_interrupted(self) -> list[str]:
        """Mark ``running``/``queued`` experiments of other (dead) processes as ``interrupted``.

        Only one process can hold the file, so an experiment owned by another process can no
        longer be running. Experiments of this process are left alone. Finished trials are kept.
        """
        with self._write() as cur:
            rows = cur.execute(
                "UPDATE experiments SET status = 'interrupted', finished_at = ? "
                "WHERE status IN ('running', 'queued') AND owner IS DISTINCT FROM ? "
                "RETURNING experiment_id", [utcnow(), _connection.process_token()]).fetchall()
        return sorted(r[0] for r in rows)

    # ----------------------------------------------------------------- trials and events

    def add_trial(self, experiment_id: str, trial: TrialResult) -> None:
        """Insert or replace one trial (its own transaction, so a crash keeps earlier ones)."""
        with self._write() as cur:
            cur.execute(
                "INSERT INTO trials (experiment_id, trial_id, family, params, status, score, metrics, "
                "fit_seconds, predict_seconds, started_at, finished_at, error, note, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (experiment_id, trial_id) DO UPDATE SET family = excluded.family, "
                "params = excluded.params, status = excluded.status, score = excluded.score, "
                "metrics = excluded.metrics, fit_seconds = excluded.fit_seconds, "
                "predict_seconds = excluded.predict_seconds, started_at = excluded.started_at, "
                "finished_at = excluded.finished_at, error = excluded.error, note = excluded.note, "
                "recorded_at = excluded.recorded_at",
                [experiment_id, int(trial.trial_id), trial.family, dumps(trial.params), trial.status,
                 _finite(trial.score), dumps(trial.metrics), _finite(trial.fit_seconds),
                 _finite(trial.predict_seconds), _finite(trial.started_at), _finite(trial.finished_at),
                 trial.error, trial.note, utcnow()])

    def trials(self, experiment_id: str) -> pd.DataFrame:
        """One row per trial (by trial_id) with params as dicts and one column per metric.

        A metric whose name clashes with a fixed column is named ``metric_<name>``.
        """
        with self._read() as cur:
            df = cur.execute(f"SELECT {', '.join(_TRIAL_COLUMNS)}, metrics FROM trials "
                             "WHERE experiment_id = ? ORDER BY trial_id", [experiment_id]).df()
        metrics = pd.DataFrame([loads(m, {}) for m in df.pop("metrics")], index=df.index)
        df["params"] = pd.Series([loads(p, {}) for p in df["params"]], index=df.index, dtype=object)
        for name in metrics.columns:
            df[f"metric_{name}" if name in df.columns else name] = pd.to_numeric(metrics[name], errors="coerce")
        return df

    def add_event(self, experiment_id: str, event: Event) -> None:
        """Record a progress event; a carried trial is referenced by trial_id, not copied."""
        with self._write() as cur:
            cur.execute("INSERT INTO events (experiment_id, kind, elapsed, payload, trial_id, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [experiment_id, event.kind, _finite(event.elapsed), dumps(event.payload),
                         None if event.trial is None else int(event.trial.trial_id), utcnow()])

    def events(self, experiment_id: str, limit: int = 100) -> pd.DataFrame:
        """The latest ``limit`` events, newest first: event_id, kind, elapsed, payload (dict), trial_id, created_at."""
        with self._read() as cur:
            df = cur.execute("SELECT event_id, kind, elapsed, payload, trial_id, created_at FROM events "
                             "WHERE experiment_id = ? ORDER BY event_id DESC LIMIT ?",
                             [experiment_id, max(0, int(limit))]).df()
        df["payload"] = pd.Series([loads(p, {}) for p in df["payload"]], index=df.index, dtype=object)
        return frame_as_utc(df, ["created_at"])

    def callback(self, experiment_id: str) -> Callable[[Event], None]:
        """A search callback that records every event, and the trial of each ``trial_finished``.

        The trial is written before its event so a reader who sees the event finds the trial.
        """
        def record(event: Event) -> None:
            if event.kind == "trial_finished" and event.trial is not None:
                self.add_trial(experiment_id, event.trial)
            self.add_event(experiment_id, event)

        return record


def _finite(x: Any) -> float | None:
    """A float for a DOUBLE column: None and NaN/inf become NULL."""
    if x is None:
        return None
    x = float(x)
    return x if x == x and x not in (float("inf"), float("-inf")) else None
