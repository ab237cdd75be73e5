"""Scoring new data with a saved model: load (checking fingerprint and versions), check, predict in batches.

The CLI's ``predict``, the REST server and the studio's Predict page all go through here, after
:func:`automl_core.export.drift_checks.check_input` has reported on the data.
"""
from __future__ import annotations

import json
import platform
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import joblib
import pandas as pd

from .artifacts import CARD_FILE, sha256_file
from ..prepare.batch_featurize import featurize
from ..errors import AutoMLInputError
from ..io.reader import read_table

# Cells starting with these are run as formulas by spreadsheet programs; exported CSVs defuse them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Rows featurized and scored at a time: bounds memory on million-row files, and drives progress bars.
BATCH_ROWS = 100_000

Progress = Callable[[int, int], None]
_ARGMAX_CLASSIFIERS = {"LGBMClassifier", "RandomForestClassifier", "ExtraTreesClassifier",
                       "HistGradientBoostingClassifier"}


def load_model(model_path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The pipeline and its card. Refuses a model.joblib whose sha256 differs from its model.json.

    Unpickling under other package versions than the card records is allowed (see
    :func:`version_warnings`); scikit-learn's own warning about it is replaced by that readable one.
    """
    path = Path(model_path)
    if not path.is_file():
        raise AutoMLInputError(f"No model file at '{model_path}'", "pass the model.joblib written by `train`")
    card_path = path.with_name(CARD_FILE)
    card: dict[str, Any] = json.loads(card_path.read_text()) if card_path.is_file() else {}
    expected = card.get("model_sha256")
    if expected is None:
        raise AutoMLInputError(f"'{model_path}' has no model.json beside it, so it cannot be checked before loading",
                               "use a model folder written by `train` (model.joblib with its model.json)")
    if sha256_file(path) != expected:
        raise AutoMLInputError(f"'{model_path}' does not match the fingerprint in its model.json (changed or replaced)",
                               "use the model file exactly as `train` wrote it")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(version|Version).*")
        try:
            model = joblib.load(path)
        except (ImportError, AttributeError, ModuleNotFoundError) as exc:
            problems = "; ".join(version_warnings(card)) or str(exc)
            raise AutoMLInputError(f"The model cannot be loaded here ({exc}); {problems}",
                                   "install the package versions listed in model.json") from exc
    return model, card


def version_warnings(card: dict[str, Any]) -> list[str]:
    """One readable line per package whose installed version differs from the one the model was saved with."""
    out = []
    for name, saved in sorted((card.get("packages") or {}).items()):
        try:
            here = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(f"{name} {saved} was used to save this model but is not installed here")
            continue
        if here != saved:
            out.append(f"{name}: model saved with {saved}, loaded with {here}")
    saved_py = str(card.get("python") or "")
    if saved_py and saved_py.split(".")[:2] != platform.python_version().split(".")[:2]:
        out.append(f"Python: model saved with {saved_py}, loaded with {platform.python_version()}")
    if out:
        out.insert(0, "package versions differ from the ones this model was saved with; predictions may "
                      "differ or fail (install the versions in model.json to be sure)")
    return out


def table_model(model: Any) -> Any:
    """The fitted pipeline the table checks read: a multilabel model's ``pipeline``, else the model itself."""
    return model["pipeline"] if isinstance(model, dict) and "pipeline" in model else model


def required_columns(model: Any, card: dict[str, Any]) -> list[str]:
    """The columns the model reads (those its featurizer drops may be absent)."""
    model = table_model(model)
    profile = card.get("profile") or {}
    if profile.get("required"):
        return list(profile["required"])
    from .drift_checks import column_plan
    return list(column_plan(model) or card.get("input_columns") or getattr(model, "feature_names_in_", []))


def _model_input(model: Any, card: dict[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """The columns the pipeline was fitted on, in its order (absent optional ones left out)."""
    needed = required_columns(model, card)
    absent = [c for c in needed if c not in df.columns]
    if absent:
        from .drift_checks import missing_columns_error
        raise missing_columns_error(absent)
    inputs = [str(c) for c in card.get("input_columns") or needed]
    return df[[c for c in inputs if c in df.columns]]


def predict_frame(model: Any, card: dict[str, Any], df: pd.DataFrame, *, batch_rows: int = BATCH_ROWS,
                  progress: Progress | None = None, top_k: int = 0,
                  cleaned: dict[str, pd.Series] | None = None) -> pd.DataFrame:
    """Predictions in the input's row order: ``prediction``, for classification ``proba_<class>``,
    and with ``top_k`` > 0 the top contributing columns per row (see :mod:`automl_core.understand.contributions`).

    Scores ``batch_rows`` rows at a time, calling ``progress(rows done, rows in all)`` after each.
    ``cleaned``: :func:`~automl_core.prepare.batch_featurize.clean_columns` of ``df``, if already computed.
    Raises AutoMLInputError naming the missing columns.
    """
    if card.get("task") == "forecasting":  # a forecast (and its intervals) for each row's time and series
        from ..forecast import predict_forecast
        return predict_forecast(model, card, df)
    if card.get("task") == "multilabel":  # labels in the target's own format, and proba_<label> per label
        from ..search.multilabel import predict_multilabel
        return predict_multilabel(model, df)
    X = _model_input(model, card, df)
    classification = card.get("task") in ("binary", "multiclass") and hasattr(model, "predict_proba")
    # featurize once for both predict and predict_proba (a bare estimator featurizes nothing)
    # (a bag of fold models is one step: each fold featurizes the raw columns itself)
    head, estimator = ((model[:-1], model[-1]) if hasattr(model, "steps") and len(model.steps) > 1
                       else (None, model[-1] if hasattr(model, "steps") else model))
    parts = []
    for start in range(0, max(len(X), 1), batch_rows):
        batch = X.iloc[start:start + batch_rows]
        reuse = cleaned if cleaned is not None and len(batch) == len(X) else None
        Xt = featurize(model, batch, reuse) if head is not None else batch  # = head.transform(batch), faster
        # LightGBM's OpenMP threads cost more than they save on a few rows (same predictions either way)
        kw = {"num_threads": 1} if len(batch) < 10_000 and type(estimator).__name__.startswith("LGBM") else {}
        proba = estimator.predict_proba(Xt, **kw) if classification else None
        # These classifiers' predict() is literally classes_[argmax(predict_proba)]: skip the second pass.
        argmax = proba is not None and (type(estimator).__name__ in _ARGMAX_CLASSIFIERS
                                        or type(estimator).__name__ == "VotingClassifier"
                                        and getattr(estimator, "voting", "") == "soft")
        columns = {"prediction": estimator.classes_[proba.argmax(axis=1)] if argmax else estimator.predict(Xt, **kw)}
        if proba is not None:
            columns.update({f"proba_{c}": proba[:, i] for i, c in enumerate(model.classes_)})
        part = pd.DataFrame(columns, index=batch.index)  # built at once: a column at a time fragments the frame
        if top_k:
            from ..understand.contributions import top_contributions
            part = part.join(top_contributions(model, card, Xt, top_k, index=batch.index))
        parts.append(part)
        if progress is not None:
            progress(min(start + batch_rows, len(X)), len(X))
    out = pd.concat(parts) if len(parts) > 1 else parts[0]
    return out.set_axis(df.index)


def predict_file(model_path: str | Path, data: str | Path, out_path: str | Path, *,
                 on_report: Callable[[Any], None] | None = None, progress: Progress | None = None,
                 top_k: int = 0, on_warning: Callable[[str], None] | None = None) -> int:
    """Check and score ``data``; write the input columns plus predictions as CSV; returns the row count.

    ``on_warning`` receives each package-version warning, ``on_report`` the
    :class:`~automl_core.export.drift_checks.CheckReport`, both before anything is scored.
    Raises AutoMLInputError when required columns are missing (nothing is written then), or when
    ``top_k`` is asked of a model without per-row contributions.
    """
    from .drift_checks import check_input
    model, card = load_model(model_path)
    for line in version_warnings(card):
        if on_warning is not None:
            on_warning(line)
    if top_k:
        from ..understand.contributions import supported
        ok, why = supported(model)
        if not ok:
            raise AutoMLInputError(why[0].upper() + why[1:], "leave out --top-k for this model")
    if card.get("task") == "image_classification":  # a zip or folder of images, one row per image
        from ..images.run import default_cache_dir, predict_images
        result = predict_images(model, data, cache_dir=default_cache_dir())
        safe_csv(result).to_csv(out_path, index=False)
        return len(result)
    df = read_table(data)
    if card.get("task") != "forecasting":  # forecasts check their rows themselves (time, series)
        report = check_input(df, table_model(model), card)
        if on_report is not None:
            on_report(report)
        if not report.ok:
            raise report.error()
    predictions = predict_frame(model, card, df, progress=progress, top_k=top_k)
    for note in predictions.attrs.get("notes", []):  # forecasts: rows of unknown series or partitions, ...
        if on_warning is not None:
            on_warning(note)
    result = pd.concat([df, predictions], axis=1)
    safe_csv(result).to_csv(out_path, index=False)
    return len(result)


def safe_csv(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (a leading quote defuses them)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            values = out[col]
            risky = values.astype("string").str.startswith(_FORMULA_START, na=False)
            # numbers such as "-1.5" stay as they are
            risky &= pd.to_numeric(values, errors="coerce").isna()
            if risky.any():
                out[col] = values.astype(object).where(~risky, "'" + values.astype("string"))
    out.columns = [("'" + c) if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in out.columns]
    return out
