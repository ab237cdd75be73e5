"""Generated training code: a standalone ``train.py`` (public packages only) and its ``requirements.txt``.

The script is written from the fitted Pipeline itself: every step's constructor parameters
(``get_params(deep=False)``) become Python source, so the featurization and the model are built exactly
as they were, with the same hyperparameters and seed. The script then repeats the validation the search
did (same splits, per-fold featurization, boosting's early stopping on each fold), prints the score,
which matches the recorded validation score, and fits the final model on all training rows.

Ensembles are not generated yet: their score comes from several members' cross-validated predictions,
which this generator does not reproduce; :func:`generate` says so.
"""
from __future__ import annotations

import importlib
import inspect
import math
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AutoMLInputError
from ..models.families import (EARLY_STOPPING_ROUNDS, FAMILIES, MAX_BOOSTING_ROUNDS, bag_folds, classifier_step,
                               single_member)

_ALIASES = {"pandas": "pd", "numpy": "np"}
#: The scikit-learn metric expression for each of the engine's metrics (y: codes or values,
#: proba: (n, K) probabilities, pred: predicted codes, POS: the positive class index).
_METRIC_CODE = {
    "roc_auc": "roc_auc_score(y == POS, proba[:, POS]) if proba.shape[1] == 2 else "
               "roc_auc_score(y, proba, multi_class='ovr', average='macro', labels=range(proba.shape[1]))",
    "auc_weighted": "roc_auc_score(y, proba[:, 1]) if proba.shape[1] == 2 else "
                    "roc_auc_score(y, proba, multi_class='ovr', average='weighted', labels=range(proba.shape[1]))",
    "log_loss": "log_loss(y, np.clip(proba, 1e-15, 1), labels=range(proba.shape[1]))",
    "accuracy": "accuracy_score(y, pred)",
    "balanced_accuracy": "balanced_accuracy_score(y, pred)",
    "average_precision_score_weighted": "average_precision_score(y == POS, proba[:, POS]) if proba.shape[1] == 2 "
                                        "else average_precision_score(np.eye(proba.shape[1])[y], proba, average='weighted')",
    "norm_macro_recall": "(recall_score(y, pred, average='macro', labels=range(proba.shape[1]), zero_division=0) "
                         "- 1 / proba.shape[1]) / (1 - 1 / proba.shape[1])",
    "precision_score_weighted": "precision_score(y, pred, average='weighted', zero_division=0)",
    "f1_macro": "f1_score(y, pred, average='macro', zero_division=0)",
    "f1_weighted": "f1_score(y, pred, average='weighted', zero_division=0)",
    "rmse": "root_mean_squared_error(y, pred)",
    "normalized_root_mean_squared_error": "root_mean_squared_error(y, pred) / ((y.max() - y.min()) or 1.0)",
    "r2_score": "r2_score(y, pred)",
    "mae": "mean_absolute_error(y, pred)",
    "normalized_mean_absolute_error": "mean_absolute_error(y, pred) / ((y.max() - y.min()) or 1.0)",
    "spearman_correlation": "spearmanr(y, pred).statistic",
    "mape": "mean_absolute_percentage_error(y, pred)",
}


@dataclass(frozen=True)
class GeneratedCode:
    train_py: str
    requirements_txt: str


