"""Wizard choices <-> experiment settings.

The wizard keeps plain values in a dict (``studio.state.wizard()``); this module turns them into a
validated :class:`AutoMLConfig` (the one place the studio checks settings, as STYLE.md asks) and
back again when an experiment is cloned. No streamlit here.
"""
from __future__ import annotations

from typing import Any

from automl_core.config import AutoMLConfig
from automl_core.models.families import FAMILIES
from studio import forecast_settings
from studio.jobs import JobSpec, split_config
from studio.wording import metric_label


def _none_if_zero(value: Any) -> Any:
    """Number inputs use 0 / empty for "no limit"; the config wants None for that."""
    return None if value in (None, 0, 0.0) else value


def build_spec(w: dict[str, Any]) -> JobSpec:
    """The experiment to run from the wizard's choices.

    Raises:
        AutoMLInputError: a setting is invalid (the message names it and the fix).
    """
    validation = w.get("validation_mode", "auto")
    test_mode = w.get("test_mode", "none")
    features = w.get("featurization_mode", "auto")
    featurization: str | dict[str, str] = features
    if features == "custom":
        featurization = {c: t for c, t in (w.get("featurization_columns") or {}).items() if t != "auto"} or "auto"
    allowed = tuple(w.get("allowed_models") or ()) or None
    targets = target_columns(w)
    excluded = tuple(c for c in w.get("exclude_columns", ()) if c not in targets)
    roles = {c: r for c, r in (w.get("column_roles") or {}).items() if c not in targets and c not in excluded}
    fields = dict(
        task=w.get("task") or "auto",
        metric=w.get("metric") or "auto",
        time_budget=_none_if_zero(w.get("time_budget")),
        max_trials=_none_if_zero(w.get("max_trials")),
        score_threshold=w.get("score_threshold") if w.get("use_threshold") else None,
        early_stop_trials=_none_if_zero(w.get("early_stop_trials")),
        validation="auto" if validation == "file" else validation,
        cv_folds=int(w.get("cv_folds", 5)) if validation == "cv" else None,
        holdout_fraction=float(w.get("holdout_pct", 20)) / 100 if validation == "holdout" else None,
        test_size=float(w.get("test_pct", 10)) / 100 if test_mode == "fraction" else None,
        allowed_models=allowed,
        blocked_models=tuple(w.get("blocked_models") or ()),
        featurization=featurization,
        column_roles=roles,
        exclude_columns=excluded,
        positive_class=w.get("positive_class") if w.get("task_effective") == "binary" else None,
        ensembles=bool(w.get("ensembles", True)),
        n_jobs=_none_if_zero(w.get("n_jobs")),
        max_concurrent_trials=_none_if_zero(w.get("max_concurrent_trials")),
        dask_scheduler=(w.get("dask_scheduler") or "").strip() or None,
        seed=int(w.get("seed", 0)),
    )
    config = AutoMLConfig(**{**fields, **forecast_settings.config_fields(w)})
    return JobSpec(dataset_id=w["dataset_id"], target=",".join(targets), config=config,
                   test_dataset_id=w.get("test_dataset_id") if test_mode == "file" else None,
                   validation_dataset_id=w.get("validation_dataset_id") if validation == "file" else None,
                   name=(w.get("experiment_name") or "").strip() or None)


def target_columns(w: dict[str, Any]) -> list[str]:
    """The chosen target column, and the 0/1 columns predicted with it (a multi-label target, Task page)."""
    more = [c for c in (w.get("more_targets") or []) if c != w.get("target")]
    return [w["target"], *more] if w.get("target") else []


