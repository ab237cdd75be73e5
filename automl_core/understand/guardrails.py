"""Guardrails: checks on the data before training and on the model after, each with a verdict.

Every check gives one :class:`Guardrail`: ``Passed`` (nothing to do), ``Done`` (we handled it, here
is how) or ``Alerted`` (you should look), with a sentence on what was found and one on what to do.
Data checks run before the search starts, so the live page can show them (the validation plan is
filled in when the search announces it); model checks run after the model is saved (see ``insights``). Both are stored in the experiment's summary under
``guardrails`` and as ``guardrails.json`` in its artifact folder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config import AutoMLConfig
from ..models.metrics import Metric, metric_label, score_all
from ..prepare.tables import Prepared
from ..prepare.schema import Role

PASSED, DONE, ALERTED = "Passed", "Done", "Alerted"
GUARDRAILS_FILE = "guardrails.json"
IMBALANCE_RATIO = 0.2      # minority < 20 % of the majority (Azure's rule)
TINY_ROWS = 100
TINY_CLASS = 10
DUPLICATE_SHARE = 0.01
OVERFIT_GAP = 0.10         # in ROC AUC or R² points
# Metrics a majority-class model can look good on; the others treat the classes fairly.
_FOOLED_BY_IMBALANCE = {"accuracy", "precision_score_weighted", "f1_weighted", "log_loss"}
_MAX_LISTED = 5


@dataclass(frozen=True)
class Guardrail:
    name: str
    status: str            # Passed | Done | Alerted
    finding: str           # what was found
    action: str            # what we did, or what you should do
    columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "columns": list(self.columns)}


def _count(n: int, what: str = "column") -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


# ------------------------------------------------------------------------------------ data checks

def check_data(prepared: Prepared, config: AutoMLConfig, metric: Metric, validation: str) -> list[Guardrail]:
    """Every data guardrail, in a fixed order. ``validation`` is the plan in words."""
    from .leakage import probe
    checks = [_missing(prepared, config), _by_role(prepared, "High-cardinality columns"),
              _by_role(prepared, "ID-like columns"), _by_role(prepared, "Constant or empty columns"),
              _imbalance(prepared, metric), _tiny(prepared), validation_check(validation), _duplicates(prepared),
              _overlap(prepared)]
    checks.append(_leakage(probe(prepared, config.featurization, config.seed)))
    return checks


def _missing(p: Prepared, config: AutoMLConfig) -> Guardrail:
    cols = [c for c in p.columns if c.n_missing and not c.role.dropped]
    if not cols:
        return Guardrail("Missing values", PASSED, "No feature column has missing values.", "Nothing to do.")
    n = len(p.X)
    parts = [f"'{c.name}' {c.n_missing:,} ({_share(c.n_missing, n)})" for c in sorted(cols, key=lambda c: -c.n_missing)]
    tokens = sorted({t for c in cols for t in c.missing_tokens})
    disguised = f" Disguised missing values such as {', '.join(repr(t) for t in tokens[:4])} were counted too." if tokens else ""
    how = ("numbers with the column median plus a was-missing indicator, categories as a '(missing)' level, "
           "text as empty" if config.featurization != "off" else "numbers with the column median, categories as their own code")
    return Guardrail("Missing values", DONE, f"{_count(len(cols))} {'have' if len(cols) > 1 else 'has'} missing values: {_listed(parts)}.{disguised}",
                     f"Imputed inside the model ({how}); the same happens when it predicts.", tuple(c.name for c in cols))


def _share(part: int, whole: int) -> str:
    """A percentage that never reads 0% for a count that is not zero (26 of 6,433 rows is 0.4%)."""
    share = part / whole if whole else 0.0
    if share == 0 or share >= 0.01:
        return f"{share:.0%}"
    return f"{share:.1%}" if share >= 0.001 else "<0.1%"


_ROLE_CHECKS = {
    "High-cardinality columns": ((Role.HIGH_CARDINALITY,), ("has many distinct values", "have many distinct values"),
                                 "Target-encoded (cross-fitted, so a row's own target never shapes its encoding) "
                                 "instead of one-hot."),
    "ID-like columns": ((Role.ID,), ("looks like an identifier (unique per row)", "look like identifiers (unique per row)"),
                        "Dropped: an identifier carries no pattern that holds for new rows. Override the role if it does."),
    "Constant or empty columns": ((Role.CONSTANT, Role.EMPTY), ("is constant or empty", "are constant or empty"),
                                  "Dropped: a column that never changes cannot help a prediction."),
}


def _by_role(p: Prepared, name: str) -> Guardrail:
    roles, what, action = _ROLE_CHECKS[name]
    cols = [c for c in p.columns if c.role in roles]
    if not cols:
        return Guardrail(name, PASSED, f"No column {what[0]}.", "Nothing to do.")
    detail = [f"'{c.name}' ({c.n_unique:,} distinct)" if c.role is Role.HIGH_CARDINALITY else f"'{c.name}'" for c in cols]
    return Guardrail(name, DONE, f"{_count(len(cols))} {what[1] if len(cols) > 1 else what[0]}: {_listed(detail)}.", action,
                     tuple(c.name for c in cols))


def _imbalance(p: Prepared, metric: Metric) -> Guardrail:
    name = "Class imbalance"
    if not p.task.is_classification:
        return Guardrail(name, PASSED, "Regression: classes do not apply.", "Nothing to do.")
    counts = pd.Series(p.y).value_counts()
    minority, majority = counts.index[-1], counts.index[0]
    ratio = counts.iloc[-1] / counts.iloc[0]  # the same rule as _imbalanced
    found = (f"The smallest class '{minority}' has {counts.iloc[-1]:,} rows, {ratio:.0%} of the largest "
             f"('{majority}', {counts.iloc[0]:,}).")
    if ratio >= IMBALANCE_RATIO:
        return Guardrail(name, PASSED, found, "Nothing to do.")
    if metric.name in _FOOLED_BY_IMBALANCE:
        judged = (f"The metric {metric_label(metric.name)} can look good by favouring '{majority}'; balanced "
                  "accuracy or average precision (binary) judge the rare class fairly.")
    else:
        judged = f"The metric {metric_label(metric.name)} judges the rare class fairly."
    return Guardrail(name, ALERTED, found, f"{judged} The search tries class_weight 'balanced' as well as none; "
                     "the model guardrails say which the best model used.")


def _tiny(p: Prepared) -> Guardrail:
    name = "Amount of data"
    n = len(p.X)
    small = []
    if p.task.is_classification:
        counts = pd.Series(p.y).value_counts()
        small = [f"'{k}' ({v})" for k, v in counts.items() if v < TINY_CLASS]
    # Rows left out before training (a missing target) were said only on the Task step; Results says it too.
    dropped = "".join(f" Before training: {note}." for note in p.notes if note.startswith("dropped "))
    if n < TINY_ROWS or small:
        found = f"{n:,} training rows" + (f"; classes with fewer than {TINY_CLASS} rows: {_listed(small)}" if small else "") + "."
        return Guardrail(name, ALERTED, found + dropped, "Scores on so few rows are noisy (see the interval around the test "
                         "score); more rows would help more than more search time.")
    return Guardrail(name, PASSED, f"{n:,} training rows, {len(p.columns)} feature columns.{dropped}", "Nothing to do.")


def validation_check(description: str) -> Guardrail:
    """The validation plan, in words (the search announces it when it starts)."""
    return Guardrail("Validation strategy", DONE, f"Models are compared on {description}.",
                     "Every model is scored on rows it was not trained on; change the validation on the Configure step.")


#: Beyond this many columns rows are hashed as one joined string each: per-column hashing is pandas
#: work per column (minutes at 10,000 columns), a joined row is one string however wide.
WIDE_COLUMNS = 200


def _row_hashes(X: pd.DataFrame) -> np.ndarray:
    """A hash per row of the values as text. Which way depends only on the column count, so two
    frames with the same columns (training and test rows) hash comparably."""
    if X.shape[1] <= WIDE_COLUMNS:
        return pd.util.hash_pandas_object(X.astype("str"), index=False).to_numpy()
    text = X.to_numpy(dtype=object).astype(str)
    return pd.util.hash_array(np.array(["\x1f".join(row) for row in text], dtype=object))


def _duplicates(p: Prepared) -> Guardrail:
    name = "Duplicate rows"
    features = _row_hashes(p.X)
    with_target = features ^ pd.util.hash_pandas_object(pd.Series(p.y).astype("str"), index=False).to_numpy()
    n_dupes = int(pd.Series(with_target).duplicated().sum())
    conflicting = int(pd.Series(features).duplicated().sum()) - n_dupes
    share = n_dupes / max(len(p.X), 1)
    extra = (f" {conflicting:,} more rows repeat another row's features with a different target." if conflicting > 0 else "")
    if n_dupes == 0:
        return Guardrail(name, PASSED, "No row appears twice." + extra, "Nothing to do.")
    return _by_share(name, f"{n_dupes:,} rows ({share:.1%}) are exact copies of another row.{extra}", share,
                     "Too few to sway the validation scores.",
                     "Copies can land in both the training and the validation rows of a fold, which makes "
                     "validation scores optimistic. Remove them unless they are genuine repeats.")


def _by_share(name: str, found: str, share: float, few: str, many: str) -> Guardrail:
    """Passed when copies are under DUPLICATE_SHARE of the rows, else Alerted."""
    if share < DUPLICATE_SHARE:
        return Guardrail(name, PASSED, found, few)
    return Guardrail(name, ALERTED, found, many)


def _overlap(p: Prepared) -> Guardrail:
    name = "Train/test overlap"
    if p.X_test is None or len(p.X_test) == 0:
        return Guardrail(name, PASSED, "No test data was given.", "Give test data on the Configure step for an honest final score.")
    train = set(_row_hashes(p.X).tolist())
    shared = int(np.isin(_row_hashes(p.X_test[list(p.X.columns)]), list(train)).sum())
    share = shared / len(p.X_test)
    if shared == 0:
        return Guardrail(name, PASSED, f"None of the {len(p.X_test):,} test rows appears in the training data.", "Nothing to do.")
    found = f"{shared:,} of the {len(p.X_test):,} test rows ({share:.1%}) also appear, identical, in the training data."
    return _by_share(name, found, share, "Too few to sway the test score.",
                     "The test score is optimistic for those rows: the model has seen them. Take them out of "
                     "the test data, or split test data off before any copying happened.")


def _leakage(suspects: list) -> Guardrail:
    name = "Target leakage"
    if not suspects:
        return Guardrail(name, PASSED, "No column predicts the target suspiciously well on its own.", "Nothing to do.")
    found = "; ".join(s.words() for s in suspects) + "."
    return Guardrail(name, ALERTED, found, "If such a value is only known after the outcome (the length of the sales call, "
                     "a part of the total being predicted), the model will fail on new rows: exclude the column on the "
                     "Configure step. If it is known when you predict, keep it.", tuple(s.column for s in suspects))


# ------------------------------------------------------------------------------------ model checks

def check_model(card: dict[str, Any], prepared: Prepared, model: Any, metric: Metric) -> list[Guardrail]:
    """Guardrails on the trained model: overfitting, and the class weights it used."""
    out = [_overfitting(card, prepared, model, metric)]
    if prepared.task.is_classification and _imbalanced(prepared):
        out.append(_weights_used(card))
    return out


def _imbalanced(p: Prepared) -> bool:
    counts = pd.Series(p.y).value_counts()
    return bool(counts.iloc[-1] / counts.iloc[0] < IMBALANCE_RATIO)


def train_metrics(card: dict[str, Any], prepared: Prepared, model: Any, seed: int = 0) -> dict[str, float]:
    """The final model's metrics on its own training rows: the card's ``train`` block when the engine
    recorded it, else computed here on at most 20,000 training rows."""
    recorded = (card.get("train") or {}).get("metrics")
    if recorded:
        return dict(recorded)
    rows = np.arange(len(prepared.X))
    if len(rows) > 20_000:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), 20_000, replace=False))
    X, y = prepared.X.iloc[rows], prepared.y[rows]
    if prepared.task.is_classification:
        proba = np.zeros((len(rows), len(prepared.classes)))
        proba[:, [prepared.classes.index(c) for c in model.classes_]] = model.predict_proba(X)
        return score_all(prepared.task, prepared.codes(y), proba, prepared.pos_index)
    return score_all(prepared.task, np.asarray(y, dtype=float), model.predict(X))


def _overfitting(card: dict[str, Any], p: Prepared, model: Any, metric: Metric) -> Guardrail:
    name = "Overfitting"
    train = train_metrics(card, p, model)
    valid = (card.get("validation") or {}).get("metrics") or {}
    # Judged on a bounded score, so that "0.1 apart" means the same on every dataset.
    judge = "roc_auc" if p.task.is_classification else "r2_score"
    if judge not in train or judge not in valid:
        return Guardrail(name, PASSED, "Training and validation scores could not be compared.", "Nothing to do.")
    gap = train[judge] - valid[judge]
    found = f"On the training rows {metric_label(judge)} is {train[judge]:.3f}, on validation {valid[judge]:.3f} (gap {gap:+.3f})"
    if metric.name != judge and metric.name in train and metric.name in valid:
        found += f"; {metric_label(metric.name)} {train[metric.name]:.4g} against {valid[metric.name]:.4g}"
    if gap <= OVERFIT_GAP:
        return Guardrail(name, PASSED, found + ".", "The model does about as well on rows it has not seen.")
    return Guardrail(name, ALERTED, found + ".",
                     "The model remembers its training rows far better than it predicts new ones. The validation "
                     "score is the one to expect; more rows, fewer columns or a simpler model may generalise better.")


def _weights_used(card: dict[str, Any]) -> Guardrail:
    from ..models.families import FAMILIES
    members = [m for m in card.get("members") or [] if isinstance(m, dict)]
    if not members:
        members = [{"family": card.get("best_model"), "params": card.get("hyperparameters") or {}}]
    used = {}
    for m in members:
        family = str(m.get("family"))
        label = FAMILIES[family].label.split(" (")[0] if family in FAMILIES else family
        used[label] = (m.get("params") or m.get("hyperparameters") or {}).get("class_weight")
    balanced = [k for k, v in used.items() if v == "balanced"]
    found = "; ".join(f"{k}: " + ("class_weight 'balanced'" if v == "balanced" else "no class weights") for k, v in used.items())
    action = ("Rows of the rare class weigh more in training, so probabilities lean towards it; the threshold "
              "explorer shows the trade-off." if balanced else
              "Unweighted training scored best on the metric; to catch more of the rare class, lower the decision "
              "threshold (threshold explorer).")
    return Guardrail("Class weights", DONE, f"The best model ({found}).", action)


def to_json(data: list[Guardrail], model: list[Guardrail]) -> dict[str, list[dict[str, Any]]]:
    return {"data": [g.to_dict() for g in data], "model": [g.to_dict() for g in model]}
