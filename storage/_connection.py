"""One DuckDB connection per (process, file), shared by every Store opened on that file.

DuckDB lets exactly one process hold a database file read-write, and inside that process the
supported way to use several threads is one ``cursor()`` per thread. So the connection lives in a
module-level registry: a second ``Store(path)`` in the same process (a Streamlit rerun, the
training thread) reuses it, and every write goes through :meth:`Handle.write`, which serializes
writers with a lock and wraps each in its own transaction.
"""
from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import migrations

_REGISTRY: dict[tuple[int, str], "Handle"] = {}
_REGISTRY_LOCK = threading.Lock()
_TOKEN: tuple[int, str] | None = None


def process_token() -> str:
    """A random id for this process, new after a fork.

    Experiments record the token of the process running them; any other token on a
    ``running`` experiment means its process is gone (only one process can hold the file).
    A uuid rather than the pid because pids are reused.
    """
    global _TOKEN
    if _TOKEN is None or _TOKEN[0] != os.getpid():
        _TOKEN = (os.getpid(), uuid.uuid4().hex)
    return _TOKEN[1]


@dataclass
class Handle:
    """The shared connection to one store file, with its writer lock and user count."""

    key: tuple[int, str]
    conn: duckdb.DuckDBPyConnection
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    cursor_lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A fresh cursor (DuckDB's per-thread connection) on the shared database."""
        with self.cursor_lock:  # creating cursors races with close() from another thread
            return self.conn.cursor()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for reading; readers never block the writer (DuckDB is MVCC)."""
        cur = self.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one way to write: serialized by a lock, all-or-nothing in one transaction."""
        with self.write_lock:
            cur = self.cursor()
            try:
                cur.begin()
                try:
                    yield cur
                except BaseException:
                    try:
                        cur.rollback()
                    except duckdb.Error:  # keep the original error, not the rollback's
                        pass
                    raise
                cur.commit()
            finally:
                cur.close()


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


def acquire(path: Path) -> Handle:
    """Open (or reuse) the connection to ``path``, migrating the schema on first open.

    Raises:
        StoreLockedError: another process holds the file.
        migrations.StoreVersionError: the file was written by a newer version.
    """
    key = (os.getpid(), str(path))
    with _REGISTRY_LOCK:
        handle = _REGISTRY.get(key)
        if handle is None:
            try:
                conn = duckdb.connect(str(path))
            except duckdb.IOException as exc:
                if _is_lock_error(exc):
                    from automl_core.errors import StoreLockedError  # lazy: see storage/__init__
                    raise StoreLockedError(
                        f"The store {path} is in use by another process (probably a running studio)",
                        "pass --store with another path, or stop the studio",
                    ) from None
                raise
            try:
                migrations.migrate(conn)
            except BaseException:
                conn.close()
                raise
            handle = _REGISTRY[key] = Handle(key=key, conn=conn)
        handle.users += 1
        return handle


def release(handle: Handle) -> None:
    """Drop one user; the last one closes the connection so other processes can open the file."""
    with _REGISTRY_LOCK:
        handle.users -= 1
        if handle.users > 0:
            return
        _REGISTRY.pop(handle.key, None)
        with handle.write_lock, handle.cursor_lock:  # let a running write finish first
            handle.conn.close()