def summary_rows(spec: JobSpec, task: str, metric: str, series_rows: int | None = None) -> list[tuple[str, str]]:
    """The settings in words, for the summary before Start (``series_rows``: a forecast series' length)."""
    c = spec.config
    limits = [f"{c.time_budget:g} s" if c.time_budget else "no time limit"]
    if c.max_trials:
        limits.append(f"at most {c.max_trials} trials")
    if c.score_threshold is not None:
        limits.append(f"stop at score {c.score_threshold:g}")
    if c.early_stop_trials:
        limits.append(f"stop after {c.early_stop_trials} trials without improvement")
    if spec.validation_dataset_id:
        validation = "a separate validation file"
    elif c.validation == "cv":
        validation = f"{c.cv_folds}-fold cross-validation"
    elif c.validation == "holdout":
        validation = f"{c.holdout_fraction:.0%} holdout"
    else:
        validation = "automatic (by data size)"
    test = ("a separate test file" if spec.test_dataset_id
            else f"{c.test_size:.0%} of the rows held out" if c.test_size else "none")
    # "all" when nothing is chosen (the whole list ran off the summary's cell); chosen ones named as they fit the task
    models = ", ".join(FAMILIES[m].label_for(task) if m in FAMILIES else m
                       for m in (c.allowed_models or FAMILIES) if m not in c.blocked_models)
    if not c.allowed_models:
        models = "all" + (f" but {', '.join(FAMILIES[m].label_for(task) if m in FAMILIES else m for m in c.blocked_models)}"
                          if c.blocked_models else "")
    features = c.featurization if isinstance(c.featurization, str) else f"custom for {len(c.featurization)} column(s)"
    rows = [
        ("Target", spec.target), ("Task", task), ("Primary metric", metric_label(metric)), ("Exit criteria", "; ".join(limits)),
        ("Validation", validation), ("Test data", test), ("Models", models), ("Featurization", features),
        ("Ensembles", "on" if c.ensembles else "off"),
        ("Excluded columns", ", ".join(c.exclude_columns) or "none"),
        ("Role overrides", ", ".join(f"{k}: {v}" for k, v in c.column_roles.items()) or "none"),
        ("Concurrency", (f"{c.n_jobs} core(s)" if c.n_jobs else "all cores")
         + (f", {c.max_concurrent_trials} trial(s) side by side" if c.max_concurrent_trials else "")
         + (f", trials on the Dask cluster {c.dask_scheduler}" if c.dask_scheduler else "")), ("Seed", str(c.seed)),
    ]
    forecasting = dict(forecast_settings.summary_rows(c, series_rows))
    return [(k, forecasting.pop(k, v)) for k, v in rows] + list(forecasting.items())


def wizard_from_experiment(exp: dict[str, Any]) -> dict[str, Any]:
    """Wizard values that reproduce a stored experiment's settings (Clone = edit and submit)."""
    settings, target, extras = split_config(exp.get("config") or {})
    c = AutoMLConfig.from_dict(settings)
    feat = c.featurization
    w: dict[str, Any] = {
        "dataset_id": exp.get("dataset_id"), "target": target, "task": c.task, "metric": c.metric,
        "time_budget": c.time_budget or 0, "max_trials": c.max_trials or 0,
        "use_threshold": c.score_threshold is not None, "score_threshold": c.score_threshold,
        "early_stop_trials": c.early_stop_trials or 0,
        "validation_mode": "file" if extras.get("validation_dataset_id") else c.validation,
        "validation_dataset_id": extras.get("validation_dataset_id"),
        "test_mode": "file" if extras.get("test_dataset_id") else ("fraction" if c.test_size else "none"),
        "test_dataset_id": extras.get("test_dataset_id"),
        "allowed_models": list(c.allowed_models or ()), "blocked_models": list(c.blocked_models),
        "featurization_mode": feat if isinstance(feat, str) else "custom",
        "featurization_columns": {} if isinstance(feat, str) else dict(feat),
        "column_roles": dict(c.column_roles), "exclude_columns": list(c.exclude_columns),
        "positive_class": c.positive_class, "ensembles": c.ensembles, "n_jobs": c.n_jobs or 0, "seed": c.seed,
        "max_concurrent_trials": c.max_concurrent_trials or 0, "dask_scheduler": c.dask_scheduler or "",
        "experiment_name": f"{exp.get('name') or target} (copy)",
    }
    w.update(forecast_settings.wizard_fields(c))
    if c.cv_folds and c.task != "forecasting":
        w["cv_folds"] = c.cv_folds
    if c.holdout_fraction:
        w["holdout_pct"] = round(c.holdout_fraction * 100)
    if c.test_size:
        w["test_pct"] = round(c.test_size * 100)
    return w
