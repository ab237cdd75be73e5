"""Explanations of a saved model: which raw input columns drive its predictions, globally and per row.

SHAP values are computed on a row sample, in the training thread after the model is saved (never on
page load), and stored in the experiment's artifact folder. How, by the model's last step:

- LightGBM: its own exact tree SHAP (``pred_contrib=True``), in log-odds (classification) or target units.
- scikit-learn forests and histogram boosting: ``shap.TreeExplainer`` on as many sampled rows as fit
  in the time budget, in probability (forests) or log-odds (boosting). Exact tree SHAP takes seconds
  a row on deep forests: then Saabas values (the path attribution, also additive) are used instead.
- Linear models: exact, coefficient x (value - mean value) on the model's scaled features.
- Ensembles (soft voting and stacking): the members' SHAP values (each member explained as above on
  the shared features), combined the way the ensemble combines the members' predictions. Voting
  regression averages predictions with the ensemble's weights, so the weighted member values add up
  to its prediction. Voting classification averages probabilities: members that explain log-odds
  (boosting, linear) are put on the probability scale first, each row's log-odds contributions
  rescaled by (p(x) - p(base)) / (log-odds(x) - log-odds(base)), which keeps them adding up to
  the member's probability. Stacking's learner is linear in the members' predictions (probabilities
  for classification), so its coefficients weight the member values (log-odds of the learner for
  classification). Members no explainer covers (k-nearest neighbours) are left out and named in the
  note; when they carry half the weight or more, permutation importance is used instead.
- Anything else (k-nearest neighbours) and models too slow for SHAP: permutation importance on the
  raw columns through the whole pipeline (global only), as many columns and repeats as the budget allows.

The budget is a deadline: no step starts once it has passed, a running step is sized to end before
it, and ``stop`` (an Event) ends the work early with what is done so far. ``progress(fraction, text)``
reports how far the work is, for the live page.

Engineered features (one-hot levels, TF-IDF terms, date parts, missing indicators) are mapped back
to their raw column with ``featurize.feature_to_column`` and their contributions summed.

This module samples the rows, maps features to columns, falls back to permutation importance and saves;
the values themselves come from ``shap_values`` (a pipeline, ensembles) and ``shap_estimators`` (one model).
"""
from __future__ import annotations

import json
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .evaluation import scorer
from ..models.metrics import Metric
from ..prepare.schema import ColumnInfo, Task
from .shap_values import Budget, Progress, pipeline_shap

EXPLANATION_FILE = "explanations.json"
EXPLANATION_ROWS = "explanations.parquet"
SAMPLE_ROWS = 2000           # SHAP rows when the explainer is fast
BUDGET_SECONDS = 6.0         # SHAP on fewer rows when slow; then permutation importance in the same time
TOP_FEATURES = 50


class ExplanationStopped(Exception):
    """Nothing was explained: Stop was pressed, or the budget ran out first (the message says which)."""


