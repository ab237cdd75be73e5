"""Step 2 -- Task: the column to predict, the kind of prediction (detected, with the reason), positive class."""
from __future__ import annotations

from typing import Any

import streamlit as st

from automl_core.errors import AutoMLInputError
from automl_core.task import prepare_target
from studio.nav import go, step_header
from studio.state import bound, friendly, get_store, load_frame, remember, wizard
from studio.safe import md, show_error

TASKS = ["auto", "binary", "multiclass", "regression", "forecasting"]
TASK_WORDS = {"binary": "Binary classification (two labels)", "multiclass": "Multiclass classification",
              "regression": "Regression (a number)", "forecasting": "Forecasting (future values of a series)"}


@st.cache_data(show_spinner=False, max_entries=32)
def _analyse(dataset_id: str, target: str, task: str, positive: Any) -> dict[str, Any]:
    """The engine's verdict on a target: task and reason, classes, positive class, notes.

    Cached per choice: checking a target on a large table takes a moment, and reruns are frequent.
    """
    df = load_frame(dataset_id)
    prepared = prepare_target(df, target, task, positive)
    return {"task": prepared.task.value, "reason": prepared.reason, "classes": prepared.classes,
            "positive": prepared.positive_class, "notes": prepared.notes}


def _forecasting_fields(columns: list[str], target: str) -> None:
    w = wizard()
    st.markdown("**Forecasting settings**")
    c1, c2, c3 = st.columns(3)
    others = [c for c in columns if c != target]
    bound("time_column")
    remember("time_column", c1.selectbox("Time column", others, key="time_column", placeholder="Choose"))
    bound("horizon", 12)
    remember("horizon", c2.number_input("Horizon (rows ahead)", min_value=1, max_value=10_000, step=1, key="horizon"))
    bound("series_id", [])
    remember("series_id", c3.multiselect("Series id columns", others, key="series_id",
                                         help="Columns that tell separate series apart (e.g. store, product)."))
    st.warning("Forecasting is not supported by the training engine yet, so an experiment cannot start with it. "
               "Fix: choose regression to predict the value from the other columns, or come back after the "
               "forecasting release.", icon=":material/construction:")
    w["ready"] = False


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
    columns = [c["name"] for c in meta["schema"]]
    st.caption(f"Dataset: **{md(meta['name'])}** · {meta['n_rows']:,} rows × {meta['n_cols']} columns")

    hint = w.get("target_hint")
    bound("target", hint if hint in columns else None)
    target = remember("target", st.selectbox(
        "What do you want to predict? (target column)", columns, key="target", placeholder="Choose the target column",
        help="The column whose values the model will learn to predict."))
    w["ready"] = False
    if target is None:
        st.info("Pick the column you want to predict to continue.", icon=":material/target:")
        return

    with st.spinner("Checking the target…"):
        try:
            detected = _analyse(dataset_id, target, "auto", None)
        except AutoMLInputError as exc:
            show_error(exc)
            return
    bound("task", "auto")
    task = remember("task", st.selectbox(
        "Kind of prediction (task)", TASKS, key="task",
        format_func=lambda t: f"Auto-detect: {TASK_WORDS[detected['task']]}" if t == "auto" else TASK_WORDS[t]))
    st.info(f"Detected **{detected['task']}** because {md(detected['reason'])}.", icon=":material/auto_awesome:")
    if task == "forecasting":
        _forecasting_fields(columns, target)
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
    if st.button("Next: configure the run →", type="primary", key="to_configure"):
        go("Configure")


friendly(main)
