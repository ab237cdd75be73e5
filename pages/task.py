"""Step 2 -- Task: the column to predict, the kind of prediction (detected, with the reason), positive class."""
from __future__ import annotations

from typing import Any

import streamlit as st

from automl_core.config import IMAGE_TASKS, TASKS
from automl_core.errors import AutoMLInputError
from automl_core.forecast.leaks import LEAK_NOTE
from automl_core.prepare.multilabel import (indicator_target, lists_from_indicators, multilabel_verdict,
                                            zero_one_columns)
from automl_core.prepare.task import prepare_target
from studio import forecast_settings, image_data, text_view
from studio.nav import go, step_header
from studio.state import bound, friendly, get_store, load_frame, remember, wizard
from studio.safe import md, show_error

TASK_WORDS = {"binary": "Binary classification (two labels)", "multiclass": "Multiclass classification",
              "regression": "Regression (a number)", "forecasting": "Forecasting (future values of a series)",
              "multilabel": "Multi-label classification (a list of labels per row)"}


@st.cache_data(show_spinner=False, max_entries=8)
def _flag_columns(dataset_id: str) -> list[str]:
    """The dataset's 0/1 columns (found once per dataset: a wide table has many columns to look at)."""
    return zero_one_columns(load_frame(dataset_id))


def _more_targets(dataset_id: str, target: str) -> list[str]:
    """Other 0/1 columns predicted with a 0/1 target: together one multi-label target (issue #22)."""
    w = wizard()
    flags = _flag_columns(dataset_id)
    options = [c for c in flags if c != target]
    if target not in flags or not options:
        w["more_targets"] = []
        return []
    kept = [c for c in (st.session_state.get("more_targets") or w.get("more_targets") or []) if c in options]
    st.session_state["more_targets"] = kept  # choices for another target may not be options here
    return remember("more_targets", st.multiselect(
        "Also predict these 0/1 columns with it (one multi-label model)", options, key="more_targets",
        placeholder="None: predict the target alone",
        help="Several yes/no columns, such as one column per tag, learned together: each row's labels are the "
             "columns holding 1."))


@st.cache_data(show_spinner=False, max_entries=32)
def _analyse(dataset_id: str, target: str, task: str, positive: Any) -> dict[str, Any]:
    """The engine's verdict on a target: task and reason, classes, positive class, notes.

    Cached per choice: checking a target on a large table takes a moment, and reruns are frequent.
    """
    df = load_frame(dataset_id)
    names = indicator_target(target, df.columns)
    if names is not None:  # several 0/1 columns: one multi-label target (issue #22)
        df, target, note = lists_from_indicators(df, names)
        task = "multilabel" if task == "auto" else task
        if task != "multilabel":
            raise AutoMLInputError(f"Several target columns make a multilabel task, not {task}",
                                   "choose Auto-detect or Multi-label as the task, or predict one column")
        listed = multilabel_verdict(df[target], task)
        return {**listed, "reason": "several 0/1 columns were chosen as the target", "notes": [note, *listed["notes"]]}
    listed = multilabel_verdict(df[target], task)  # a list of labels per row: the multi-label task (issue #22)
    if listed is not None:
        return listed
    prepared = prepare_target(df, target, task, positive)
    return {"task": prepared.task.value, "reason": prepared.reason, "classes": prepared.classes,
            "positive": prepared.positive_class, "notes": prepared.notes}


def _forecasting_fields(dataset_id: str, columns: list[str], target: str) -> None:
    """Time column, horizon, series ids, frequency and holidays; the engine checks them at once."""
    w = wizard()
    st.markdown("**Forecasting settings**")
    others = [c for c in columns if c != target]
    c1, c2, c3 = st.columns(3)
    bound("time_column")
    remember("time_column", c1.selectbox("Time column", others, key="time_column", placeholder="Choose",
                                         help="The column with the dates or times."))
    bound("horizon", 12)
    remember("horizon", c2.number_input("Horizon (rows ahead)", min_value=1, max_value=10_000, step=1, key="horizon",
                                        help="How many future time steps to forecast."))
    bound("series_id", [])
    remember("series_id", c3.multiselect("Series id columns", others, key="series_id",
                                         help="Columns that tell separate series apart (e.g. store, product)."))
    c4, c5, c6 = st.columns(3)
    bound("time_parts", [])
    remember("time_parts", c4.multiselect(
        "…or assemble the time from columns", others, key="time_parts",
        help="e.g. year, month, day, hour columns (or a date column and an hour column); overrides the time column."))
    bound("frequency", "")
    remember("frequency", c5.text_input("Frequency (empty = detect)", key="frequency", placeholder="e.g. h, D, W-MON, MS",
                                        help="A pandas frequency alias; leave empty to detect it from the data."))
    bound("country", "")
    remember("country", c6.selectbox("Holidays of country", ["", *forecast_settings.countries()], key="country",
                                     format_func=lambda c: c or "none",
                                     help="Adds a public-holiday feature from the holidays package."))
    time_column = ",".join(w.get("time_parts") or []) or w.get("time_column")
    if not time_column:
        st.info("Choose the time column to continue.", icon=":material/schedule:")
        return
    try:
        found = _check_forecast(dataset_id, target, time_column, int(w["horizon"]), tuple(w.get("series_id") or ()),
                                (w.get("frequency") or "").strip() or None, w.get("country") or None,
                                tuple(w.get("exclude_columns") or ()))
    except AutoMLInputError as exc:
        show_error(exc)
        return
    st.success(md(found["summary"]), icon=":material/timeline:")
    for note in found["notes"]:  # notes name columns and series: text, never markup
        if note.startswith(LEAK_NOTE):  # a forecast that reads the answer: said loudly
            st.warning(md(note), icon=":material/warning:")
        else:
            st.caption(f"• {md(note)}")
    w.update(task_effective="forecasting", task_reason="chosen by you", classes=None, positive_class=None, ready=True,
             forecast_time_column=time_column, forecast_series_rows=found["series_rows"],
             forecast_leaks=found["leaks"])
    if st.button("Next: configure the run →", type="primary", key="to_configure"):
        go("Configure")


