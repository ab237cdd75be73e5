"""Artifact half of the store: files under ``<root>/artifacts/<experiment_id>/`` with checksums."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from automl_core.export.artifacts import sha256_file  # cheap: automl_core's package import is lazy

from ._codec import frame_as_utc, utcnow

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")


def check_id(experiment_id: str) -> str:
    """Return ``experiment_id`` if it is safe as a folder name, else raise ValueError.

    Only letters, digits, ``_`` and ``-``: no separators or dots, so ``../x`` cannot escape the root.
    """
    if not isinstance(experiment_id, str) or not _SAFE_ID.fullmatch(experiment_id):
        raise ValueError(f"Invalid experiment id {experiment_id!r}: only letters, digits, '_' and '-' are allowed")
    return experiment_id



class ArtifactsMixin:
    """Methods of :class:`storage.Store` for artifacts (needs ``root``, ``_read`` and ``_write``)."""

    root: Path
    _read: Any
    _write: Any

    def artifact_dir(self, experiment_id: str) -> Path:
        """``<root>/artifacts/<experiment_id>/``, created.

        Raises:
            ValueError: the id holds anything but letters, digits, ``_`` and ``-``.
        """
        folder = self.root / "artifacts" / check_id(experiment_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _artifact_key(self, path: str | Path) -> tuple[Path, str]:
        """The absolute file and the path as recorded: relative (posix) inside the root, else absolute.

        A relative ``path`` is taken relative to the root. Files outside the root are allowed
        (the CLI's ``--out`` folder) and recorded by absolute path.
        """
        p = Path(path)
        full = (p if p.is_absolute() else self.root / p).resolve()
        try:
            return full, full.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return full, str(full)

    def register_artifact(self, experiment_id: str, path: str | Path, kind: str) -> str:
        """Record a file's checksum and size under the experiment; re-registering updates it.

        Returns:
            The file's sha256.

        Raises:
            ValueError: invalid experiment id. FileNotFoundError: no such file.
        """
        check_id(experiment_id)
        full, key = self._artifact_key(path)
        digest, size = sha256_file(full), full.stat().st_size
        with self._write() as cur:
            cur.execute(
                "INSERT INTO artifacts (experiment_id, path, kind, sha256, size_bytes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (experiment_id, path) DO UPDATE SET "
                "kind = excluded.kind, sha256 = excluded.sha256, size_bytes = excluded.size_bytes, "
                "created_at = excluded.created_at",
                [experiment_id, key, kind, digest, size, utcnow()])
        return digest

    def artifacts(self, experiment_id: str) -> pd.DataFrame:
        """The experiment's artifacts: path (as recorded), kind, sha256, size_bytes, created_at."""
        with self._read() as cur:
            df = cur.execute("SELECT path, kind, sha256, size_bytes, created_at FROM artifacts "
                             "WHERE experiment_id = ? ORDER BY created_at, path", [experiment_id]).df()
        return frame_as_utc(df, ["created_at"])

    def verify_artifact(self, experiment_id: str, path: str | Path) -> bool:
        """True if the file exists and its sha256 equals the recorded one (False if never recorded)."""
        full, key = self._artifact_key(path)
        with self._read() as cur:
            row = cur.execute("SELECT sha256 FROM artifacts WHERE experiment_id = ? AND path = ?",
                              [experiment_id, key]).fetchone()
        return bool(row) and full.is_file() and sha256_file(full) == row[0]
