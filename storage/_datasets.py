"""Dataset half of the store: parquet files under ``<root>/datasets`` plus a row each in ``datasets``."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._codec import as_utc, dumps, frame_as_utc, loads, utcnow
from ._profile import profile_parquet

if TYPE_CHECKING:
    from automl_core.prepare.schema import ColumnInfo


def fingerprint(df: pd.DataFrame) -> str:
    """sha256 over column names, dtypes and cell values: the same table gives the same digest.

    Hashes values rather than the parquet bytes, whose metadata changes with library versions.
    """
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()], ensure_ascii=False).encode())
    h.update(str(len(df)).encode())
    for name in df.columns:
        col = df[name]
        try:
            digest = pd.util.hash_pandas_object(col, index=False).to_numpy(dtype=np.uint64)
        except TypeError:  # unhashable cells (lists, dicts): hash their text instead
            digest = pd.util.hash_pandas_object(col.astype(str), index=False).to_numpy(dtype=np.uint64)
        h.update(digest.tobytes())
    return h.hexdigest()


class DatasetsMixin:
    """Methods of :class:`storage.Store` for datasets (needs ``root``, ``_read`` and ``_write``)."""

    root: Path
    _read: Any
    _write: Any

    def add_dataset(self, name: str, df: pd.DataFrame, columns: list[ColumnInfo] | None = None,
                    source: str = "") -> str:
        """Register a table; the same content under the same name returns the existing id.

        Column names that are not strings are stored as their ``str`` (parquet needs text names).

        Returns:
            The dataset id (``ds-<yyyymmdd-HHMMSS>-<6 hex>``).

        Raises:
            AutoMLInputError: duplicate column names.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"add_dataset needs a pandas DataFrame, got {type(df).__name__}")
        names = [str(c) for c in df.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            from automl_core.errors import AutoMLInputError  # lazy: see storage/__init__
            raise AutoMLInputError(f"The table has duplicate column names: {', '.join(map(repr, dupes))}",
                                   "rename the columns so that each name appears once")
        if names != list(df.columns):
            df = df.set_axis(names, axis=1)
        digest = fingerprint(df)
        existing = self._find_dataset(digest, name)
        if existing:
            return existing
        folder = self.root / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        now = utcnow()
        dataset_id = f"ds-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        # Write beside the final name and rename: a crash never leaves a half-written file in use.
        final = folder / f"{dataset_id}.parquet"
        tmp = folder / f".{dataset_id}.parquet.tmp"
        df.to_parquet(tmp, index=False)
        schema = [{"name": n, "dtype": str(t)} for n, t in zip(names, df.dtypes)]
        try:
            with self._write() as cur:
                # Checked again under the writer lock: another thread may have added it meanwhile.
                row = cur.execute("SELECT dataset_id FROM datasets WHERE fingerprint = ? AND name = ?",
                                  [digest, name]).fetchone()
                if row:
                    tmp.unlink(missing_ok=True)
                    return str(row[0])
                os.replace(tmp, final)
                cur.execute(
                    "INSERT INTO datasets (dataset_id, name, fingerprint, source, file, n_rows, n_cols, "
                    "schema, columns, profile, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                    [dataset_id, name, digest, source, f"datasets/{final.name}", len(df), len(names),
                     dumps(schema), dumps([c.to_dict() for c in columns or []]), now])
        except BaseException:
            tmp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise
        return dataset_id

    def _find_dataset(self, digest: str, name: str) -> str | None:
        with self._read() as cur:
            row = cur.execute("SELECT dataset_id FROM datasets WHERE fingerprint = ? AND name = ? "
                              "ORDER BY created_at LIMIT 1", [digest, name]).fetchone()
        return str(row[0]) if row else None

    def list_datasets(self) -> pd.DataFrame:
        """All datasets, newest first: dataset_id, name, n_rows, n_cols, created_at, fingerprint, source."""
        with self._read() as cur:
            df = cur.execute("SELECT dataset_id, name, n_rows, n_cols, created_at, fingerprint, source "
                             "FROM datasets ORDER BY created_at DESC, dataset_id DESC").df()
        return frame_as_utc(df, ["created_at"])

    def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        """A dataset's metadata, or None if unknown.

        Returns:
            dataset_id, name, fingerprint, source, path (absolute parquet path), n_rows, n_cols,
            schema [{name, dtype}], columns [ColumnInfo dicts], profile (list or None), created_at.
        """
        with self._read() as cur:
            rel = cur.execute("SELECT * FROM datasets WHERE dataset_id = ?", [dataset_id])
            row = rel.fetchone()
            names = [d[0] for d in rel.description]
        if row is None:
            return None
        meta = dict(zip(names, row))
        meta["path"] = str(self.root / meta.pop("file"))
        meta["schema"] = loads(meta["schema"], [])
        meta["columns"] = loads(meta["columns"], [])
        meta["profile"] = _tuples(loads(meta["profile"]))
        meta["created_at"] = as_utc(meta["created_at"])
        return meta

    def _dataset_or_raise(self, dataset_id: str) -> dict[str, Any]:
        meta = self.get_dataset(dataset_id)
        if meta is None:
            raise KeyError(f"No dataset {dataset_id!r} in the store {self.root}")
        return meta

    def load_dataset(self, dataset_id: str) -> pd.DataFrame:
        """The stored table, as it was given to :meth:`add_dataset` (column names and dtypes).

        Raises:
            KeyError: unknown dataset id.
        """
        return pd.read_parquet(self._dataset_or_raise(dataset_id)["path"])

    def set_dataset_columns(self, dataset_id: str, columns: list[ColumnInfo]) -> None:
        """Replace the dataset's column roles (e.g. after the user overrides one)."""
        with self._write() as cur:
            n = cur.execute("UPDATE datasets SET columns = ? WHERE dataset_id = ?",
                            [dumps([c.to_dict() for c in columns]), dataset_id]).fetchone()[0]
            if not n:
                raise KeyError(f"No dataset {dataset_id!r} in the store {self.root}")

    def profile_dataset(self, dataset_id: str) -> list[dict[str, Any]]:
        """Per-column profile computed by DuckDB over the parquet file, cached after the first call.

        See :func:`storage._profile.profile_parquet` for the keys. ``top_values`` and ``histogram``
        hold tuples whether computed now or read from the cache.
        """
        from automl_core.prepare.roles import MISSING_TOKENS  # lazy: see storage/__init__

        meta = self._dataset_or_raise(dataset_id)
        # A profile cached before disguised missing values were counted ("n_disguised") is redone.
        if meta["profile"] is not None and all("n_disguised" in c for c in meta["profile"]):
            return meta["profile"]
        dtypes = {c["name"]: c["dtype"] for c in meta["schema"]}
        with self._read() as cur:
            profile = profile_parquet(cur, Path(meta["path"]), dtypes, missing_tokens=MISSING_TOKENS)
        text = dumps(profile)
        with self._write() as cur:
            cur.execute("UPDATE datasets SET profile = ? WHERE dataset_id = ?", [text, dataset_id])
        return _tuples(loads(text))


def _tuples(profile: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """JSON turns tuples into lists; turn the (value, count) and bin triples back into tuples."""
    if profile is None:
        return None
    for col in profile:
        col["top_values"] = [tuple(x) for x in col.get("top_values", [])]
        col["histogram"] = [tuple(x) for x in col.get("histogram", [])]
    return profile
