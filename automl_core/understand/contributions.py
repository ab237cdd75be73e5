"""Per-row contributions of the raw columns to a prediction, for the top-k columns of each row.

Exact and fast where the model allows it, nothing approximate elsewhere:
- LightGBM: its own TreeSHAP (``pred_contrib=True``), per featurized column;
- linear models (logistic / ridge / elastic net): coefficient x scaled feature value (after the
  pipeline's StandardScaler the training mean of each feature is 0, so this is the exact SHAP value
  of a linear model with independent features);
- other models (forests, histogram boosting, kNN, ensembles): not computed (:func:`supported` says
  why): per-row SHAP for them costs seconds per thousand rows, too slow for batch scoring.

Featurized columns map back to raw columns through the featurizer (one-hot levels, indicators,
date parts summed). Values are in the model's raw output units: log-odds towards the class named
for classification, the target's units for regression.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

_LINEAR = {"LogisticRegression", "Ridge", "ElasticNet"}


def supported(model: Any) -> tuple[bool, str]:
    """(True, "") when per-row contributions can be computed for ``model``, else (False, why)."""
    estimator = model[-1] if hasattr(model, "steps") else model
    from ..models.families import bag_folds, single_member
    folds = bag_folds(model)
    if folds:
        return False, (f"per-row contributions are not computed for a bag of {len(folds)} fold models (each has "
                       "its own featurizer); a model trained with final_model='refit' has them")
    name = type(single_member(estimator) or estimator).__name__  # the model, not its label-encoding wrapper
    if name.startswith(("LGBM", "XGB", "CatBoost")) or name in _LINEAR:
        return True, ""
    return False, (f"per-row contributions are computed for gradient boosting (LightGBM, XGBoost, CatBoost) and "
                   f"linear models only; this model is {name}, whose exact per-row SHAP values would take "
                   "seconds per thousand rows")


def _raw_groups(model: Any, card: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """Raw column names and, per featurized column, the index of its raw column."""
    from ..prepare.featurize import feature_to_column
    from ..prepare.schema import ColumnInfo
    columns = [ColumnInfo.from_dict(c) for c in card.get("features") or []]
    mapping = feature_to_column(model.named_steps["features"], columns)
    names = list(dict.fromkeys(mapping.values()))
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[mapping[str(f)]] for f in model.named_steps["features"].get_feature_names_out()])


def _per_feature(estimator: Any, Xt: Any, classes: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """(n, n_features) contributions towards each row's predicted class (or value), and that class."""
    from .shap_estimators import NATIVE_SHAP
    from ..models.families import single_member
    dense = Xt.toarray() if sparse.issparse(Xt) else np.asarray(Xt)
    estimator = single_member(estimator) or estimator  # fit on codes, in the wrapper's (sorted) class order
    name = type(estimator).__name__
    if name.startswith(("LGBM", "XGB", "CatBoost")):
        raw = NATIVE_SHAP[type(estimator).__module__.split(".")[0]][1](estimator, dense)
        n_features = dense.shape[1]
        if classes is not None and len(classes) > 2:
            blocks = raw.reshape(len(dense), len(classes), n_features + 1)[:, :, :n_features]
            chosen = estimator.predict_proba(dense).argmax(axis=1)
            return blocks[np.arange(len(dense)), chosen], [str(classes[i]) for i in chosen]
        towards = [str(classes[1])] * len(dense) if classes is not None else []
        return raw[:, :n_features], towards
    coef = np.atleast_2d(estimator.coef_)
    if classes is not None and len(classes) > 2:
        chosen = estimator.predict_proba(dense).argmax(axis=1)
        return dense * coef[chosen], [str(classes[i]) for i in chosen]
    towards = [str(classes[1])] * len(dense) if classes is not None else []
    return dense * coef[0], towards


def top_contributions(model: Any, card: dict[str, Any], Xt: Any, k: int, *, index: pd.Index) -> pd.DataFrame:
    """Columns ``top<i>_column`` / ``top<i>_contribution`` (i = 1..k, largest |contribution| first)
    and, for classification, ``contribution_towards`` (the class the values push towards).

    ``Xt`` is the batch as the final estimator sees it (after features / dense / scale steps).
    Raises ValueError when the model is not supported (see :func:`supported`).
    """
    ok, why = supported(model)
    if not ok:
        raise ValueError(why)
    classes = getattr(model, "classes_", None) if card.get("task") in ("binary", "multiclass") else None
    per_feature, towards = _per_feature(model[-1], Xt, classes)
    names, groups = _raw_groups(model, card)
    onehot = np.zeros((len(groups), len(names)))
    onehot[np.arange(len(groups)), groups] = 1.0
    per_column = per_feature @ onehot  # summed over each raw column's featurized columns
    k = min(k, len(names))
    order = np.argsort(-np.abs(per_column), axis=1, kind="stable")[:, :k]
    rows = np.arange(len(per_column))[:, None]
    out = pd.DataFrame(index=index)
    labels = np.asarray(names, dtype=object)
    for i in range(k):
        out[f"top{i + 1}_column"] = labels[order[:, i]]
        out[f"top{i + 1}_contribution"] = per_column[rows[:, 0], order[:, i]]
    if towards:
        out["contribution_towards"] = towards
    return out
