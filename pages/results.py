"""Step 5 -- Results: every model of an experiment, side-by-side comparison, details, downloads, predictions."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from automl_core.errors import AutoMLInputError
from automl_core.metrics import METRICS
from automl_core.predict import load_model, predict_frame, safe_csv
from automl_core.reader import read_table
from studio import forecast_view, live
from studio.charts import compare_metrics_chart, score_vs_time_chart
from studio.downloads import artifact_paths, model_downloads
from studio.nav import step_header
from studio.state import friendly, get_store, wizard


@st.cache_resource(show_spinner=False, max_entries=4)
def _model(path: str, mtime: float) -> tuple[Any, dict[str, Any]]:
    """A saved model and its card, loaded once (mtime in the key: a re-saved file reloads)."""
    return load_model(path)


def _choose_experiment() -> str | None:
    history = get_store().list_experiments()
    done = history[history["status"].isin(("completed", "stopped"))]
    if done.empty:
        return None
    ids = list(done["experiment_id"])
    wanted = st.query_params.get("experiment") or wizard().get("experiment_id")
    if "results_experiment" not in st.session_state or st.session_state["results_experiment"] not in ids:
        st.session_state["results_experiment"] = wanted if wanted in ids else ids[0]
    names = {r.experiment_id: f"{r.name} · {r.best_model or ''} · {r.created_at:%Y-%m-%d %H:%M}" for r in done.itertuples()}
    chosen = st.selectbox("Experiment", ids, format_func=names.get, key="results_experiment")
    st.query_params["experiment"] = chosen
    return chosen


def _scores(exp: dict[str, Any]) -> None:
    summary = exp.get("summary") or {}
    test = summary.get("test") or {}
    metric = exp.get("metric")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Best model", live.family_label(exp.get("best_model") or "—"))
    c2.metric(f"Validation {metric}", "—" if exp.get("best_score") is None else f"{exp['best_score']:.4f}",
              help=(summary.get("validation") or {}).get("strategy"))
    if test.get("score") is not None:
        c3.metric(f"Test {metric}", f"{test['score']:.4f}", help=f"{test.get('n_rows', 0):,} test rows, scored once")
    else:
        c3.metric(f"Test {metric}", "no test data", help="Choose test data on the Configure step to get one.")
    c4.metric("Trials", f"{exp.get('n_trials') or 0}", help=summary.get("stopped_by"))
    if test.get("metrics"):
        with st.expander("All test metrics"):
            st.dataframe(pd.DataFrame([test["metrics"]]).T.rename(columns={0: "test"}))


def _leaderboard(trials: pd.DataFrame, metric: str) -> list[int]:
    """All models, best first; returns the trial ids picked for comparison."""
    board = live.leaderboard(trials, metric)
    st.markdown("**All models** — tick rows to compare them")
    event = st.dataframe(board, hide_index=True, height=live.table_height(len(board), 320), key="results_leaderboard", on_select="rerun",
                         selection_mode="multi-row", column_config={
                             metric: st.column_config.NumberColumn(format="%.4f"),
                             "fit_seconds": st.column_config.NumberColumn("fit s", format="%.1f")})
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    picked = [int(board.iloc[i]["trial_id"]) for i in rows if i < len(board)]
    if not picked and not board.empty:
        picked = [int(t) for t in board["trial_id"].head(min(3, len(board)))]
        st.caption("Comparing the top models; tick rows above to choose others.")
    return picked


def _compare(trials: pd.DataFrame, metric: str, picked: list[int]) -> None:
    board = live.leaderboard(trials, metric)
    if board.empty:
        return
    chosen = trials[trials["trial_id"].isin(picked)]
    metric_cols = [c for c in trials.columns if c in METRICS]
    labels = pd.Index([f"#{t} {live.family_label(f)}" for t, f in zip(chosen["trial_id"], chosen["family"])])
    table = chosen.set_axis(labels, axis=0)
    table = table[[c for c in [metric, *metric_cols] if c in table.columns]].loc[:, lambda d: ~d.columns.duplicated()]
    left, right = st.columns(2, gap="medium")
    with left:
        st.markdown("**Metrics of the selected models**")
        st.dataframe(table.T.round(4), height=live.table_height(len(table.columns), 320))
    with right:
        st.markdown(f"**{metric} against fit time**")
        st.plotly_chart(score_vs_time_chart(board, metric, picked), width="stretch", key="time_chart")
    if not table.empty:
        st.markdown("**Metrics side by side**")
        st.plotly_chart(compare_metrics_chart(table), width="stretch", key="compare_chart")


def _details(exp: dict[str, Any], trials: pd.DataFrame, picked: list[int]) -> None:
    summary = exp.get("summary") or {}
    ids = [int(t) for t in trials["trial_id"]]
    default = int(exp.get("best_trial_id") or (picked[0] if picked else ids[0]))
    trial_id = st.selectbox("Model details for trial", ids, index=ids.index(default) if default in ids else 0,
                            format_func=lambda t: f"#{t} {live.family_label(trials.set_index('trial_id').loc[t, 'family'])}",
                            key="details_trial")
    row = trials.set_index("trial_id").loc[trial_id]
    c1, c2 = st.columns(2, gap="medium")
    with c1:
        st.markdown("**Hyperparameters**")
        st.json(row["params"] or {}, expanded=True)
        st.markdown("**Timings**")
        st.write(f"fit {row['fit_seconds'] or 0:.2f} s · predict {row['predict_seconds'] or 0:.2f} s · "
                 f"finished {row['finished_at'] or 0:.0f} s after start")
        if row.get("note"):
            st.caption(row["note"])
    with c2:
        st.markdown("**Featurization**" + (" (of the saved model)" if trial_id == exp.get("best_trial_id") else ""))
        feats = summary.get("featurization") or summary.get("features") or []
        if feats:
            st.dataframe(pd.DataFrame(feats), hide_index=True, height=live.table_height(len(feats), 300))
        else:
            st.caption("No featurization summary recorded.")
        for note in summary.get("notes") or []:
            st.caption(f"• {note}")


def _predict(experiment_id: str, task: str | None = None) -> None:
    files = artifact_paths(get_store(), experiment_id)
    if "model" not in files:
        return
    if task == "forecasting":  # issue #5: the next horizon from the latest data
        forecast_view.forecast_predict(files["model"], _model)
        return
    st.markdown("**Predict new data** with this model")
    upload = st.file_uploader("Table to score (the training columns; the target may be absent)",
                              type=["csv", "tsv", "txt", "parquet", "xlsx", "xls", "jsonl", "ndjson", "json"],
                              key="predict_upload")
    if upload is None:
        return
    try:
        model, card = _model(str(files["model"]), files["model"].stat().st_mtime)
        with st.spinner("Scoring…"):
            df = read_table(upload.getvalue(), name=upload.name)
            scored = pd.concat([df, predict_frame(model, card, df)], axis=1)
    except AutoMLInputError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    st.dataframe(scored.head(100), height=240)
    st.download_button("Download predictions (CSV)", safe_csv(scored).to_csv(index=False).encode(),
                       file_name=f"predictions-{upload.name.rsplit('.', 1)[0]}.csv", mime="text/csv",
                       key="download_predictions", type="primary", icon=":material/download:", on_click="ignore")


def main() -> None:
    step_header("Results")
    experiment_id = _choose_experiment()
    if experiment_id is None:
        st.info("No finished experiment yet. Results appear here once a run completes or is stopped.",
                icon=":material/leaderboard:")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    store = get_store()
    exp = store.get_experiment(experiment_id)
    trials = store.trials(experiment_id)
    metric = exp.get("metric") or "score"
    _scores(exp)
    model_downloads(store, experiment_id)
    if trials.empty:
        st.info("This experiment recorded no trials.")
        return
    picked = _leaderboard(trials, metric)
    if exp.get("task") == "forecasting":  # issue #5: forecast chart per series, error by step ahead
        forecast_view.forecast_results(store.artifact_dir(experiment_id), exp.get("summary") or {})
    st.subheader("Compare")
    _compare(trials, metric, picked)
    st.subheader("Model details")
    _details(exp, trials, picked)
    st.divider()
    _predict(experiment_id, exp.get("task"))


friendly(main)
