"""One featurizer for an ensemble whose members read different features (text families, issue 22).

A saved ensemble is ``Pipeline([("features", one ColumnTransformer), ("model", Voting / Stacking)])``.
Tabular families read the shared featurizer's output; each text family reads its own (its TF-IDF
settings, or sentence embeddings). So the ensemble's featurizer holds one block of entries per distinct
featurization its members need (entries renamed ``b<k>_...``, each still one raw column, so features
still map back to raw columns), and each member starts with a step keeping its own block's columns
(a ``ColumnTransformer`` passing integer column positions through). All plain scikit-learn objects.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer

from ..models.families import FAMILIES
from .results import TrialResult


def block_key(member: TrialResult) -> tuple | None:
    """Which featurization a trial's model reads: None for the shared one, else its text settings."""
    text = FAMILIES[member.family].text
    return None if text is None else tuple(sorted(text(member.params).items()))


def ensemble_featurizer(members: list[TrialResult], columns: list[Any], featurization: Any, task: Any,
                        seed: int) -> tuple[ColumnTransformer, dict[int, str] | None]:
    """The (unfitted) featurizer of an ensemble, and each member's block prefix (None: all read one block)."""
    from ..prepare.featurize import build_featurizer
    keys = list(dict.fromkeys(block_key(m) for m in members))
    if keys == [None]:
        return build_featurizer(columns, mode=featurization, scale=False, task=task, seed=seed), None
    entries = []
    for k, key in enumerate(keys):
        part = (build_featurizer(columns, mode=featurization, scale=False, task=task, seed=seed) if key is None
                else build_featurizer(columns, mode=featurization, scale=True, task=task, seed=seed, text=dict(key)))
        entries += [(f"b{k}_{name}", trans, cols) for name, trans, cols in part.transformers]
    prefix = {m.trial_id: f"b{keys.index(block_key(m))}_" for m in members}
    return ColumnTransformer(entries, remainder="drop", sparse_threshold=0.3), prefix


def block_columns(fitted: ColumnTransformer, prefix: str) -> np.ndarray:
    """Positions of the fitted featurizer's output columns that belong to one block."""
    parts = [np.arange(s.start, s.stop) for name, s in fitted.output_indices_.items() if name.startswith(prefix)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=int)


def selector(columns: np.ndarray) -> ColumnTransformer:
    """The step that keeps one block (sparse input stays sparse)."""
    return ColumnTransformer([("keep", "passthrough", columns)], remainder="drop", sparse_threshold=1.0)


def encoding(members: list[TrialResult]) -> Any:
    """Embedding members fit with the vectors computed before the search."""
    if not any(dict(block_key(m) or ()).get("kind") == "embedding" for m in members):
        return contextlib.nullcontext()
    from ..prepare import embeddings
    return embeddings.encoding_with(embeddings.shared_cache())


def finish(featurizer: Any, members: list[TrialResult]) -> None:
    """After fitting: embedding blocks get the packaged encoder, which the saved model keeps."""
    if any(dict(block_key(m) or ()).get("kind") == "embedding" for m in members):
        from ..prepare.embeddings import attach_encoder
        attach_encoder(featurizer)