class _Writer:
    """Turns parameter values into Python source, collecting the imports they need."""

    def __init__(self) -> None:
        self.imports: set[str] = set()
        self.helpers: dict[str, str] = {}   # source of a repeated column pipeline -> its function name

    def _known_public(self, obj: Any) -> str | None:
        """pandas/numpy callables by their documented names (pd.DataFrame.astype, not NDFrame.astype)."""
        import pandas as pd
        name = getattr(obj, "__name__", None)
        for root, prefix, imp in ((pd.DataFrame, "pd.DataFrame", "import pandas as pd"), (pd, "pd", "import pandas as pd"),
                                  (np, "np", "import numpy as np")):
            if name and getattr(root, name, None) is obj:
                self.imports.add(imp)
                return f"{prefix}.{name}"
        return None

    def _public_path(self, obj: Any) -> str:
        """The shortest importable dotted path to ``obj`` (a class or function), with its import noted."""
        # method descriptors such as str.strip have no __module__: their class has
        known = self._known_public(obj)
        if known:
            return known
        module = getattr(obj, "__module__", None) or getattr(getattr(obj, "__objclass__", None), "__module__", "builtins")
        qualname = obj.__qualname__
        if module == "builtins":
            return qualname
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            try:
                found = importlib.import_module(candidate)
                for attr in qualname.split("."):
                    found = getattr(found, attr)
            except (ImportError, AttributeError):
                continue
            if found is obj or getattr(found, "__func__", None) is obj or found == obj:
                top = qualname.split(".")[0]
                if candidate in _ALIASES:
                    self.imports.add(f"import {candidate} as {_ALIASES[candidate]}")
                    return f"{_ALIASES[candidate]}.{qualname}"
                self.imports.add(f"from {candidate} import {top}")
                return qualname
        raise AutoMLInputError(f"Cannot write code for {module}.{qualname}", "report this model")

    def value(self, v: Any) -> str:
        if v is None or isinstance(v, (bool, str, int)):
            return repr(v)
        if isinstance(v, float):
            if math.isnan(v):
                self.imports.add("import numpy as np")
                return "np.nan"
            return repr(v) if math.isfinite(v) else ("float('inf')" if v > 0 else "float('-inf')")
        if isinstance(v, np.generic):
            return self.value(v.item())
        if isinstance(v, (list, tuple)):
            inner = ", ".join(self.value(x) for x in v)
            return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{self.value(k)}: {self.value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, np.ndarray):
            self.imports.add("import numpy as np")
            return f"np.array({self.value(v.tolist())})"
        if isinstance(v, type) or callable(v) and not hasattr(v, "get_params") and hasattr(v, "__qualname__"):
            return self._public_path(v)
        return self.construct(v)

    def construct(self, obj: Any) -> str:
        """``Class(param=value, ...)`` with the parameters that differ from the defaults."""
        cls = type(obj)
        name = self._public_path(cls)
        if hasattr(obj, "get_params"):
            params = obj.get_params(deep=False)
        else:  # plain objects such as CV splitters and column selectors: their constructor arguments
            params = {p: getattr(obj, p) for p in inspect.signature(cls).parameters if hasattr(obj, p)}
        defaults = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
        args = []
        if name == "Pipeline":
            steps = ",\n".join(f"    ({n!r}, {self.value(step)})" for n, step in params.pop("steps"))
            args.append(f"steps=[\n{steps}]")
        if name == "ColumnTransformer":
            args.append(f"transformers=[\n{self._entries(params.pop('transformers'))}]")
        for key, val in params.items():
            default = defaults.get(key, inspect.Parameter.empty)
            try:
                same = default is not inspect.Parameter.empty and type(default) is type(val) and bool(default == val)
            except (ValueError, TypeError):
                same = False
            if not same:
                args.append(f"{key}={self.value(val)}")
        return f"{name}({', '.join(args)})"


    def _entries(self, transformers: list[tuple[str, Any, Any]]) -> str:
        """One line per column entry; a pipeline used by several columns becomes a function, written once."""
        lines = []
        for name, trans, cols in transformers:
            source = self.value(trans)
            if isinstance(trans, str) is False and source.startswith("Pipeline("):
                if source not in self.helpers:
                    self.helpers[source] = f"column_pipeline_{len(self.helpers) + 1}"
                source = f"{self.helpers[source]}()"
            lines.append(f"    ({name!r}, {source}, {self.value(cols)})")
        return ",\n".join(lines)

    def helper_functions(self) -> str:
        return "".join(f"\n\ndef {fn}():\n    return {textwrap.indent(src, '    ').lstrip()}\n"
                       for src, fn in self.helpers.items())


def _requirements(card: dict[str, Any]) -> str:
    pins = dict(card.get("packages") or {})
    for name in ("pandas", "numpy", "scikit-learn", "scipy", "joblib"):
        if name not in pins:
            try:
                from importlib import metadata
                pins[name] = metadata.version(name)
            except Exception:  # noqa: BLE001 -- a package absent here is simply not pinned
                continue
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items(), key=lambda kv: kv[0].lower()))