@dataclass(frozen=True)
class Explanation:
    """What explains the model, on ``n_rows`` sampled training rows.

    ``values`` has one row per sampled row and one column per raw column (``columns``); for a
    multiclass model one such matrix per class, shape (rows, classes, columns). ``None`` for
    permutation importance, which explains the model globally only.
    """

    method: str
    output: str                      # what the values add up to, e.g. "log-odds of 'yes'"
    columns: list[str]
    importance: pd.DataFrame         # column, importance, share (raw columns, largest first)
    feature_importance: pd.DataFrame  # feature, column, importance (engineered features, top 50)
    classes: list[str] = field(default_factory=list)   # classes the values explain ([positive] for binary)
    rows: pd.DataFrame | None = None  # the sampled rows' raw values
    values: np.ndarray | None = None
    base_value: list[float] = field(default_factory=list)  # one per explained class (one for regression)
    n_rows: int = 0
    seconds: float = 0.0
    note: str = ""
    members: dict[str, dict] = field(default_factory=dict)  # ensembles: each explained member's weight and method

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able part (everything but the per-row values)."""
        return {"method": self.method, "output": self.output, "columns": self.columns, "classes": self.classes,
                "importance": self.importance.to_dict("records"),
                "feature_importance": self.feature_importance.to_dict("records"),
                "base_value": self.base_value, "n_rows": self.n_rows, "seconds": round(self.seconds, 3),
                "note": self.note, "members": self.members, "has_rows": self.values is not None}


# ------------------------------------------------------------------------------------ computing

def explain_model(model: Any, X: pd.DataFrame, y: np.ndarray, *, columns: list[ColumnInfo], task: Task,
                  classes: list[Any] | None, positive_class: Any, metric: Metric, seed: int = 0,
                  sample_rows: int = SAMPLE_ROWS, budget_seconds: float = BUDGET_SECONDS,
                  progress: Progress | None = None, stop: threading.Event | None = None) -> Explanation:
    """Explain a fitted pipeline (``features`` step first, estimator last) on a sample of ``X``.

    ``y`` holds the labels (classification) or values, aligned with ``X``: permutation importance needs them.
    ``budget_seconds`` is a deadline (see the module doc); ``progress`` and ``stop`` as there.
    """
    from ..prepare.featurize import feature_to_column
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from ..models.families import bag_folds, bag_pool
    folds = bag_folds(model)
    if folds:  # a bag of fold models: its first fold, the same configuration on (k-1)/k of the rows
        first = folds[0] if "features" in folds[0].named_steps and isinstance(
            folds[0][-1], (VotingClassifier, VotingRegressor)) else _first_fold(model, folds)
        out = explain_model(first, X, y, columns=columns, task=task, classes=classes, positive_class=positive_class,
                            metric=metric, seed=seed, sample_rows=sample_rows, budget_seconds=budget_seconds,
                            progress=progress, stop=stop)
        how = "pools" if bag_pool(model) == "geometric" else "averages"
        return replace(out, note=" ".join(n for n in (out.note, f"The saved model {how} {len(folds)} fold "
                                                      "models of this configuration; these values explain the "
                                                      "first of them.") if n))
    budget = Budget(budget_seconds, progress, stop)
    start = budget.start
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(X), min(sample_rows, len(X)), replace=False))
    sample = X.iloc[rows].reset_index(drop=True)
    names = [str(n) for n in model[0].get_feature_names_out()]
    mapping = feature_to_column(model[0], columns)
    sources = set(mapping.values())
    raw = [c.name for c in columns if c.name in sources]
    position = {name: j for j, name in enumerate(raw)}
    # sparse, one 1 per feature: a dense features x columns matrix is 800 MB on 10,000 columns
    to_raw = sparse.csr_matrix((np.ones(len(names)), ([position[mapping[n]] for n in names], np.arange(len(names)))),
                               shape=(len(raw), len(names)))  # columns x features
    explained = [positive_class] if task is Task.BINARY else list(classes or [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap_out = pipeline_shap(model, sample, task, explained, budget)
    if shap_out is None:
        if budget.stopped:
            raise ExplanationStopped("stopped while explaining")
        return _permutation(model, X, y, raw, task, classes, metric, seed, budget)
    values, base, method, output, n, note, members = (*shap_out, "", {})[:7]  # values: (n, K, F)
    budget.report(1.0, f"explained {n:,} rows")
    sample = sample.iloc[:n]
    raw_values = (to_raw @ values.reshape(-1, values.shape[2]).T).T.reshape(*values.shape[:2], len(raw))  # (n, K, C)
    imp_raw = np.abs(raw_values).mean(axis=(0, 1))
    imp_feat = np.abs(values).mean(axis=(0, 1))
    top = np.argsort(-imp_feat)[:TOP_FEATURES]
    features = pd.DataFrame({"feature": [_shown(names[i], mapping[names[i]]) for i in top],
                             "column": [mapping[names[i]] for i in top],
                             "importance": imp_feat[top]})
    stored = raw_values[:, 0, :] if raw_values.shape[1] == 1 else raw_values
    return Explanation(method, output, raw, _ranked(raw, imp_raw), features, [str(c) for c in explained],
                       sample[raw], stored, [float(b) for b in base], n, time.perf_counter() - start, note,
                       members)


def _first_fold(model: Any, folds: list[Any]) -> Any:
    """A bag's first fold as a model of its own: its featurizer, then a one-member Voting around the
    rest (which turns the fold model's class codes into the labels, as the bag does)."""
    import copy
    from sklearn.ensemble import VotingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.utils import Bunch
    bag = model.steps[-1][1]
    member = Pipeline(folds[0].steps[1:])
    if hasattr(bag, "final_estimator_"):  # the geometric pool (a Stacking): one fold's pool is its own probabilities
        one = VotingClassifier([("fold_1", member)], voting="soft")
        one.le_, one.classes_ = bag._label_encoder, bag.classes_
    else:
        one = copy.copy(bag)
    one.estimators, one.estimators_, one.weights = [("fold_1", member)], [member], None
    one.named_estimators_ = Bunch(fold_1=member)
    return Pipeline([folds[0].steps[0], ("model", one)])


def _shown(feature: str, column: str) -> str:
    """A feature's name as a person reads it: a per-column entry's engine name ("onehot_3") replaced by its
    column ("Sex__Sex_male"); the shared numeric entries already name their column after the prefix."""
    entry, _, rest = feature.partition("__")
    return feature if entry.startswith("numeric") or not rest else f"{column}__{rest}"


def _ranked(columns: list[str], importance: np.ndarray) -> pd.DataFrame:
    total = float(np.sum(np.clip(importance, 0, None))) or 1.0
    frame = pd.DataFrame({"column": columns, "importance": importance,
                          "share": np.clip(importance, 0, None) / total})
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _permutation(model: Any, X: pd.DataFrame, y: np.ndarray, raw: list[str], task: Task, classes: list[Any] | None,
                 metric: Metric, seed: int, budget: Budget) -> Explanation:
    """How much the metric drops when one raw column's values are shuffled (whole pipeline, global only).

    Up to three repeats of every column, as many as the time left allows. A call costs a fixed
    overhead (featurizing, every ensemble member) plus a cost per row, both measured here, so the row
    sample is sized for one repeat of every column in the budget. The deadline is checked before
    every column: columns not reached by then are left unmeasured (importance 0) and named in the note."""
    start = budget.start
    if budget.over():
        raise ExplanationStopped("stopped while explaining" if budget.stopped else
                                 f"the {budget.seconds:.0f} s budget ran out before anything was explained")
    budget.report(0.0, "measuring how long the model takes to predict")
    predict = model.predict_proba if task.is_classification else model.predict
    small, large = min(20, len(X)), min(200, len(X))
    seconds = []
    for size in (small, large):
        tick = time.perf_counter()
        predict(X.iloc[:size])
        seconds.append(time.perf_counter() - tick)
    per_row = max(seconds[1] - seconds[0], 0.0) / max(large - small, 1)
    overhead = max(seconds[0] - small * per_row, 0.0)
    calls = len(raw) + 1
    n = int(np.clip((budget.left() / calls - overhead) / max(per_row, 1e-9), min(50, len(X)), min(SAMPLE_ROWS, len(X))))
    rows = np.sort(np.random.default_rng(seed + 1).choice(len(X), n, replace=False))
    Xs, ys = X.iloc[rows][raw].reset_index(drop=True), np.asarray(y)[rows]
    score = scorer(metric, task)
    lookup = {c: i for i, c in enumerate(classes or [])}
    truth = np.array([lookup[v] for v in ys]) if task.is_classification else ys.astype(float)
    sign = 1.0 if metric.greater_is_better else -1.0

    def scoring(frame: pd.DataFrame) -> float:
        if not task.is_classification:
            return sign * score(truth, model.predict(frame))
        proba = np.zeros((len(frame), len(classes)))
        proba[:, [lookup[c] for c in model.classes_]] = model.predict_proba(frame)
        return sign * score(truth, proba)

    rng = np.random.default_rng(seed)
    drops: list[list[float]] = [[] for _ in raw]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = scoring(Xs)
        for repeat in range(3):
            for j, column in enumerate(raw):
                if budget.over():
                    break
                budget.report((repeat * len(raw) + j) / (3 * len(raw)),
                              f"shuffling column {j + 1} of {len(raw)} (repeat {repeat + 1} of up to 3)")
                shuffled = Xs.copy()
                # by position, keeping the column's dtype (an object array would change what the encoders see)
                shuffled[column] = shuffled[column].iloc[rng.permutation(len(shuffled))].reset_index(drop=True)
                drops[j].append(reference - scoring(shuffled))
            if budget.over():
                break
    if not any(drops):
        raise ExplanationStopped("stopped while explaining" if budget.stopped else
                                 f"the {budget.seconds:.0f} s budget ran out before anything was explained")
    importance = np.array([np.mean(d) if d else 0.0 for d in drops])
    unmeasured = [c for c, d in zip(raw, drops) if not d]
    note = ("SHAP values are not available for this model (or too slow), so there is no per-row explanation; "
            "the importance is how much worse the model gets without each column.")
    if unmeasured:
        why = "the run was stopped" if budget.stopped else f"the {budget.seconds:.0f} s budget ran out"
        note += (f" {len(unmeasured)} of {len(raw)} columns were not measured because {why}: "
                 f"{', '.join(unmeasured[:10])}{' …' if len(unmeasured) > 10 else ''}.")
    return Explanation("permutation importance (raw columns, whole pipeline)",
                       f"drop in {metric.name} when the column is shuffled", raw,
                       _ranked(raw, importance), pd.DataFrame(columns=["feature", "column", "importance"]),
                       n_rows=len(rows), seconds=time.perf_counter() - start, note=note)



# ------------------------------------------------------------------------------------ storing

def save_explanation(explanation: Explanation, folder: str | Path) -> list[Path]:
    """Write explanations.json (and explanations.parquet with the per-row values); returns the files."""
    folder = Path(folder)
    from ..export.artifacts import clean_json
    paths = [folder / EXPLANATION_FILE]
    paths[0].write_text(json.dumps(clean_json(explanation.to_dict()), indent=1))
    if explanation.values is not None and explanation.rows is not None:
        frame = explanation.rows.copy()
        frame.columns = [f"value:{c}" for c in frame.columns]
        values = explanation.values if explanation.values.ndim == 3 else explanation.values[:, None, :]
        shap_cols = {f"shap:{k}:{column}": values[:, k, j] for k in range(values.shape[1])
                     for j, column in enumerate(explanation.columns)}
        frame = pd.concat([frame, pd.DataFrame(shap_cols, index=frame.index)], axis=1)  # one insert, not K x columns
        frame = frame.astype({c: "str" for c in frame.columns if c.startswith("value:")
                              and not pd.api.types.is_numeric_dtype(frame[c])})
        frame.to_parquet(folder / EXPLANATION_ROWS, index=False)
        paths.append(folder / EXPLANATION_ROWS)
    return paths


def load_explanation(folder: str | Path) -> Explanation | None:
    """The stored explanation of an experiment's model, or None when there is none (yet)."""
    folder = Path(folder)
    meta_path = folder / EXPLANATION_FILE
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    rows = values = None
    rows_path = folder / EXPLANATION_ROWS
    if meta.get("has_rows") and rows_path.is_file():
        frame = pd.read_parquet(rows_path)
        rows = frame[[f"value:{c}" for c in meta["columns"]]].set_axis(meta["columns"], axis=1)
        k = max(1, len(meta["classes"])) if meta["classes"] else 1
        values = np.stack([frame[[f"shap:{i}:{c}" for c in meta["columns"]]].to_numpy() for i in range(k)], axis=1)
        values = values[:, 0, :] if k == 1 else values
    return Explanation(meta["method"], meta["output"], meta["columns"], pd.DataFrame(meta["importance"]),
                       pd.DataFrame(meta["feature_importance"], columns=["feature", "column", "importance"]),
                       meta["classes"], rows, values, meta["base_value"], meta["n_rows"], meta["seconds"], meta["note"],
                       meta.get("members") or {})
