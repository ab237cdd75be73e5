"""The forecasting sections of the Results page (issue #5): a forecast chart per series (with a
selector for many series), error by step ahead, and forecasting the next horizon from new data."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from automl_core.errors import AutoMLInputError
from automl_core.experiment import FORECAST_CHART
from studio.forecast_charts import error_by_step_chart, forecast_chart, predict_chart_frame
from studio.safe import md, show_error
from studio.wording import metric_label


@st.cache_data(show_spinner=False, max_entries=8)
def _chart_frame(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)


def forecast_results(folder: Path, summary: dict[str, Any]) -> None:
    """Forecast chart of a chosen series and the validation error by step ahead."""
    info = summary.get("forecast") or {}
    path = folder / FORECAST_CHART
    if summary.get("partitions"):
        _partitions(summary)
    st.subheader("Forecast")
    st.caption(f"Frequency {info.get('freq')} · horizon {info.get('horizon')} · {info.get('n_series', 1):,} series · "
               f"intervals: {info.get('conformal', '')}")
    if not path.is_file():
        st.info("This experiment saved no forecast to draw.")
        return
    frame = _chart_frame(str(path), path.stat().st_mtime)
    series = sorted(frame["unique_id"].astype(str).unique())
    chosen = st.selectbox(f"Series ({len(series):,})", series, key="forecast_series") if len(series) > 1 else series[0]
    # Full width: in a 3/5 column a long history squeezed the forecast into a sliver.
    st.plotly_chart(forecast_chart(frame, chosen, summary.get("target") or "value"), width="stretch",
                    key="forecast_chart")
    steps = info.get("error_by_step") or []
    metric = st.radio("Error by step ahead", ["mae", "smape", "mase"], horizontal=True, key="forecast_step_metric",
                      format_func=metric_label)
    st.plotly_chart(error_by_step_chart(steps, metric), width="stretch", key="forecast_error_chart")


def _partitions(summary: dict[str, Any]) -> None:
    """Many models: one row per partition (its best model, scores, trials, seconds)."""
    from studio.live import family_label
    board = pd.DataFrame(summary["partitions"])
    st.subheader(f"Partitions ({len(board):,})")
    st.caption(f"One forecasting model per partition of {', '.join(summary.get('partition_by') or [])}; the saved "
               "model forecasts each row with its partition's model. The validation score above pools every "
               "partition's rolling-origin windows.")
    board["best_model"] = [family_label(m) if isinstance(m, str) else "no model" for m in board["best_model"]]
    from studio.wording import metric_label
    metric = metric_label(summary.get("metric") or "score")
    board = board.rename(columns={"validation_score": f"validation {metric}", "test_score": f"test {metric}",
                                  "best_model": "best model", "n_trials": "trials", "best_trial_id": "best trial"})
    empty = [c for c in board.columns if c in (f"test {metric}", "error") and not board[c].notna().any()
             or c == "error" and not board[c].fillna("").astype(bool).any()]
    shown = [c for c in board.columns if c != "stopped_by" and c not in empty]
    with st.container(key="partition_results"):  # the key names the container (tests find the table by it)
        st.dataframe(board[shown], hide_index=True, width="stretch")


def forecast_predict(model_path: Path, load: Callable[[str, float], tuple[Any, dict]]) -> None:
    """Upload the latest data: the next horizon after it, per series, with intervals, drawn and to download.

    Without an upload the chart shows the next horizon after the training data.
    """
    from automl_core.forecast.partition_bundle import forecast_latest, next_horizon  # either format
    from automl_core.export.predict import safe_csv
    from automl_core.io.reader import read_table

    st.markdown("**Forecast the next horizon** from the latest data")
    upload = st.file_uploader("Latest data: rows with the target extend the history; rows without it give future "
                              "values of the known-in-future columns", key="predict_upload",
                              type=["csv", "tsv", "txt", "parquet", "xlsx", "xls", "jsonl", "ndjson", "json"])
    bundle, _ = load(str(model_path), model_path.stat().st_mtime)
    df = None
    try:
        with st.spinner("Forecasting…"):
            if upload is None:  # computed once per model file: statistical models can take seconds
                key = ("predict_next_horizon", str(model_path), model_path.stat().st_mtime)
                if st.session_state.get("predict_next_horizon_key") != key:
                    st.session_state.update(predict_next_horizon_key=key,
                                            predict_next_horizon=next_horizon(bundle, None))
                table, notes = st.session_state["predict_next_horizon"], []
            else:
                df = read_table(upload.getvalue(), name=upload.name)
                table, notes = forecast_latest(bundle, df)
    except AutoMLInputError as exc:
        show_error(exc)
        return
    for note in notes:  # notes name series and columns: text, never markup
        st.caption(f"• {md(note)}")
    frame = predict_chart_frame(bundle, table, df)
    series = sorted(frame["unique_id"].unique())
    chosen = st.selectbox(f"Series ({len(series):,})", series, key="predict_forecast_series") if len(series) > 1 \
        else series[0]
    st.plotly_chart(forecast_chart(frame, chosen, bundle.get("target") or "value"), width="stretch",
                    key="predict_forecast_chart")
    if upload is None:
        st.caption("The next horizon after the training data. Upload the latest data to forecast from there.")
    # the numbers, not only the chart: the next horizon is what most people came for
    st.dataframe(table.head(500), height=260, hide_index=True)
    name = "next-horizon" if upload is None else upload.name.rsplit(".", 1)[0]
    st.download_button("Download the forecast (CSV)", safe_csv(table).to_csv(index=False).encode(),
                       file_name=f"forecast-{name}.csv", mime="text/csv",
                       key="download_predictions", type="primary", icon=":material/download:", on_click="ignore")