def generate(model: Any, card: dict[str, Any]) -> GeneratedCode:
    """``train.py`` and ``requirements.txt`` reproducing ``model`` (a saved Pipeline) and its validation score.

    Raises AutoMLInputError for models this generator cannot reproduce (ensembles, forecasting).
    """
    folds = bag_folds(model)
    if folds:  # the script refits one model on all rows: the same configuration and validation score
        model = _refit_of_fold(folds[0], card)
    estimator = model[-1] if hasattr(model, "steps") else model
    if single_member(estimator) is None and type(estimator).__name__.startswith(("Voting", "Stacking")) \
            or card.get("members"):
        raise AutoMLInputError("Generated code is not available for ensembles yet: their validation score comes "
                               "from several members' cross-validated predictions, which the generator does not "
                               "reproduce", "view the code of one of the ensemble's member models instead")
    if card.get("task") not in ("binary", "multiclass", "regression"):
        raise AutoMLInputError(f"Generated code is not available for {card.get('task')} models", "")
    writer = _Writer()
    for line in ("import argparse", "import json", "import joblib", "import numpy as np", "import pandas as pd",
                 "from sklearn.base import clone", "from sklearn.pipeline import Pipeline"):
        writer.imports.add(line)
    pipeline_src = writer.value(model)
    metric = card.get("metric")
    if metric not in _METRIC_CODE:
        raise AutoMLInputError(f"Generated code does not know the metric {metric!r}", "")
    plan = _plan(card)
    source = _TEMPLATE.format(
        doc=_docstring(card), imports="\n".join(sorted(writer.imports, key=_import_order)),
        constants=_constants(card, plan), helpers=writer.helper_functions(), pipeline=textwrap.indent(pipeline_src, "    ").lstrip(),
        metric=metric, metric_expr=_METRIC_CODE[metric])
    compile(source, "train.py", "exec")  # a generator bug surfaces here, not in the user's hands
    return GeneratedCode(source, _requirements(card))


def _refit_of_fold(fold: Any, card: dict[str, Any]) -> Any:
    """A bag's first fold pipeline as the single model the script fits (on labels, like a refit)."""
    from sklearn.pipeline import Pipeline
    from ..prepare.schema import Task
    family = FAMILIES.get(card.get("best_model"))
    last = fold.steps[-1][1]
    if family is not None:  # rebuilt from the card: early stopping's mean round count is in its hyperparameters
        task = Task(card["task"])
        threads = getattr(last, "n_jobs", None) or getattr(last, "thread_count", None) or 1
        last = family.build(card.get("hyperparameters") or {}, task, threads if threads > 0 else 1,
                            int(card.get("seed") or 0))
        last = classifier_step(family, last, task, False)
    return Pipeline([*fold.steps[:-1], ("model", last)])


def member_model(model: Any, card: dict[str, Any], trial_id: int) -> tuple[Any, dict[str, Any]]:
    """One member of a saved ensemble as a model of its own, with its card, for :func:`generate`.

    The member's pipeline follows the ensemble's shared featurization, as the final refit builds a
    single model (finalize.py); the card takes the member's family, hyperparameters and validation score.

    Raises:
        AutoMLInputError: ``trial_id`` is not a member of this model.
    """
    from sklearn.pipeline import Pipeline

    folds = bag_folds(model)
    model = folds[0] if folds else model  # a bagged ensemble: its first fold holds the members, shaped alike
    estimator = model[-1] if hasattr(model, "steps") else model
    members = dict(getattr(estimator, "estimators", None) or [])
    member = members.get(f"trial_{int(trial_id)}")
    entry = next((m for m in card.get("members") or [] if int(m.get("trial_id", -1)) == int(trial_id)), None)
    if member is None or entry is None:
        raise AutoMLInputError(f"Trial {trial_id} is not a member of this ensemble",
                               f"choose one of {', '.join(str(m.get('trial_id')) for m in card.get('members') or [])}")
    steps = list(member.steps) if hasattr(member, "steps") else [("model", member)]
    pipeline = Pipeline([*model.steps[:-1], *steps]) if hasattr(model, "steps") else Pipeline(steps)
    validation = {**(card.get("validation") or {}), "score": entry.get("validation_score")}
    return pipeline, {**card, "members": [], "best_model": entry.get("family"), "best_trial_id": int(trial_id),
                      "hyperparameters": entry.get("hyperparameters") or {}, "validation": validation}


def _import_order(line: str) -> tuple[int, str]:
    return (0 if line.startswith("import ") else 1, line)


def _plan(card: dict[str, Any]) -> dict[str, Any]:
    """The validation the search used, resolved to plain settings (kind, amount, test split)."""
    from ..prepare.folds import auto_rule
    config = card.get("config") or {}
    strategy = (card.get("validation") or {}).get("strategy", "")
    if strategy.startswith("the validation file"):
        return {"kind": "file", "amount": None}
    n = int(card.get("n_training_rows") or 0)
    kind, amount, _ = auto_rule(n)
    if config.get("validation") == "cv" or (config.get("validation") == "auto" and config.get("cv_folds")):
        kind, amount = "cv", config.get("cv_folds") or 5
    elif config.get("validation") == "holdout" or (config.get("validation") == "auto" and config.get("holdout_fraction")):
        kind, amount = "holdout", config.get("holdout_fraction") or 0.1
    if config.get("group_column"):
        raise AutoMLInputError("Generated code does not reproduce grouped validation yet", "")
    return {"kind": kind, "amount": amount}


