"""Step 6 -- Experiments: the history from the store; open, clone ("edit and submit"), delete, compare."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from automl_core.errors import AutoMLInputError
from studio import image_data, live
from studio.charts import experiments_chart
from studio.history import COMPARE_FIRST, compared, dataset_labels, history_table, on_dataset, run_labels
from studio.wording import column_format, metric_label
from studio.nav import go, step_header
from studio.settings import wizard_from_experiment
from studio.state import EMPTY_CELL, friendly, get_jobs, get_store, reset_wizard, wizard
from studio.safe import md, show_error


def _clone(exp: dict[str, Any]) -> None:
    """Load an experiment's settings into the wizard and go to Configure to edit and submit them."""
    if exp.get("task") == "image_classification":
        values = image_data.clone_values(exp, get_store().get_dataset(exp.get("dataset_id") or ""))
        if values is None:
            st.info("This image experiment's images are not in the store (it was trained from the command line). "
                    "Fix: upload its .zip of images on the Data page to train it here.", icon=":material/image:")
            return
        reset_wizard(**values)
        for key in list(values):  # widget keys left from an earlier visit would win over the clone
            st.session_state.pop(key, None)
        go("Task")
    try:
        values = wizard_from_experiment(exp)
    except AutoMLInputError as exc:
        show_error(exc)
        return
    if get_store().get_dataset(values["dataset_id"] or "") is None:
        st.error("The experiment's dataset is no longer in the store. Fix: upload it again and configure from scratch.")
        return
    task = exp.get("task") if exp.get("task") in ("binary", "multiclass", "regression") else None
    reset_wizard(**values, task_effective=task or values["task"], ready=task is not None)
    for key in list(values):  # widget keys left from an earlier visit would win over the clone
        st.session_state.pop(key, None)
    go("Task" if task is None else "Configure")


def _actions(exp: dict[str, Any]) -> None:
    experiment_id = exp["experiment_id"]
    running = exp["status"] in live.LIVE
    c1, c2, c3, _ = st.columns([1, 1, 1, 3])
    if c1.button("Open", key="open_experiment", icon=":material/open_in_new:", type="primary"):
        wizard()["experiment_id"] = experiment_id
        go("Train" if exp["status"] in (*live.LIVE, "interrupted", "failed") else "Results", experiment=experiment_id)
    if c2.button("Clone", key="clone_experiment", icon=":material/content_copy:",
                 help="Copy its settings into the wizard to edit and start a new run."):
        _clone(exp)
    if c3.button("Delete…", key="delete_experiment", icon=":material/delete:", disabled=running,
                 help="Stop it first." if running else "Delete its trials and files."):
        st.session_state["confirm_delete_id"] = experiment_id
    if st.session_state.get("confirm_delete_id") == experiment_id:
        st.warning(f"Delete **{md(exp.get('name'))}** ({experiment_id}) with its {exp.get('n_trials') or 0} trials and "
                   "model files? This cannot be undone.")
        y, n, _ = st.columns([1, 1, 4])
        if y.button("Yes, delete", key="confirm_delete", type="primary"):
            if get_jobs().is_running(experiment_id):
                st.error("It is still running. Fix: stop it on the Train page first.")
                return
            get_store().delete_experiment(experiment_id)
            st.session_state.pop("confirm_delete_id", None)
            if wizard().get("experiment_id") == experiment_id:
                wizard().pop("experiment_id")
            st.query_params.pop("experiment", None)
            st.toast("Experiment deleted.")
            st.rerun()
        if n.button("Cancel", key="cancel_delete"):
            st.session_state.pop("confirm_delete_id", None)
            st.rerun()


def _compare_on_dataset(history: pd.DataFrame) -> None:
    st.subheader("Compare experiments on the same dataset")
    scored = history[history["best_score"].notna()]
    if scored.empty:
        st.caption("Finished experiments will be compared here.")
        return
    labels = dataset_labels(scored)
    dataset = st.selectbox("Dataset", list(labels), format_func=labels.__getitem__, key="compare_dataset")
    same = on_dataset(scored, dataset)
    names = run_labels(same)
    if len(names) < 2:
        st.caption("Only one finished experiment on this dataset: run another (Clone above) to compare them.")
        return
    # the pick is kept per dataset: switching datasets and back keeps what was chosen there
    picked = st.multiselect("Experiments to compare", list(names), default=list(names)[:COMPARE_FIRST],
                            format_func=names.__getitem__, key=f"compare_experiments_{dataset}",
                            help="Choose two or more finished experiments on this dataset.")
    if len(picked) < 2:
        st.caption("Choose at least two experiments to compare them.")
        return
    for metric, frame in compared(same, picked).groupby("metric", sort=False):
        better = "higher" if live.greater_is_better(metric) else "lower"
        st.markdown(f"**Best {metric_label(metric)} per experiment** ({better} is better)")
        st.plotly_chart(experiments_chart(frame.iloc[::-1], metric_label(metric)), width="stretch",
                        key=f"exp_chart_{metric}")


def main() -> None:
    step_header("Experiments")
    history = get_store().list_experiments()
    if history.empty:
        st.info("No experiments yet. They appear here once you start training.", icon=":material/history:")
        st.page_link("pages/data.py", label="Start with your data", icon=":material/table_view:")
        return
    table = history_table(history)
    st.caption(f"{len(table)} experiment(s) in the store. Select a row to open, clone or delete it.")
    event = st.dataframe(table, placeholder=EMPTY_CELL, hide_index=True, key="experiments_table", on_select="rerun",
                         selection_mode="single-row", height=min(38 + 35 * len(table), 360),
                         column_config={"best score": st.column_config.NumberColumn(format=column_format(table["best score"])),
                                        "test score": st.column_config.NumberColumn(format=column_format(table["test score"]))})
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    chosen = table.iloc[rows[0]]["id"] if rows else None
    if chosen is None:
        chosen = st.selectbox("…or choose an experiment", list(table["id"]), index=None, key="experiment_pick",
                              format_func=lambda i: f"{table.set_index('id').loc[i, 'name']} · {i}",
                              placeholder="Choose an experiment")
    if chosen is not None:
        exp = get_store().get_experiment(str(chosen))
        if exp is not None:
            _actions(exp)
    st.divider()
    _compare_on_dataset(history)


friendly(main)
