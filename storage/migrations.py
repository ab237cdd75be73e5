"""The store's schema, as an ordered list of migration steps.

Rules:
- Steps are append-only. Never edit a released step; add a new one that alters the tables.
- Step ``i`` (0-based) brings the file to version ``i + 1``. ``schema_version`` holds one row per
  applied step. Opening a file applies the missing steps in one transaction, so a crash
  mid-migration leaves the file at its old version.
- A file whose version is newer than :data:`MIGRATIONS` knows is refused (a newer studio wrote it;
  writing to it with an older schema in mind could lose data).

Conventions: JSON documents are VARCHAR holding ``json.dumps`` text; timestamps are TIMESTAMPTZ
(UTC). No foreign keys: DuckDB's FK checks make deletes and upserts awkward, and
``Store.delete_experiment`` removes children explicitly in one transaction instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb

@dataclass(frozen=True)
class Migration:
    """One schema step: a description and the SQL statements that apply it."""

    description: str
    statements: tuple[str, ...]


MIGRATIONS: list[Migration] = [
    Migration("initial schema", (
        """CREATE TABLE datasets (
            dataset_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            fingerprint VARCHAR NOT NULL,      -- sha256 of the content (see store._fingerprint)
            source VARCHAR NOT NULL DEFAULT '',
            file VARCHAR NOT NULL,             -- parquet path relative to the store folder
            n_rows BIGINT NOT NULL,
            n_cols INTEGER NOT NULL,
            schema VARCHAR NOT NULL,           -- JSON [{name, dtype}]
            columns VARCHAR NOT NULL,          -- JSON [ColumnInfo.to_dict()]
            profile VARCHAR,                   -- JSON, filled by profile_dataset
            created_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE experiments (
            experiment_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            dataset_id VARCHAR,
            task VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            error VARCHAR NOT NULL DEFAULT '',
            config VARCHAR NOT NULL,           -- JSON
            summary VARCHAR NOT NULL,          -- JSON
            best_trial_id INTEGER,
            best_model VARCHAR,
            best_score DOUBLE,
            test_score DOUBLE,
            model_path VARCHAR,
            owner VARCHAR,                     -- process token of the process running it
            created_at TIMESTAMPTZ NOT NULL,
            started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ
        )""",
        """CREATE TABLE trials (
            experiment_id VARCHAR NOT NULL,
            trial_id INTEGER NOT NULL,
            family VARCHAR NOT NULL,
            params VARCHAR NOT NULL,           -- JSON
            status VARCHAR NOT NULL,
            score DOUBLE,
            metrics VARCHAR NOT NULL,          -- JSON {metric: value}
            fit_seconds DOUBLE,
            predict_seconds DOUBLE,
            started_at DOUBLE,                 -- seconds since the search started
            finished_at DOUBLE,
            error VARCHAR NOT NULL DEFAULT '',
            note VARCHAR NOT NULL DEFAULT '',
            recorded_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (experiment_id, trial_id)
        )""",
        "CREATE SEQUENCE events_seq",
        """CREATE TABLE events (
            event_id BIGINT PRIMARY KEY DEFAULT nextval('events_seq'),
            experiment_id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            elapsed DOUBLE,
            payload VARCHAR NOT NULL,          -- JSON
            trial_id INTEGER,                  -- points into trials; the trial is not copied here
            created_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE artifacts (
            experiment_id VARCHAR NOT NULL,
            path VARCHAR NOT NULL,             -- relative to the store folder when inside it
            kind VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL,
            size_bytes BIGINT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (experiment_id, path)
        )""",
    )),
]


def latest_version() -> int:
    """The schema version this code writes."""
    return len(MIGRATIONS)


def current_version(cur: duckdb.DuckDBPyConnection) -> int:
    """The version recorded in the file (0 for a new, empty file)."""
    exists = cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return int(cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the file up to :func:`latest_version`; return the version it is now at.

    Raises:
        AutoMLInputError: the file is newer than this code (the message says so, and the fix).
    """
    cur = conn.cursor()
    try:
        cur.begin()
        try:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            version, latest = current_version(cur), latest_version()
            if version > latest:
                from automl_core.errors import AutoMLInputError  # lazy: see storage/__init__
                raise AutoMLInputError(
                    f"The store {_db_path(cur)} has schema version {version}, newer than this "
                    f"version of AutoML Studio understands ({latest})",
                    "upgrade AutoML Studio, or pass --store with another path",
                )
            for number in range(version + 1, latest + 1):
                step = MIGRATIONS[number - 1]
                for sql in step.statements:
                    cur.execute(sql)
                cur.execute(
                    "INSERT INTO schema_version VALUES (?, ?, current_timestamp)",
                    [number, step.description],
                )
        except BaseException:
            cur.rollback()
            raise
        cur.commit()
        return latest
    finally:
        cur.close()


def _db_path(cur: duckdb.DuckDBPyConnection) -> str:
    row = cur.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return str(row[0]) if row and row[0] else "file"