def _constants(card: dict[str, Any], plan: dict[str, Any]) -> str:
    config = card.get("config") or {}
    classes = card.get("classes")
    pos = classes.index(card.get("positive_class")) if classes and card.get("task") == "binary" else 1
    values = {
        "TARGET": card.get("target"), "TASK": card.get("task"), "CLASSES": classes, "POS": pos,
        "SEED": card.get("seed", 0), "METRIC": card.get("metric"),
        "EXPECTED_SCORE": (card.get("validation") or {}).get("score"),
        "VALIDATION": plan["kind"], "VALIDATION_AMOUNT": plan["amount"], "TEST_SIZE": config.get("test_size"),
        "EXCLUDED": list(config.get("exclude_columns") or []), "INPUT_COLUMNS": card.get("input_columns"),
        # Boosting (LightGBM, XGBoost, CatBoost): the search fit each fold with this cap and early stopping
        # after this many rounds without improvement; the final model uses the mean best round count,
        # already in its n_estimators (CatBoost: iterations).
        "EARLY_STOPPING_CAP": MAX_BOOSTING_ROUNDS, "EARLY_STOPPING_ROUNDS": EARLY_STOPPING_ROUNDS,
    }
    writer = _Writer()
    return "\n".join(f"{k} = {writer.value(v)}" for k, v in values.items())


def _docstring(card: dict[str, Any]) -> str:
    """The script's docstring. The target (a user string) is not in it: it appears only as the TARGET
    literal below, written with repr; the rest comes from the card, and is escaped all the same so a
    tampered card cannot close the docstring (quotes and backslashes become escapes)."""
    score = (card.get("validation") or {}).get("score")
    text = (f"Train the {card.get('best_model')} model predicting the column TARGET ({card.get('task')}), "
            f"as AutoML Studio did.\n\nGenerated by AutoML Studio. Uses public packages only (requirements.txt).\n"
            f"Validation: {(card.get('validation') or {}).get('strategy', '')}.\n"
            f"Recorded validation {card.get('metric')}: {score}.\n"
            + ("The saved model pools the fold models of this validation (a bag); this script refits the "
               "same configuration on all rows instead.\n" if card.get("final_model") == "bag" else "")
            + "\n"
            f"Usage: python train.py TRAINING_DATA.csv [--validation-data FILE] [--out model.joblib]")
    return text.replace("\\", "\\\\").replace('"', '\\"')