@st.cache_data(show_spinner="Checking the time series…", max_entries=16)
def _check_forecast(dataset_id: str, target: str, time_column: str, horizon: int, series: tuple[str, ...],
                    frequency: str | None, country: str | None, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The engine's reading of the forecasting setup (frequency, series, fix-ups), cached per choice."""
    return forecast_settings.check(load_frame(dataset_id), target, time_column, horizon, series, frequency, country,
                                   exclude)


def main() -> None:
    step_header("Task")
    w = wizard()
    dataset_id = w.get("dataset_id")
    if not dataset_id:
        st.info("Choose a dataset first.", icon=":material/table_view:")
        st.page_link("pages/data.py", label="Go to Data", icon=":material/arrow_back:")
        return
    meta = get_store().get_dataset(dataset_id)
    if meta is None:
        st.warning("The chosen dataset is no longer in the store. Fix: pick another one on the Data page.")
        return
    if image_data.is_image_dataset(meta):  # images: the task is image classification, the label is the class
        st.caption(f"Dataset: **{md(meta['name'])}** · {meta['n_rows']:,} images")
        if image_data.image_task(get_store(), meta) and st.button("Next: configure the run →", type="primary",
                                                                  key="to_configure"):
            go("Configure")
        return
    columns = [c["name"] for c in meta["schema"]]
    st.caption(f"Dataset: **{md(meta['name'])}** · {meta['n_rows']:,} rows × {meta['n_cols']} columns")

    joined = w.get("target") or ""
    if joined not in columns and "," in joined and all(p in columns for p in joined.split(",")):
        # a cloned multi-label run of several 0/1 columns: the first is the target, the others go with it
        w["target"], w["more_targets"] = joined.split(",")[0], joined.split(",")[1:]
        for key in ("target", "more_targets"):
            st.session_state.pop(key, None)
    hint = w.get("target_hint")
    bound("target", hint if hint in columns else None)
    target = remember("target", st.selectbox(
        "What do you want to predict? (target column)", columns, key="target", placeholder="Choose the target column",
        help="The column whose values the model will learn to predict."))
    w["ready"] = False
    if target is None:
        st.info("Pick the column you want to predict to continue.", icon=":material/target:")
        return

    target = ",".join([target, *_more_targets(dataset_id, target)])
    with st.spinner("Checking the target…"):
        try:
            detected = _analyse(dataset_id, target, "auto", None)
        except AutoMLInputError as exc:
            show_error(exc)
            return
    bound("task", "auto")
    task = remember("task", st.selectbox(
        "Kind of prediction (task)", [t for t in TASKS if t not in IMAGE_TASKS], key="task",
        format_func=lambda t: f"Auto-detect: {TASK_WORDS[detected['task']]}" if t == "auto" else TASK_WORDS[t]))
    # A chosen task that differs from the detected one is said as such: "Detected regression" under
    # "Forecasting" read as if the studio would train a regression.
    chosen = f" You chose **{task}**: that is what trains." if task not in ("auto", detected["task"]) else ""
    st.info(f"Detected **{detected['task']}** because {md(detected['reason'])}.{chosen}", icon=":material/auto_awesome:")
    if task == "forecasting":
        _forecasting_fields(dataset_id, columns, target)
        return

    effective = detected["task"] if task == "auto" else task
    positive = None
    if effective == "binary":
        try:
            classes = _analyse(dataset_id, target, "binary", None)
        except AutoMLInputError as exc:
            show_error(exc)
            return
        options = classes["classes"]
        if w.get("positive_class") not in options:
            w["positive_class"] = classes["positive"]
        if st.session_state.get("positive_class", classes["positive"]) not in options:
            st.session_state["positive_class"] = classes["positive"]  # stale choice from another target
        bound("positive_class", classes["positive"])
        positive = remember("positive_class", st.selectbox(
            "Positive class", options, key="positive_class",
            help="The label that counts as a 'hit' for metrics such as precision and recall."))
    try:
        verdict = _analyse(dataset_id, target, task, positive)
    except AutoMLInputError as exc:
        show_error(exc)
        return
    w.update(task_effective=verdict["task"], task_reason=verdict["reason"], classes=verdict["classes"],
             ready=True)
    if effective != "binary":
        w["positive_class"] = None
    for note in verdict["notes"]:
        st.caption(f"• {md(note)}")
    if verdict["classes"]:
        st.caption(f"Classes: {md(', '.join(map(str, verdict['classes'][:20])))}")
    if verdict["task"] == "multilabel":
        with st.expander("The labels: counts, labels per row, the most common pairs"):
            frame = load_frame(dataset_id)
            names = indicator_target(target, frame.columns)
            if names is not None:  # several 0/1 columns: profiled as the label lists they make
                frame = lists_from_indicators(frame, names)[0]
            text_view.label_lists_section(dataset_id, frame, [target])
    text_view.text_rule_note(meta["columns"], w.get("column_roles", {}), w.get("exclude_columns", []), target)
    if st.button("Next: configure the run →", type="primary", key="to_configure"):
        go("Configure")


friendly(main)
