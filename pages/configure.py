"""Step 3 -- Configure: metric, exit criteria, validation, test data, models, featurization; then Start."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import pandas as pd
import streamlit as st

from automl_core.errors import AutoMLInputError
from automl_core.prepare.featurize import TRANSFORMS
from automl_core.models.metrics import DEFAULTS, metrics_for
from automl_core.models.families import FAMILIES
from automl_core.prepare.schema import Task
from automl_core.prepare.folds import auto_rule
from studio import datasets as ds
from studio import forecast_settings, image_data
from studio.estimates import default_budget, measured_rate, past_trials, trials_hint
from studio.wording import metric_help, metric_label
from studio.nav import go, step_header
from studio.settings import build_spec, summary_rows
from studio.state import EMPTY_CELL, bound, friendly, get_jobs, get_store, remember, url_choices, wizard
from studio.safe import md, show_error


def _widget(kind: Any, label: str, key: str, default: Any, **kwargs: Any) -> Any:
    """A widget whose value is kept in the wizard (so it survives leaving the page)."""
    bound(key, default)
    return remember(key, kind(label, key=key, **kwargs))


def _metric(task: Task) -> str:
    names = metrics_for(task)
    current = wizard().get("metric")
    if current not in names:  # another task was chosen since: fall back to its default
        wizard()["metric"] = DEFAULTS[task]
        st.session_state.pop("metric", None)
    metric = _widget(st.selectbox, "Primary metric", "metric", DEFAULTS[task], options=names,
                     format_func=metric_label, help="The score models are ranked by.")
    st.caption(metric_help(metric))
    return metric


def _exit_criteria(n_rows: int, n_cols: int) -> None:
    w = wizard()
    c1, c2 = st.columns(2)
    with c1:
        budget = _widget(st.number_input, "Time budget (seconds)", "time_budget", default_budget(n_rows, n_cols),
                         min_value=0, max_value=7 * 24 * 3600, step=10,
                         help="The whole run, final refit included. 0 means no time limit (then set max trials).")
        _widget(st.number_input, "Max trials (0 = no limit)", "max_trials", 0, min_value=0, max_value=100_000, step=1)
    with c2:
        use = _widget(st.checkbox, "Stop at a score", "use_threshold", False,
                      help="Stop as soon as a model reaches the score threshold.")
        if use:
            _widget(st.number_input, "Score threshold", "score_threshold", 0.9, format="%.4f")
        _widget(st.number_input, "Early termination (0 = off)", "early_stop_trials", 0, min_value=0,
                max_value=10_000, step=1, help="Stop after this many trials in a row without improvement.")
    if budget:
        runs = past_trials(get_store(), w["dataset_id"], w["task_effective"])
        st.caption(trials_hint(budget, measured_rate(runs)))


def _table_upload(label: str, key: str, id_key: str) -> None:
    """Upload an extra table (validation or test file) and keep it in the store."""
    upload = st.file_uploader(label, type=ds.UPLOAD_TYPES, key=key)
    w = wizard()
    if upload is not None and st.session_state.get(f"{key}_loaded") != upload.file_id:
        try:
            df = ds.parse(upload.getvalue(), upload.name, {})
            w[id_key] = get_store().add_dataset(upload.name, df, source=f"upload:{upload.name}")
            st.session_state[f"{key}_loaded"] = upload.file_id
        except AutoMLInputError as exc:
            show_error(exc)
            return
    if w.get(id_key):
        meta = get_store().get_dataset(w[id_key])
        if meta:
            st.caption(f"Using **{md(meta['name'])}** ({meta['n_rows']:,} rows).")


def _validation(n_rows: int) -> None:
    kind, amount, reason = auto_rule(n_rows)
    modes = {"auto": "Auto", "cv": "k-fold cross-validation", "holdout": "Holdout", "file": "Validation file"}
    mode = _widget(st.radio, "Validation", "validation_mode", "auto", options=list(modes),
                   format_func=modes.get, horizontal=True)
    if mode == "auto":
        st.caption(f"Auto picks {'%d-fold cross-validation' % amount if kind == 'cv' else f'a {amount:.0%} holdout'}: {reason}.")
    elif mode == "cv":
        _widget(st.slider, "Folds", "cv_folds", 5, min_value=2, max_value=20)
    elif mode == "holdout":
        _widget(st.slider, "Holdout %", "holdout_pct", 20, min_value=5, max_value=50, step=5)
    else:
        _table_upload("Validation table (same columns, target included)", "validation_upload", "validation_dataset_id")


def _test_data() -> None:
    modes = {"none": "None", "fraction": "Hold out a fraction", "file": "Test file"}
    mode = _widget(st.radio, "Test data (scored once, after the search)", "test_mode", "none",
                   options=list(modes), format_func=modes.get, horizontal=True)
    if mode == "fraction":
        _widget(st.slider, "Test %", "test_pct", 10, min_value=5, max_value=50, step=5)
    elif mode == "file":
        _table_upload("Test table (same columns, target included)", "test_upload", "test_dataset_id")


def _forecast_validation() -> None:
    """Rolling-origin windows at the end of each series (forecasting's validation), and a test file."""
    w = wizard()
    c1, c2 = st.columns(2)
    _widget(c1.number_input, "Rolling-origin windows (0 = automatic)", "forecast_folds", forecast_settings.AUTO_FOLDS,
            min_value=0, max_value=50, step=1, help=forecast_settings.folds_help())
    _widget(c2.number_input, "Step between origins (0 = the horizon)", "forecast_step", 0, min_value=0,
            max_value=10_000, step=1)
    st.caption(f"Each window forecasts {w.get('horizon')} step(s) from an origin; the model never sees the window.")
    meta = get_store().get_dataset(w["dataset_id"]) or {"schema": []}
    _widget(st.multiselect, "Many models: one model per partition of (optional)", "partition_by", [],
            options=forecast_settings.partition_options([c["name"] for c in meta["schema"]], w),
            help=forecast_settings.partition_help())
    options = forecast_settings.exogenous_options([c["name"] for c in meta["schema"]], w)
    for key in ("past_only_columns", "future_columns"):  # columns of another dataset or target: dropped
        if any(c not in options for c in w.get(key) or ()):
            w[key] = [c for c in w.get(key) or () if c in options]
            st.session_state.pop(key, None)
    c3, c4 = st.columns(2)
    _widget(c3.multiselect, "Past-only columns (known up to the forecast origin)", "past_only_columns", [],
            options=options, help=forecast_settings.PAST_ONLY_HELP)
    future = _widget(c4.multiselect, "Known-future columns (override the leak check)", "future_columns", [],
                     options=options, help=forecast_settings.FUTURE_HELP)
    chosen = {*future, *(w.get("past_only_columns") or ()), *(w.get("exclude_columns") or ())}
    leaks = [c for c in w.get("forecast_leaks") or () if c not in chosen]
    if leaks:  # the Task page's leak check: said again where the fix is
        st.warning(md(forecast_settings.leak_warning(leaks)), icon=":material/warning:")
    modes = {"none": "None", "file": "Test file (the rows right after the training data)"}
    if w.get("test_mode") not in modes:
        w["test_mode"] = "none"
        st.session_state.pop("test_mode", None)
    mode = _widget(st.radio, "Test data (forecast and scored once, after the search)", "test_mode", "none",
                   options=list(modes), format_func=modes.get, horizontal=True)
    if mode == "file":
        _table_upload("Test table (future rows, target included)", "test_upload", "test_dataset_id")


def _models_and_features(meta: dict[str, Any], forecasting: bool = False) -> None:
    labels = forecast_settings.model_labels() if forecasting else {name: f.label for name, f in FAMILIES.items()}
    for key in ("allowed_models", "blocked_models"):  # choices made for the other kind of task
        if any(m not in labels for m in wizard().get(key) or ()):
            wizard()[key] = []
            st.session_state.pop(key, None)
    c1, c2 = st.columns(2)
    _widget(c1.multiselect, "Allowed models (empty = all)", "allowed_models", [], options=list(labels),
            format_func=labels.get)
    _widget(c2.multiselect, "Blocked models", "blocked_models", [], options=list(labels), format_func=labels.get)
    modes = {"auto": "Auto", "off": "Off (minimal)", "custom": "Per column"}
    # Forecasting chooses its own features (lags, windows, calendar, holidays): see the Results page.
    mode = "auto" if forecasting else _widget(
        st.radio, "Featurization", "featurization_mode", "auto", options=list(modes), format_func=modes.get,
        horizontal=True, help="Auto: one-hot, target encoding, dates, text. Off: numbers and category codes only.")
    if mode == "custom":
        w = wizard()
        target = w.get("target")
        chosen = dict(w.get("featurization_columns") or {})
        rows = [{"column": c["name"], "role": c["role"], "transform": chosen.get(c["name"], "auto")}
                for c in meta["columns"] if c["name"] != target and c["name"] not in w.get("exclude_columns", [])]
        edited = st.data_editor(pd.DataFrame(rows), placeholder=EMPTY_CELL, key="featurization_editor", hide_index=True, disabled=["column", "role"],
                                column_config={"transform": st.column_config.SelectboxColumn(
                                    "Transform", options=["auto", *TRANSFORMS], required=True)})
        w["featurization_columns"] = {r.column: r.transform for r in edited.itertuples()}
    w = wizard()
    _widget(st.toggle, "Ensembles: also try blending the best models", "ensembles", True,
            help="As the last steps: a weighted average of the best models (Caruana selection) and a stacked "
                 "model; each gets a leaderboard row and is saved only if it scores best on validation.")
    cores = os.cpu_count() or 1
    _widget(st.number_input, f"Cores to use (0 = all {cores})", "n_jobs", 0, min_value=0,
            max_value=cores, step=1, help="How many cores the search may use.")
    # Expert settings: the defaults suit almost every run, so they stay folded away.
    with st.expander("Advanced", icon=":material/settings:",
                     expanded=bool(w.get("dask_scheduler") or w.get("max_concurrent_trials") or w.get("seed"))):
        c1, c2 = st.columns(2)
        _widget(c1.number_input, "Trials side by side (0 = auto)", "max_concurrent_trials", 0, min_value=0,
                max_value=64, step=1, help="Auto: one trial per core on small data, one trial on all cores on large data.")
        _widget(c2.number_input, "Random seed", "seed", 0, min_value=0, max_value=2**31 - 1, step=1,
                help="The same seed, data and settings give the same models.")
        _widget(st.text_input, "Dask scheduler (optional)", "dask_scheduler", "", placeholder="tcp://host:8786",
                help="Run the trials on a Dask cluster instead of this machine's cores.")


def _start(task: str, placeholder: str = "") -> None:
    w = wizard()
    _widget(st.text_input, "Experiment name (optional)", "experiment_name", "",
            placeholder=placeholder or f"{w['target']} ({task})")
    try:
        spec = build_spec(w)
    except AutoMLInputError as exc:
        show_error(exc)
        return
    if task == image_data.TASK and not spec.name:  # "label (image_classification)" would say nothing
        spec = dataclasses.replace(spec, name=placeholder)
    st.markdown("**Summary**")
    if task == image_data.TASK:
        rows = image_data.image_summary_rows(spec, w.get("classes"), w.get("metric", ""))
    else:
        rows = summary_rows(spec, task, w.get("metric", ""), w.get("forecast_series_rows"))
    st.dataframe(pd.DataFrame(rows, columns=["Setting", "Value"]), placeholder=EMPTY_CELL,
                 hide_index=True, width="stretch")
    if st.button("Start training", type="primary", key="start_training", icon=":material/play_arrow:"):
        experiment_id = get_jobs().start(get_store(), spec, task=task, metric=w.get("metric"))
        w["experiment_id"] = experiment_id
        go("Train", experiment=experiment_id)


def main() -> None:
    step_header("Configure")
    w = wizard()
    if not w.get("dataset_id") or not w.get("target"):
        st.info("Choose a dataset and a target first.", icon=":material/target:")
        st.page_link("pages/task.py", label="Go to Task", icon=":material/arrow_back:")
        return
    if "ready" not in w:  # restored from the URL after a reload: the Task step checks the target again
        st.info(f"Your dataset and target **{md(w['target'])}** are kept; confirm the kind of prediction on the "
                "Task step to continue.", icon=":material/refresh:")
        st.page_link("pages/task.py", label="Go to Task", icon=":material/arrow_back:",
                     query_params=url_choices())
        return
    if not w.get("ready"):
        st.warning("The task is not ready to train (see the Task step). Fix: choose a task the engine supports.")
        st.page_link("pages/task.py", label="Go to Task", icon=":material/arrow_back:")
        return
    meta = get_store().get_dataset(w["dataset_id"])
    if meta is None:
        st.warning("The chosen dataset is no longer in the store. Fix: pick another one on the Data page.")
        return
    if w["task_effective"] == image_data.TASK:  # images: what applies to them, then Start
        kind = "multi-label image classification" if w.get("task") == "multilabel" else "image classification"
        st.caption(f"**{md(meta['name'])}** · {meta['n_rows']:,} images · {kind}")
        left, right = st.columns(2, gap="large")
        with left:
            st.subheader("Metric and exit criteria")
            image_data.image_configure(w.get("classes"), multilabel=w.get("task") == "multilabel")
        with right:
            st.subheader("Start")
            _start(image_data.TASK, placeholder=f"{meta['name']} (images)")
        return
    task = Task(w["task_effective"])
    st.caption(f"**{md(meta['name'])}** · predict **{md(w['target'])}** · {task.value}")
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Metric and exit criteria")
        _metric(task)
        _exit_criteria(int(meta["n_rows"]), int(meta["n_cols"]) - 1)
        st.subheader("Validation and test")
        if task is Task.FORECASTING:
            _forecast_validation()
        else:
            _validation(int(meta["n_rows"]))
            _test_data()
    with right:
        st.subheader("Models and features")
        _models_and_features(meta, task is Task.FORECASTING)
        st.subheader("Start")
        _start(task.value)


friendly(main)
