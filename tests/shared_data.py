"""Where the shared datasets live (read by path, never copied into the repository)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
needs_data = pytest.mark.skipif(not (DATASETS / "MANIFEST.tsv").exists(), reason="shared datasets not available")
