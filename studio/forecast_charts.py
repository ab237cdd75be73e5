"""Plotly figures of a forecasting experiment (issue #5): a series' forecast, error by step ahead."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from studio.charts import _LAYOUT
from studio.wording import metric_label

_BAND = {80: "rgba(31, 119, 180, 0.28)", 95: "rgba(31, 119, 180, 0.14)"}


def forecast_chart(frame: pd.DataFrame, series: str, target: str) -> go.Figure:
    """History, the validation windows' forecasts, the next horizon with its intervals, and the test
    rows' actuals and forecasts, for one series of the experiment's chart frame."""
    part = frame[frame["unique_id"] == series].sort_values("ds")
    fig = go.Figure()
    hist = part[part["part"] == "history"]
    fig.add_trace(go.Scatter(x=hist["ds"], y=hist["y"], mode="lines", name="history", line=dict(color="#444", width=1.4)))
    valid = part[part["part"] == "validation"]
    for fold, g in valid.groupby("fold"):
        fig.add_trace(go.Scatter(x=g["ds"], y=g["yhat"], mode="lines", name="validation forecasts",
                                 legendgroup="validation", showlegend=bool(fold == valid["fold"].min()),
                                 line=dict(color="#ff7f0e", width=1.6, dash="dot")))
    ahead = part[part["part"] == "forecast"]
    for level in (95, 80):
        lo, hi = f"lo_{level}", f"hi_{level}"
        if lo in ahead and ahead[lo].notna().any():
            fig.add_trace(go.Scatter(x=list(ahead["ds"]) + list(ahead["ds"][::-1]),
                                     y=list(ahead[hi]) + list(ahead[lo][::-1]), fill="toself", mode="lines",
                                     line=dict(width=0), fillcolor=_BAND[level], name=f"{level} % interval",
                                     hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=ahead["ds"], y=ahead["yhat"], mode="lines", name="forecast",
                             line=dict(color="#1f77b4", width=2.4)))
    test = part[part["part"] == "test"]
    if not test.empty:
        fig.add_trace(go.Scatter(x=test["ds"], y=test["y"], mode="markers", name="actual (test)",
                                 marker=dict(color="#2ca02c", size=6)))
    # Its legend (up to six entries) wraps to two rows in a half-width column, where plotly's mode bar
    # covered the top one: below the plot instead, in place of an x-axis title that said "time".
    # plotly renders tags (<b>, <a href>) in titles: the target's name is shown as typed
    fig.update_layout(yaxis_title=str(target).replace("<", "&lt;").replace(">", "&gt;"), **{**_LAYOUT, "height": 400, "margin": dict(l=10, r=10, t=40, b=10),
                                            "legend": dict(orientation="h", yanchor="top", y=-0.12, x=0)})
    # Open on the recent past and the forecast; the whole history is a zoom-out away. The range ends
    # half a step after the last point: ending on it cut the forecast's last point in half.
    horizon = max(len(ahead), 1)
    end = part["ds"].max()
    step = part["ds"].diff().dropna().median() if len(part) > 1 else None
    if len(hist) > 8 * horizon:
        fig.update_xaxes(range=[hist["ds"].iloc[-6 * horizon], end + step / 2 if step is not None else end])
    return fig


def predict_chart_frame(bundle: dict, forecast: pd.DataFrame, uploaded: pd.DataFrame | None = None,
                        keep: int = 200) -> pd.DataFrame:
    """What the Predict page draws: the latest history (the training data's, extended by the rows of an
    upload that hold the target) and the forecast table of ``forecast_latest`` with its intervals."""
    from automl_core.forecast.partition_bundle import history as history_of
    from automl_core.forecast.series import DS, ID, Y, long_frame

    history = history_of(bundle)
    if uploaded is not None:
        rows = long_frame(uploaded, bundle["target"], bundle["time_column"], tuple(bundle["series_columns"]), [],
                          need_target=False)
        history = pd.concat([history, rows.loc[rows[Y].notna(), [ID, DS, Y]]], ignore_index=True)
        history = history.drop_duplicates([ID, DS], keep="last").sort_values([ID, DS])
    ahead = forecast.rename(columns={"series": ID, "timestamp": DS, "prediction": "yhat"})
    ahead = ahead.rename(columns=lambda c: c.replace("prediction_", ""))
    frame = pd.concat([history.groupby(ID).tail(keep).assign(part="history"), ahead.assign(part="forecast")],
                      ignore_index=True)
    frame[ID] = frame[ID].astype(str)
    frame["fold"] = pd.NA  # no validation windows on this chart
    return frame


def error_by_step_chart(rows: list[dict], metric: str = "mae") -> go.Figure:
    """The validation error of the chosen model for each step ahead (1..horizon)."""
    table = pd.DataFrame(rows)
    fig = go.Figure()
    if not table.empty:
        fig.add_trace(go.Bar(x=table["step"], y=table[metric], name=metric_label(metric), marker_color="#1f77b4"))
    fig.update_layout(xaxis_title="steps ahead", yaxis_title=metric_label(metric), **_LAYOUT)
    return fig