_TEMPLATE = '''"""{doc}
"""
{imports}
from scipy.stats import spearmanr
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score, f1_score,
                             log_loss, mean_absolute_error, mean_absolute_percentage_error, precision_score,
                             r2_score, recall_score, roc_auc_score, root_mean_squared_error)
from sklearn.model_selection import (KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit,
                                     train_test_split)

{constants}
{helpers}

def build_pipeline():
    """The featurization and model, with the hyperparameters and seed the search chose."""
    return {pipeline}


def read(path):
    """Read a table as AutoML Studio does: only empty fields are missing (tokens like NA stay text)."""
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)


def features_and_target(df):
    """Rows with a usable target; features as raw columns; class codes (or values) and labels."""
    X = df.drop(columns=[TARGET] + EXCLUDED)[INPUT_COLUMNS]
    labels = df[TARGET]
    if TASK == "regression":
        values = pd.to_numeric(labels, errors="coerce")
        keep = values.notna().to_numpy()
        return X[keep].reset_index(drop=True), values[keep].to_numpy(dtype=float), values[keep].to_numpy(dtype=float)
    # a label as the training data spelled it, else once stripped (a file without the padding)
    lookup = {{str(c): i for i, c in enumerate(CLASSES)}}
    stripped = {{str(c).strip(): i for i, c in reversed(list(enumerate(CLASSES)))}}
    text = labels.astype(str)
    codes = text.map(lookup).fillna(text.str.strip().map(stripped))
    keep = codes.notna().to_numpy()
    classes = np.array(CLASSES, dtype=object)
    codes = codes[keep].to_numpy(dtype=int)
    return X[keep].reset_index(drop=True), codes, classes[codes]


def can_stratify(codes, needed):
    return TASK != "regression" and np.unique(codes, return_counts=True)[1].min() >= needed


def splits(codes, n_validation_rows):
    """(train rows, validation rows) pairs, as the search made them."""
    n = len(codes) - n_validation_rows
    if VALIDATION == "file":
        idx = np.arange(len(codes))
        return [(idx[:n], idx[n:])]
    if VALIDATION == "cv":
        k = int(VALIDATION_AMOUNT)
        cls = StratifiedKFold if can_stratify(codes, k) else KFold
        return list(cls(n_splits=k, shuffle=True, random_state=SEED).split(np.zeros(n), codes))
    cls = StratifiedShuffleSplit if can_stratify(codes, 2) else ShuffleSplit
    return list(cls(n_splits=1, test_size=float(VALIDATION_AMOUNT), random_state=SEED).split(np.zeros(n), codes))


def score(y, prediction):
    """The search's metric ({metric}) of out-of-fold predictions."""
    if TASK == "regression":
        pred = prediction
    else:
        proba = prediction
        pred = proba.argmax(axis=1)
        if proba.shape[1] == 2:
            pred = np.where(proba[:, POS] >= 0.5, POS, 1 - POS)
    return float({metric_expr})


def validate(X, codes, folds):
    """Fit on each fold's training rows and predict its validation rows, exactly as the search did."""
    template = build_pipeline()
    rows = np.concatenate([v for _, v in folds])
    oof = np.zeros((len(rows), len(CLASSES))) if TASK != "regression" else np.zeros(len(rows))
    offset = 0
    for train_idx, val_idx in folds:
        features = clone(template.steps[0][1])
        Xt = features.fit_transform(X.iloc[train_idx], codes[train_idx])
        Xv = features.transform(X.iloc[val_idx])
        for _, step in template.steps[1:-1]:  # densify / scale, fitted on the fold
            step = clone(step)
            Xt = step.fit_transform(Xt)
            Xv = step.transform(Xv)
        model = clone(template.steps[-1][1])
        if type(model).__name__ == "VotingClassifier" and len(model.estimators) == 1:
            # one classifier inside scikit-learn's label encoding; here it learns the codes directly
            model = model.estimators[0][1]
        name = type(model).__name__
        if name.startswith("LGBM"):
            import lightgbm as lgb
            model.set_params(n_estimators=EARLY_STOPPING_CAP)
            model.fit(Xt, codes[train_idx], eval_X=(Xv,), eval_y=(codes[val_idx],),
                      callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False), lgb.log_evaluation(0)])
        elif name.startswith("XGB"):
            model.set_params(n_estimators=EARLY_STOPPING_CAP, early_stopping_rounds=EARLY_STOPPING_ROUNDS)
            model.fit(Xt, codes[train_idx], eval_set=[(Xv, codes[val_idx])], verbose=False)
        elif name.startswith("CatBoost"):
            model.set_params(iterations=EARLY_STOPPING_CAP)
            model.fit(Xt, codes[train_idx], eval_set=(Xv, codes[val_idx]),
                      early_stopping_rounds=EARLY_STOPPING_ROUNDS, verbose=False)
        else:
            model.fit(Xt, codes[train_idx])
        if TASK == "regression":
            oof[offset:offset + len(val_idx)] = model.predict(Xv)
        else:
            oof[offset:offset + len(val_idx), np.asarray(model.classes_, dtype=int)] = model.predict_proba(Xv)
        offset += len(val_idx)
    return score(codes[rows], oof)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the training table (CSV or Parquet), target included")
    parser.add_argument("--validation-data", help="the validation file, if the experiment used one")
    parser.add_argument("--out", default="model.joblib", help="where to save the final model")
    args = parser.parse_args()
    X, codes, labels = features_and_target(read(args.data))
    if TEST_SIZE:  # the test rows were held out before anything else
        keep, _ = train_test_split(np.arange(len(X)), test_size=TEST_SIZE, random_state=SEED,
                                   stratify=codes if can_stratify(codes, 2) else None)
        keep = np.sort(keep)
        X, codes, labels = X.iloc[keep].reset_index(drop=True), codes[keep], labels[keep]
    n_validation = 0
    X_all, codes_all = X, codes
    if VALIDATION == "file":
        if not args.validation_data:
            parser.error("this experiment was validated on a separate file: pass it with --validation-data")
        Xv, cv_codes, _ = features_and_target(read(args.validation_data))
        X_all = pd.concat([X, Xv], ignore_index=True)
        codes_all, n_validation = np.concatenate([codes, cv_codes]), len(Xv)
    validation_score = validate(X_all, codes_all, splits(codes_all, n_validation))
    final = build_pipeline().fit(X, labels)  # all training rows, original labels
    joblib.dump(final, args.out)
    print(json.dumps({{"metric": METRIC, "validation_score": validation_score, "recorded": EXPECTED_SCORE,
                      "model": args.out}}))


if __name__ == "__main__":
    main()
'''
