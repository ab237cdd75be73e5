"""The forecasting sections of the Results page (issue #5): a forecast chart per series (with a
selector for many series), error by step ahead, and forecasting the next horizon from new data."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from automl_core.errors import AutoMLInputError
from automl_core.experiment import FORECAST_CHART
from studio.forecast_charts import error_by_step_chart, forecast_chart
from studio.safe import md, show_error


@st.cache_data(show_spinner=False, max_entries=8)
def _chart_frame(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)


def forecast_results(folder: Path, summary: dict[str, Any]) -> None:
    """Forecast chart of a chosen series and the validation error by step ahead."""
    info = summary.get("forecast") or {}
    path = folder / FORECAST_CHART
    st.subheader("Forecast")
    st.caption(f"Frequency {info.get('freq')} · horizon {info.get('horizon')} · {info.get('n_series', 1):,} series · "
               f"intervals: {info.get('conformal', '')}")
    if not path.is_file():
        st.info("This experiment saved no forecast to draw.")
        return
    frame = _chart_frame(str(path), path.stat().st_mtime)
    series = sorted(frame["unique_id"].astype(str).unique())
    chosen = st.selectbox(f"Series ({len(series):,})", series, key="forecast_series") if len(series) > 1 else series[0]
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.plotly_chart(forecast_chart(frame, chosen, summary.get("target") or "value"), width="stretch",
                        key="forecast_chart")
    with right:
        steps = info.get("error_by_step") or []
        metric = st.radio("Error by step ahead", ["mae", "smape", "mase"], horizontal=True, key="forecast_step_metric")
        st.plotly_chart(error_by_step_chart(steps, metric), width="stretch", key="forecast_error_chart")


def forecast_predict(model_path: Path, load: Callable[[str, float], tuple[Any, dict]]) -> None:
    """Upload the latest data: the next horizon after it, per series, with intervals, to download."""
    from automl_core.forecast.bundle import forecast_latest
    from automl_core.export.predict import safe_csv
    from automl_core.io.reader import read_table

    st.markdown("**Forecast the next horizon** from the latest data")
    upload = st.file_uploader("Latest data: rows with the target extend the history; rows without it give future "
                              "values of the known-in-future columns", key="predict_upload",
                              type=["csv", "tsv", "txt", "parquet", "xlsx", "xls", "jsonl", "ndjson", "json"])
    if upload is None:
        st.caption("Without an upload the chart above shows the next horizon after the training data.")
        return
    try:
        bundle, _ = load(str(model_path), model_path.stat().st_mtime)
        with st.spinner("Forecasting…"):
            table, notes = forecast_latest(bundle, read_table(upload.getvalue(), name=upload.name))
    except AutoMLInputError as exc:
        show_error(exc)
        return
    for note in notes:  # notes name series and columns: text, never markup
        st.caption(f"• {md(note)}")
    st.dataframe(table.head(500), height=260, hide_index=True)
    st.download_button("Download the forecast (CSV)", safe_csv(table).to_csv(index=False).encode(),
                       file_name=f"forecast-{upload.name.rsplit('.', 1)[0]}.csv", mime="text/csv",
                       key="download_predictions", type="primary", icon=":material/download:", on_click="ignore")
