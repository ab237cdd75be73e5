"""The saved model: ``model.joblib`` (a plain scikit-learn Pipeline) and ``model.json`` (its card).

The pipeline holds only objects from public packages, so it loads without this repository. The card
lists exactly which packages (and versions) the pickle refers to, found by walking the pickle.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np

MODEL_FILE = "model.joblib"
CARD_FILE = "model.json"


class _ModuleRecorder(pickle.Pickler):
    """A pickler that notes the top-level module of every object it meets."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.modules: set[str] = set()

    def persistent_id(self, obj: Any) -> None:
        module = getattr(obj, "__module__", None) if isinstance(obj, type) or callable(obj) else type(obj).__module__
        if module is None and isinstance(obj, np.ufunc):  # scipy's ufuncs (logit in a geometric bag) name no module
            module = pickle.whichmodule(obj, obj.__name__)
        if isinstance(module, str):
            self.modules.add(module.split(".")[0])
        return None


def required_packages(model: Any) -> dict[str, str]:
    """{distribution name: version} of every package the pickled ``model`` refers to."""
    recorder = _ModuleRecorder(io.BytesIO())
    recorder.dump(model)
    dists = metadata.packages_distributions()
    out: dict[str, str] = {}
    for module in sorted(recorder.modules | {"joblib"}):
        for dist in dists.get(module, []):
            out[dist] = metadata.version(dist)
    return dict(sorted(out.items()))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: Any, card: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write model.joblib and model.json into ``out_dir``; returns both paths.

    The card's ``profile`` (ranges, bins, category shares of the training rows; see
    ``checks.training_profile``) is what new data is checked against before scoring.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path, card_path = out / MODEL_FILE, out / CARD_FILE
    joblib.dump(model, model_path)
    card = {**card, "packages": required_packages(model), "python": platform.python_version(),
            "model_sha256": sha256_file(model_path)}
    card_path.write_text(json.dumps(card, indent=2, default=json_default, allow_nan=False))
    return model_path, card_path


def json_default(value: Any) -> Any:
    """JSON for numpy scalars and other plain values; non-finite floats become null."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def clean_json(value: Any) -> Any:
    """Replace NaN/inf (which json.dumps would write as invalid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (np.generic,)):
        return clean_json(value.item())
    return value
