"""Plotly figures for the studio (plotly only: shap does not bring matplotlib, see DESIGN.md)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from studio.wording import metric_label, number

# Legend above the plot: below it, it collides with the x-axis title in a half-width column.
_LAYOUT = dict(height=320, margin=dict(l=10, r=10, t=60, b=10),
               legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0), template="plotly_white")


def best_score_chart(points: pd.DataFrame, metric: str) -> go.Figure:
    """Every trial's score as a dot and the best-so-far as a step line, against seconds since start."""
    fig = go.Figure()
    if not points.empty:
        for model, part in points.groupby("model", sort=False):
            # the short family name ("Linear", not "Linear (logistic / ridge / elastic net)"): a legend
            # of long names took a row each and squeezed the plot
            fig.add_trace(go.Scatter(x=part["seconds"], y=part["score"], mode="markers", name=str(model).split(" (")[0],
                                     marker=dict(size=7, opacity=0.6),
                                     hovertemplate="trial %{customdata}<br>%{y:.4g} at %{x:.0f} s",
                                     customdata=part["trial_id"]))
        fig.add_trace(go.Scatter(x=points["seconds"], y=points["best"], mode="lines", name="best so far",
                                 line=dict(shape="hv", width=3, color="#1f3b73")))
    else:
        # an empty plot drew a meaningless -1..4 axis until the first trial finished
        fig.add_annotation(text="The first finished trial appears here", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(color="#808495"))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    # Legend below the plot: above it, one entry per model family wrapped to three rows in a 2/5
    # column and covered half the plot. The axis says "s" on its ticks instead of a title there.
    # the axis names the metric as people read it ("RMSE", "ROC AUC"), not its id ("rmse")
    fig.update_layout(yaxis_title=metric_label(metric), **{**_LAYOUT, "height": 380, "margin": dict(l=10, r=10, t=20, b=10),
                                             # entries as wide as their names, wrapped to more rows: at half the
                                             # width each, "Histogram gradient boosting" was cut to "Histogram gradier"
                                             "legend": dict(orientation="h", yanchor="top", y=-0.12, x=0,
                                                            font=dict(size=11))})
    if not points.empty:
        fig.update_xaxes(ticksuffix=" s")
        if (points["score"].dropna() >= 0).all():  # one log loss of 0.04 was drawn on a -0.5..1 axis
            fig.update_yaxes(rangemode="nonnegative")
    return fig


def metric_panels_chart(table: pd.DataFrame, metrics: list[str], per_row: int = 4) -> go.Figure:
    """One small bar chart per metric, each with its own axis (rmse and r² on one axis flattened every
    bar but rmse's); ``table`` has a ``model`` column and one column per metric, best model first."""
    from plotly.subplots import make_subplots

    metrics = [m for m in metrics if m in table.columns]
    rows = max(1, -(-len(metrics) // per_row))
    fig = make_subplots(rows=rows, cols=min(per_row, max(len(metrics), 1)), subplot_titles=metrics,
                        horizontal_spacing=0.08, vertical_spacing=0.25 / rows + 0.1)
    colours = ["#1f3b73", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    for i, metric in enumerate(metrics):
        for j, (model, value) in enumerate(zip(table["model"], table[metric])):
            # one trace per model, so the legend (shown once) names each colour in every panel
            fig.add_trace(go.Bar(x=[model], y=[value], name=str(model), legendgroup=str(model), showlegend=i == 0,
                                 marker_color=colours[j % len(colours)], hovertemplate="%{x}: %{y:.4g}<extra></extra>",
                                 # number(): "1,636", where .3g printed "1.64e+03" inside an RMSE bar
                                 text=[number(value)], textposition="inside", insidetextanchor="end"),
                          row=i // per_row + 1, col=i % per_row + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(height=170 * rows + 80, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white",
                      legend=dict(orientation="h", yanchor="top", y=-0.04, x=0), bargap=0.15)
    return fig


def score_vs_time_chart(board: pd.DataFrame, metric: str, highlight: list[int]) -> go.Figure:
    """Each model's primary score against its fit time; the selected ones highlighted."""
    chosen = board["trial_id"].isin(highlight)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=board.loc[~chosen, "fit_seconds"], y=board.loc[~chosen, metric], mode="markers",
                             name="other trials", marker=dict(color="#b0b7c3", size=7),
                             text=board.loc[~chosen, "model"]))
    fig.add_trace(go.Scatter(x=board.loc[chosen, "fit_seconds"], y=board.loc[chosen, metric], mode="markers+text",
                             name="selected", marker=dict(size=12, color="#d62728"),
                             text=[f"#{t}" for t in board.loc[chosen, "trial_id"]], textposition="top center"))
    fig.update_layout(xaxis_title="fit seconds", yaxis_title=metric_label(metric), **_LAYOUT)
    return fig


def experiments_chart(frame: pd.DataFrame, metric: str) -> go.Figure:
    """Best score of each experiment on one dataset (same metric), as bars."""
    fig = go.Figure(go.Bar(x=frame["label"], y=frame["best_score"], marker_color="#1f77b4",
                           text=[f"{v:.4g}" if pd.notna(v) else "" for v in frame["best_score"]],
                           textposition="outside", width=[0.5 if len(frame) < 4 else 0.8] * len(frame)))
    fig.update_layout(yaxis_title=metric, **_LAYOUT)
    return fig
