"""The Results page's "understand the model" sections: guardrails, evaluation charts (with the
binary threshold explorer and honest test scores) and explanations. Also the guardrails list of
the Train page. Everything is read from the experiment's stored files; nothing is trained here.

Widget keys (stable, for tests): ``eval_split``, ``eval_model``, ``eval_threshold``, ``compare_with``,
``explain_engineered``, ``explain_class``, ``explain_column``, ``explain_row``; containers
``guardrails``, ``evaluation``, ``explanations``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from automl_core.understand import evaluation as ev
from automl_core.understand.explain import EXPLANATION_FILE, load_explanation
from automl_core.models.metrics import METRICS
from automl_core.understand.predictions import FILES as PREDICTION_FILES, Predictions, load_predictions
from automl_core.prepare.schema import Task
from studio import eval_charts as charts
from studio import live
from studio.label_set_view import is_label_set_run
from studio.safe import md

_LABEL_SETS_NOTE = "A multi-label model is {}: see Scores per label below."

_ICONS = {"Passed": ":green[:material/check_circle:]", "Done": ":blue[:material/task_alt:]",
          "Alerted": ":orange[:material/warning:]"}


# ------------------------------------------------------------------------------------ guardrails

def guardrails_section(exp: dict[str, Any], *, expanded: bool = False) -> None:
    """Every stored guardrail (data, then model) with its verdict, in a collapsed expander; an alert's
    finding is also one line above it. The list opened on every alert (overfitting alerts on most boosted
    models) and its ten entries pushed the charts below the fold."""
    stored = (exp.get("summary") or {}).get("guardrails") or {}
    checks = [*stored.get("data", []), *stored.get("model", [])]
    with st.container(key="guardrails"):
        if not checks:
            st.caption(live.no_guardrails_text(exp))
            return
        counts = {s: sum(g["status"] == s for g in checks) for s in ("Alerted", "Done", "Passed")}
        for g in checks:
            if g["status"] == "Alerted":  # findings quote column names and class labels: text, never markup
                st.markdown(f"{_ICONS['Alerted']} **{md(g['name'])}**: {md(g['finding'])}")
        title = f"Guardrails: {counts['Alerted']} alerted · {counts['Done']} done · {counts['Passed']} passed"
        with st.expander(title, expanded=expanded, icon=":material/shield:"):
            for g in sorted(checks, key=lambda g: ("Alerted", "Done", "Passed").index(g["status"])):
                st.markdown(f"{_ICONS.get(g['status'], '')} **{md(g['name'])}** — {g['status']}  \n"
                            f"{md(g['finding'])}  \n:gray[{md(g['action'])}]")


# ------------------------------------------------------------------------------------ predictions

@st.cache_data(show_spinner=False, max_entries=16)
def _load(folder: str, split: str, stamp: float) -> Predictions | None:
    """One stored prediction set (``stamp``: the file's mtime, so a rewritten file is read again)."""
    return load_predictions(folder, split)


def _stamp(folder: Path, split: str) -> float:
    path = folder / PREDICTION_FILES[split]
    return path.stat().st_mtime if path.is_file() else 0.0


# ------------------------------------------------------------------------------------ evaluation

def evaluation_section(store: Any, experiment_id: str, exp: dict[str, Any], trials: pd.DataFrame) -> None:
    """Charts of one model's validation (out-of-fold) or test predictions, and its honest score."""
    card = exp.get("summary") or {}
    folder = store.artifact_dir(experiment_id)
    sets = {s: p for s in ("validation", "test") if (p := _load(str(folder), s, _stamp(folder, s))) is not None}
    with st.container(key="evaluation"):
        if not sets:
            # a multi-label run (walked in Chromium) said "trained before they were kept" when brand new
            st.caption(_LABEL_SETS_NOTE.format("evaluated per label") if is_label_set_run(exp) else
                       "No stored predictions for this experiment (it was trained before they were kept).")
            return
        labels = {"validation": "Validation (out-of-fold)", "test": "Test data"}
        split = st.radio("Predictions", list(sets), format_func=labels.get, horizontal=True, key="eval_split",
                         index=len(sets) - 1)
        p = sets[split]
        families = dict(zip(trials["trial_id"].astype(int), trials["family"])) if not trials.empty else {}
        name = {t: f"#{t} {live.family_label(families.get(t, 'model'), exp.get('task'))}" for t in p.models}
        ids = sorted(p.models, key=lambda t: (t != card.get("best_trial_id"), t))
        trial = st.selectbox("Model", ids, format_func=name.get, key="eval_model")
        task = Task(p.task)
        if task.is_classification:
            _classification(p, trial, card)
        else:
            _regression(p, trial)
        _honest(p, trial, ids, name, exp, split)


def _pos_index(p: Predictions, card: dict[str, Any]) -> int:
    names = [str(c) for c in p.classes]
    pos = card.get("positive_class")
    return names.index(str(pos)) if pos is not None and str(pos) in names else 1


def _classification(p: Predictions, trial: int, card: dict[str, Any]) -> None:
    y, proba, classes = p.y_true, p.models[trial], p.classes
    pos = _pos_index(p, card)
    names = ["Confusion matrix", "ROC", "Precision-recall", "Calibration", "Gains & lift", "Per class"]
    binary = len(classes) == 2
    tabs = st.tabs((["Threshold explorer"] if binary else []) + names)
    if binary:
        with tabs[0]:
            st.fragment(_threshold_explorer)(y, proba, classes, pos)
        tabs = tabs[1:]
    with tabs[0]:
        normalized = st.toggle("Shares of each true class", key="eval_normalized")
        st.plotly_chart(charts.confusion_chart(ev.confusion(y, proba, classes, pos_index=pos), normalized),
                        width="stretch", key="chart_confusion")
    with tabs[1]:
        st.plotly_chart(charts.roc_chart(ev.roc_curves(y, proba, classes, pos_index=pos)), width="stretch", key="chart_roc")
    with tabs[2]:
        st.plotly_chart(charts.pr_chart(ev.pr_curves(y, proba, classes, pos_index=pos)), width="stretch", key="chart_pr")
    with tabs[3]:
        st.plotly_chart(charts.calibration_chart(ev.calibration(y, proba, classes, pos_index=pos)), width="stretch",
                        key="chart_calibration")
        st.caption("Points on the diagonal: a predicted 30 % really is right 30 % of the time.")
    with tabs[4]:
        g = ev.gains(y, proba, classes, pos_index=pos)
        left, right = st.columns(2)
        left.plotly_chart(charts.gains_chart(g, "gain"), width="stretch", key="chart_gains")
        right.plotly_chart(charts.gains_chart(g, "lift"), width="stretch", key="chart_lift")
    with tabs[5]:
        table = ev.per_class(y, proba, classes, pos_index=pos)
        st.plotly_chart(charts.per_class_chart(table), width="stretch", key="chart_per_class")
        st.dataframe(table.round(4), hide_index=True)


def _threshold_explorer(y: np.ndarray, proba: np.ndarray, classes: list[Any], pos: int) -> None:
    """Move the threshold: the confusion matrix and the metrics follow (a fragment: only it reruns)."""
    sweep = ev.threshold_sweep(y, proba, pos_index=pos)
    threshold = st.slider(f"Predict '{classes[pos]}' when its probability is at least", 0.0, 1.0, 0.5, 0.01,
                          key="eval_threshold")
    row = sweep.iloc[int(round(threshold * 100))]
    cols = st.columns(5)
    for col, metric in zip(cols, ("precision", "recall", "f1", "accuracy", "balanced_accuracy")):
        col.metric(metric.replace("_", " "), f"{row[metric]:.3f}")
    left, right = st.columns(2)
    left.plotly_chart(charts.confusion_chart(ev.confusion(y, proba, classes, pos_index=pos, threshold=threshold)),
                      width="stretch", key="chart_threshold_confusion")
    right.plotly_chart(charts.threshold_chart(sweep, threshold), width="stretch", key="chart_threshold")
    st.caption(f"At {threshold:.2f}: {int(row.tp):,} of {int(row.tp + row.fn):,} '{md(classes[pos])}' rows found, "
               f"{int(row.fp):,} false alarms. The saved model predicts labels at 0.50; use predict_proba "
               "with your own threshold to apply another.")


def _regression(p: Predictions, trial: int) -> None:
    y, pred = np.asarray(p.y_true, dtype=float), p.models[trial]
    points = ev.regression_points(y, pred)
    tabs = st.tabs(["Predicted vs true", "Residuals", "Error by decile"])
    with tabs[0]:
        st.plotly_chart(charts.predicted_vs_true_chart(points), width="stretch", key="chart_pred_true")
    with tabs[1]:
        left, right = st.columns(2)
        left.plotly_chart(charts.residual_histogram(points), width="stretch", key="chart_residual_hist")
        right.plotly_chart(charts.residuals_vs_predicted_chart(points), width="stretch", key="chart_residuals")
    with tabs[2]:
        table = ev.error_by_decile(y, pred)
        st.plotly_chart(charts.error_by_decile_chart(table), width="stretch", key="chart_deciles")
        st.dataframe(table.round(4), hide_index=True)


@st.cache_data(show_spinner=False, max_entries=32)
def _interval(y: np.ndarray, pred: np.ndarray, metric: str, task: str, pos: int) -> ev.Interval:
    return ev.bootstrap_interval(y, pred, ev.scorer(METRICS[metric], Task(task), pos))


@st.cache_data(show_spinner=False, max_entries=32)
def _compare(y: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, task: str, pos: int,
             name_a: str, name_b: str) -> ev.Comparison:
    m = METRICS[metric]
    return ev.paired_bootstrap(y, a, b, m, ev.scorer(m, Task(task), pos), name_a=name_a, name_b=name_b)


def _honest(p: Predictions, trial: int, ids: list[int], name: dict[int, str], exp: dict[str, Any], split: str) -> None:
    metric = exp.get("metric")
    if metric not in METRICS:
        return
    card = exp.get("summary") or {}
    y = p.y_true
    pos = _pos_index(p, card) if p.classes else 1
    interval = _interval(y, p.models[trial], metric, p.task, pos)
    st.markdown(f"**How sure is this score?** {name[trial]} on the {split} rows: {interval.words(metric)}.")
    others = [t for t in ids if t != trial]
    if not others:
        st.caption(f"Only this model has predictions on the {split} rows; the validation predictions hold "
                   "the best models of the search, to compare with each other.")
        return
    other = st.selectbox("Is it really better than", others, format_func=name.get, key="compare_with")
    result = _compare(y, p.models[trial], p.models[other], metric, p.task, pos, name[trial], name[other])
    (st.success if result.a_better is not None else st.info)(result.verdict, icon=":material/balance:")


# ------------------------------------------------------------------------------------ explanations

@st.cache_data(show_spinner=False, max_entries=8)
def _explanation(folder: str, stamp: float):
    return load_explanation(folder)


def explanations_section(store: Any, experiment_id: str, exp: dict[str, Any]) -> None:
    """Global importance (raw columns or engineered features), beeswarm, dependence, one row's waterfall."""
    folder = store.artifact_dir(experiment_id)
    meta = folder / EXPLANATION_FILE
    with st.container(key="explanations"):
        ex = _explanation(str(folder), meta.stat().st_mtime) if meta.is_file() else None
        if ex is None:
            stage = (exp.get("summary") or {}).get("explanations") or {}
            error = stage.get("error")
            if error:
                st.warning(f"The explanations could not be computed: {md(error)}", icon=":material/warning:")
            elif stage.get("skipped"):
                st.caption(f"No explanations: {md(stage['skipped'])}.")
            elif is_label_set_run(exp):
                st.caption(_LABEL_SETS_NOTE.format("not explained yet"))
            else:
                st.caption("Explanations are computed right after training; this experiment has none.")
            return
        measure = (f"importance is the {md(ex.output)}" if ex.method.startswith("permutation")
                   else f"values are in {md(ex.output)}")
        # the method is an id-like phrase ("tree SHAP (LightGBM, exact)"): said as a sentence, not a lowercase start
        st.caption(f"Explained by {md(ex.method)} on {ex.n_rows:,} sampled training rows ({ex.seconds:.1f} s); "
                   f"{measure}. {md(ex.note)}")
        axis = charts.importance_axis(ex.method, ex.output)
        engineered = st.toggle("Engineered features (one-hot levels, date parts, …) instead of raw columns",
                               key="explain_engineered", disabled=ex.feature_importance.empty)
        if engineered:
            st.plotly_chart(charts.importance_chart(ex.feature_importance, "feature", axis=axis), width="stretch", key="chart_importance")
        else:
            st.plotly_chart(charts.importance_chart(ex.importance, "column", axis=axis), width="stretch", key="chart_importance")
        if ex.values is None or ex.rows is None:
            return
        values, base, output = ex.values, ex.base_value[0], ex.output
        if values.ndim == 3:
            k = st.selectbox("Explain the class", list(range(len(ex.classes))), format_func=lambda i: ex.classes[i],
                             key="explain_class")
            values, base, output = values[:, k, :], ex.base_value[k], output.replace("each class", f"'{ex.classes[k]}'")
        order = list(ex.importance["column"])
        st.markdown("**How each column pushes predictions** (one dot per sampled row)")
        st.plotly_chart(charts.beeswarm_chart(values, ex.rows, order), width="stretch", key="chart_beeswarm")
        left, right = st.columns(2, gap="medium")
        with left:
            column = st.selectbox("Dependence on column", order, key="explain_column")
            st.plotly_chart(charts.dependence_chart(values, ex.rows, column), width="stretch", key="chart_dependence")
        with right:
            row = int(st.number_input(f"Explain row (0 to {len(ex.rows) - 1} of the sample)", 0, len(ex.rows) - 1, 0,
                                      key="explain_row"))
            st.plotly_chart(charts.waterfall_chart(values[row], ex.rows.iloc[row], base, ex.columns, output),
                            width="stretch", key="chart_waterfall")
