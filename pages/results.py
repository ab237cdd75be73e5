"""Step 5 -- Results: every model of an experiment, side-by-side comparison, details, downloads (predicting is step 6)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from automl_core.export.predict import safe_csv
from studio import compare, forecast_view, image_examples_view, image_view, label_set_view, live, text_view
from studio.charts import metric_panels_chart, score_vs_time_chart
from studio.compare import hyperparameter_table, metrics_table
from studio.compare_view import curves_of_selected
from studio.downloads import model_downloads
from studio.nav import step_header
from studio.scoring import choose_experiment
from studio.safe import md
from studio.state import EMPTY_CELL, friendly, get_store
from studio.wording import metric_help, metric_label, number
from studio.understand import evaluation_section, explanations_section, guardrails_section


def _scores(exp: dict[str, Any], trials: Any) -> None:
    summary = exp.get("summary") or {}
    test = summary.get("test") or {}
    metric = exp.get("metric")
    name = metric_label(metric)
    c1, c2, c3, c4 = st.columns(4)
    best = live.family_label(exp.get("best_model") or "—", exp.get("task"))
    c1.metric("Best model", live.short_label(best), help=best)
    c2.metric(f"Validation {name}", number(exp.get("best_score")),
              help=f"{metric_help(metric)} {(summary.get('validation') or {}).get('strategy') or ''}".strip())
    if test.get("score") is not None:
        c3.metric(f"Test {name}", number(test["score"]), help=f"{test.get('n_rows', 0):,} test rows, scored once")
    else:
        c3.metric(f"Test {name}", "no test data", help="Choose test data on the Configure step to get one.")
    ok = 0 if trials.empty else int((trials["status"] == "ok").sum())  # as the Train page counts them
    c4.metric("Trials done", f"{ok}", help=" · ".join(x for x in (f"{len(trials)} including failed ones",
                                                                   summary.get("stopped_by")) if x))
    if summary.get("choice_note"):
        # The leaderboard below may rank an ensemble first while a single model was saved: say why here,
        # not only in the Train page's event list.
        st.caption(f"Why this model: {md(summary['choice_note'])}.")
    if test.get("metrics"):
        with st.expander("All test metrics"):
            st.dataframe(metrics_table(test["metrics"]), placeholder=EMPTY_CELL, hide_index=True, width="stretch")


def _leaderboard(trials: pd.DataFrame, metric: str, task: str | None) -> list[int]:
    """All models, best first; returns the trial ids picked for comparison."""
    board = live.leaderboard(trials, metric, task=task)
    st.markdown("**All models** — tick rows to compare them")
    event = st.dataframe(board, placeholder=EMPTY_CELL, hide_index=True, height=live.table_height(len(board), 320),
                         key="results_leaderboard", on_select="rerun", selection_mode="multi-row",
                         column_order=[c for c in board.columns if c != "trial_id"],  # the model name holds it
                         column_config=live.leaderboard_columns(board))
    # The table's own CSV export is hidden (it keeps formulas); this one goes through safe_csv.
    st.download_button("Download leaderboard (CSV)", safe_csv(board).to_csv(index=False).encode(),
                       file_name="leaderboard.csv", mime="text/csv", key="download_leaderboard",
                       icon=":material/download:", on_click="ignore")
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    picked = [int(board.iloc[i]["trial_id"]) for i in rows if i < len(board)]
    if not picked and not board.empty:
        picked = [int(t) for t in board["trial_id"].head(min(3, len(board)))]
        st.caption("Comparing the top models; tick rows above to choose others.")
    return picked


def _compare(store: Any, experiment_id: str, exp: dict[str, Any], trials: pd.DataFrame, metric: str,
             picked: list[int]) -> None:
    board = live.leaderboard(trials, metric, task=exp.get("task"))
    table = compare.comparison_table(trials, metric, picked)
    if board.empty or table.empty:
        return
    st.markdown("**Metrics of the selected models** (best first)")
    st.dataframe(compare.formatted(table), placeholder=EMPTY_CELL, hide_index=True, width="stretch",
                 column_config={metric_label(c): st.column_config.TextColumn(metric_label(c), help=metric_help(c))
                                for c in compare.metric_columns(trials, metric)})
    metrics = [metric_label(c) for c in compare.metric_columns(trials, metric)]
    st.plotly_chart(metric_panels_chart(table, metrics), width="stretch", key="compare_chart")
    with st.expander("What the metrics mean"):
        for c in compare.metric_columns(trials, metric):
            st.markdown(f"**{metric_label(c)}** — {metric_help(c)}")
    curves_of_selected(store, experiment_id, exp, trials, picked)
    st.markdown(f"**{metric_label(metric)} against fit time**")
    st.plotly_chart(score_vs_time_chart(board, metric, picked), width="stretch", key="time_chart")


def _details(exp: dict[str, Any], trials: pd.DataFrame, picked: list[int]) -> None:
    summary = exp.get("summary") or {}
    ids = [int(t) for t in trials["trial_id"]]
    default = int(exp.get("best_trial_id") or (picked[0] if picked else ids[0]))
    families = trials.set_index("trial_id")["family"]
    trial_id = st.selectbox("Model details for trial", ids, index=ids.index(default) if default in ids else 0,
                            format_func=lambda t: compare.model_name(t, families.loc[t], short=False),
                            key="details_trial")
    row = trials.set_index("trial_id").loc[trial_id]
    c1, c2 = st.columns(2, gap="medium")
    with c1:
        st.markdown("**Hyperparameters**")
        params = hyperparameter_table(row["params"])
        if params.empty:
            st.caption("This model has no hyperparameters to tune.")
        else:
            st.dataframe(params, placeholder=EMPTY_CELL, hide_index=True, width="stretch",
                         height=live.table_height(len(params), 320))
        st.markdown("**Timings**")
        st.write(f"fit {row['fit_seconds'] or 0:.2f} s · predict {row['predict_seconds'] or 0:.2f} s · "
                 f"finished {row['finished_at'] or 0:.0f} s after start")
        if row.get("note"):
            st.caption(row["note"])
    with c2:
        st.markdown("**Featurization**" + (" (of the saved model)" if trial_id == exp.get("best_trial_id") else ""))
        feats = summary.get("featurization") or summary.get("features") or []
        if feats:
            st.dataframe(pd.DataFrame(feats), placeholder=EMPTY_CELL, hide_index=True, height=live.table_height(len(feats), 300))
        else:
            st.caption("No featurization summary recorded.")
        for note in summary.get("notes") or []:
            st.caption(f"• {md(note)}")


def _understand(store: Any, experiment_id: str, exp: dict[str, Any], trials: pd.DataFrame) -> None:
    """Evaluation charts and explanations (issue #6), drawn by studio.understand."""
    st.subheader("Evaluation")
    evaluation_section(store, experiment_id, exp, trials)
    st.subheader("Explanations")
    explanations_section(store, experiment_id, exp)
    text_view.text_results(store, experiment_id, exp)
    image_view.image_results(store, experiment_id, exp)
    image_examples_view.image_examples(store, experiment_id, exp)
    label_set_view.label_set_results(store, experiment_id, exp)


def main() -> None:
    step_header("Results")
    experiment_id = choose_experiment("results_experiment")
    if experiment_id is None:
        st.info("No finished experiment yet. Results appear here once a run completes or is stopped.",
                icon=":material/leaderboard:")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    store = get_store()
    exp = store.get_experiment(experiment_id)
    trials = store.trials(experiment_id)
    metric = exp.get("metric") or "score"
    _scores(exp, trials)
    guardrails_section(exp)
    model_downloads(store, experiment_id)
    if trials.empty:
        st.info("This experiment recorded no trials.")
        return
    picked = _leaderboard(trials, metric, exp.get("task"))
    if exp.get("task") == "forecasting":  # issue #5: forecast chart per series, error by step ahead
        forecast_view.forecast_results(store.artifact_dir(experiment_id), exp.get("summary") or {})
    st.subheader("Compare")
    _compare(store, experiment_id, exp, trials, metric, picked)
    if exp.get("task") != "forecasting":
        _understand(store, experiment_id, exp, trials)
    st.subheader("Model details")
    _details(exp, trials, picked)
    st.divider()
    st.page_link("pages/predict.py", label="Predict new data with this model, export ONNX, view its training code",
                 icon=":material/online_prediction:", query_params={"experiment": experiment_id})


friendly(main)
