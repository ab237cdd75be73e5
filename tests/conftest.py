"""Shared test fixtures: where the shared datasets live, and a private store for every test."""
from __future__ import annotations

from pathlib import Path

import pytest
from shared_data import DATASETS as SHARED


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED}")
    return SHARED


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    """Every test gets its own store, never the user's ./.automl."""
    path = tmp_path / "store" / "store.duckdb"
    monkeypatch.setenv("AUTOML_STORE", str(path))
    return path
